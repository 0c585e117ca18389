"""The lean entity-group transaction against Azurite: atomic, conditional, typed."""
import uuid
from datetime import datetime, timezone

import pytest

from shared.adapters.tables import BatchRejected, submit_batch


@pytest.fixture
def table(services):
    name = "batch" + uuid.uuid4().hex[:8]
    services.table_service.create_table(name)
    return services.table_service.get_table_client(name)


def test_properties_round_trip_with_their_types(table):
    moment = datetime(2026, 3, 1, 2, 0, 5, 123000, tzinfo=timezone.utc)
    etags = submit_batch(table, [("create", {"PartitionKey": "C'1:x@y", "RowKey": "profile", "text": "naïve ₦", "flag": True,
                                             "small": 7, "big": 2**40, "ratio": 2.0, "when": moment, "none": None})])
    entity = table.get_entity("C'1:x@y", "profile")
    assert etags[0] == entity.metadata["etag"]
    assert (entity["text"], entity["flag"], entity["small"], entity["big"].value, entity["ratio"]) == ("naïve ₦", True, 7, 2**40, 2.0)
    assert entity["big"].edm_type == "Edm.Int64" and "none" not in entity
    assert isinstance(entity["ratio"], float)
    assert entity["when"] == moment


def test_all_or_nothing_and_conditions(table):
    first = submit_batch(table, [("create", {"PartitionKey": "C", "RowKey": "profile", "n": 1}),
                                 ("create", {"PartitionKey": "C", "RowKey": "txn:1"})])
    # a duplicate create rejects the whole transaction: the profile update is not applied
    with pytest.raises(BatchRejected) as duplicate:
        submit_batch(table, [("update", {"PartitionKey": "C", "RowKey": "profile", "n": 2}, {"etag": first[0]}),
                             ("create", {"PartitionKey": "C", "RowKey": "txn:1"})])
    assert duplicate.value.status_code == 409
    assert table.get_entity("C", "profile")["n"] == 1
    # the right ETag wins once; the same stale ETag then loses with 412
    second = submit_batch(table, [("update", {"PartitionKey": "C", "RowKey": "profile", "n": 2}, {"etag": first[0]}),
                                  ("create", {"PartitionKey": "C", "RowKey": "txn:2"})])
    with pytest.raises(BatchRejected) as stale:
        submit_batch(table, [("update", {"PartitionKey": "C", "RowKey": "profile", "n": 3}, {"etag": first[0]})])
    assert stale.value.status_code == 412
    assert table.get_entity("C", "profile").metadata["etag"] == second[0]


def test_upsert_merges_and_keeps_other_properties(table):
    submit_batch(table, [("upsert", {"PartitionKey": "H", "RowKey": "T1", "score": 0.5, "label": "1"})])
    submit_batch(table, [("upsert", {"PartitionKey": "H", "RowKey": "T1", "score": 0.5})])
    assert table.get_entity("H", "T1")["label"] == "1"


def test_operation_count_is_bounded(table):
    with pytest.raises(ValueError):
        submit_batch(table, [])
    with pytest.raises(ValueError):
        submit_batch(table, [("upsert", {"PartitionKey": "H", "RowKey": str(i)}) for i in range(101)])


def test_point_read_returns_properties_and_the_etag(table):
    from shared.adapters.tables import read_entity

    (etag,) = submit_batch(table, [("create", {"PartitionKey": "C@1", "RowKey": "profile", "state": "{}", "n": 3})])
    entity, read_etag = read_entity(table, "C@1", "profile")
    assert entity["state"] == "{}" and entity["n"] == 3 and read_etag == etag
    assert read_entity(table, "C@1", "missing") is None


def test_create_grouped_creates_only_what_is_missing_and_never_replaces(table):
    from shared.adapters.tables import create_grouped

    assert create_grouped(table, [{"PartitionKey": "A", "RowKey": f"r{i}", "v": "first"} for i in range(0, 120, 2)]) == 60
    # 120 rows of one partition: two transactions, each with existing rows; a second partition is fresh
    again = [{"PartitionKey": "A", "RowKey": f"r{i}", "v": "second"} for i in range(120)]
    fresh = [{"PartitionKey": "B", "RowKey": "r0", "v": "second"}]
    assert create_grouped(table, again + fresh) == 61
    values = {e["RowKey"]: e["v"] for e in table.query_entities("PartitionKey eq 'A'")}
    assert len(values) == 120
    assert all(values[f"r{i}"] == ("first" if i % 2 == 0 else "second") for i in range(120))
    assert table.get_entity("B", "r0")["v"] == "second"
    assert create_grouped(table, again) == 0  # everything exists: nothing written, nothing raised


def test_create_grouped_keeps_the_first_entity_of_a_key_within_one_call(table):
    from shared.adapters.tables import create_grouped

    assert create_grouped(table, [{"PartitionKey": "K", "RowKey": "x", "v": 1}, {"PartitionKey": "K", "RowKey": "x", "v": 2}]) == 1
    assert table.get_entity("K", "x")["v"] == 1


def test_create_grouped_is_one_round_trip_per_fresh_group_and_point_reads_on_a_conflict(services, table):
    """Requests counted on the wire (a real transport that counts what it sends to Azurite)."""
    from azure.core.pipeline.transport import RequestsTransport
    from azure.data.tables import TableClient

    from shared.adapters.tables import create_grouped

    sent = []

    class CountingTransport(RequestsTransport):
        def send(self, request, **kwargs):
            sent.append(request.method)
            return super().send(request, **kwargs)

    counted = TableClient.from_connection_string(services.env["AzureWebJobsStorage"], table.table_name,
                                                 transport=CountingTransport())
    fresh = [{"PartitionKey": "P", "RowKey": f"r{i:03d}"} for i in range(40)] + [{"PartitionKey": "Q", "RowKey": "r0"}]
    assert create_grouped(counted, fresh) == 41
    assert sent == ["POST", "POST"]  # one entity-group transaction per partition
    sent.clear()
    again = [{"PartitionKey": "P", "RowKey": f"r{i:03d}"} for i in range(45)]  # 40 exist, 5 are new
    assert create_grouped(counted, again) == 5
    # the refused transaction, a point read of each of its keys (an OR of row keys would scan the
    # partition: an audit hour's holds every decision of that hour and shard), the creates of the missing
    assert sent == ["POST"] + ["GET"] * 45 + ["POST"]


def test_one_entity_is_created_by_a_plain_insert_typed_as_a_transaction_would_and_refused_if_it_exists(table):
    from shared.adapters.tables import create_grouped, insert_entity

    moment = datetime(2026, 3, 1, 2, 0, 5, 123000, tzinfo=timezone.utc)
    etag = insert_entity(table, {"PartitionKey": "idx-'07", "RowKey": "T 1 é", "text": "naïve ₦", "big": 2**40,
                                 "ratio": 2.0, "when": moment, "flag": False})
    entity = table.get_entity("idx-'07", "T 1 é")
    assert etag == entity.metadata["etag"]
    assert (entity["text"], entity["big"].value, entity["ratio"], entity["when"], entity["flag"]) == ("naïve ₦", 2**40, 2.0, moment, False)
    with pytest.raises(BatchRejected) as exists:
        insert_entity(table, {"PartitionKey": "idx-'07", "RowKey": "T 1 é", "text": "second"})
    assert exists.value.status_code == 409 and "EntityAlreadyExists" in str(exists.value)
    assert table.get_entity("idx-'07", "T 1 é")["text"] == "naïve ₦"
    # create_grouped with one entity of a partition: the plain insert, refused whole as a transaction would be
    assert create_grouped(table, [{"PartitionKey": "idx-'07", "RowKey": "T 1 é", "text": "third"}]) == 0
    assert create_grouped(table, [{"PartitionKey": "idx-'07", "RowKey": "T 2", "text": "fresh"}]) == 1
    assert table.get_entity("idx-'07", "T 1 é")["text"] == "naïve ₦" and table.get_entity("idx-'07", "T 2")["text"] == "fresh"
