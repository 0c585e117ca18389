"""The bench's storage request counter (bench/request_counter.py) counts real requests on
Azurite, one per HTTP request sent below the SDK's retry policy, by operation. Nothing timed."""
from __future__ import annotations

import os

import pytest

from bench.request_counter import CountingTransport, Operation, RequestCounter, counting
from shared.adapters import storage_account
from shared.adapters.storage_account import StorageAccount, azurite_connection_string
from shared.adapters.tables import insert_entity, read_entity, submit_batch
from shared.composition import AppServices


def test_a_point_read_and_an_insert_are_two_counted_operations(app_env):
    counter = RequestCounter(names={app_env["FRAUD_PROFILE_TABLE"]: "profiles", app_env["FRAUD_AUDIT_TABLE"]: "audit"},
                             partition_label=lambda table, pk: "id index" if pk.startswith("idx-") else None)
    with counting(counter):
        services = AppServices(dict(os.environ))
        table = services.table_service.get_table_client(app_env["FRAUD_PROFILE_TABLE"])
    assert storage_account.transport_factory is None  # restored: production builds the SDK's transport
    create = services.table_service.get_table_client(app_env["FRAUD_PROFILE_TABLE"]).create_table
    create()
    counter.reset()

    assert read_entity(table, "p1", "profile") is None  # a point read: 404
    table.create_entity({"PartitionKey": "p1", "RowKey": "profile", "state": "{}"})  # an insert: 201
    assert counter.snapshot() == {Operation("tables", "GET", "profiles", "point read"): 1,
                                  Operation("tables", "POST", "profiles", "insert"): 1}
    assert counter.statuses() == {(Operation("tables", "GET", "profiles", "point read"), 404): 1,
                                  (Operation("tables", "POST", "profiles", "insert"), 201): 1}

    counter.reset()
    audit = services.table_service.get_table_client(app_env["FRAUD_AUDIT_TABLE"])
    audit.create_table()
    submit_batch(audit, [("create", {"PartitionKey": "idx-03", "RowKey": f"T{i}"}) for i in range(3)])
    assert read_entity(audit, "idx-03", "T1") is not None
    assert len(list(audit.query_entities("PartitionKey eq 'idx-03'"))) == 3
    assert counter.snapshot() == {Operation("tables", "POST", "(tables)", "create table"): 1,
                                  Operation("tables", "POST", "audit [id index]", "$batch"): 1,  # one request, 3 rows
                                  Operation("tables", "GET", "audit [id index]", "point read"): 1,
                                  Operation("tables", "GET", "audit [id index]", "query"): 1}
    assert counter.total == 4

    counter.reset()  # an insert is named by its entity's partition too
    insert_entity(audit, {"PartitionKey": "idx-04", "RowKey": "T9"})
    insert_entity(audit, {"PartitionKey": "2026010100-00", "RowKey": "T9"})
    assert counter.snapshot() == {Operation("tables", "POST", "audit [id index]", "insert"): 1,
                                  Operation("tables", "POST", "audit", "insert"): 1}


def test_every_retry_is_a_request_of_its_own(azurite):
    """Counted below the retry policy: an unreachable endpoint with one retry is two requests."""
    from azure.core.exceptions import ServiceRequestError

    from tools.azurite import free_port

    counter = RequestCounter()
    with counting(counter):
        account = StorageAccount(connection_string=azurite_connection_string(table=free_port()), retries=1)
        assert isinstance(account._transport, CountingTransport)
        table = account.table_service().get_table_client("nowhere")
    with pytest.raises(ServiceRequestError):
        read_entity(table, "p", "r")
    assert counter.statuses() == {(Operation("tables", "GET", "nowhere", "point read"), None): 2}
