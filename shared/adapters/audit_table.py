"""The audit log of every decision: a Table Storage adapter.

PartitionKey ``<shard>-<YYYYMMDDHH>``: a stable shard of the transaction id, then the event's
UTC hour. The shard comes first so the current hour's writes fall in ``FRAUD_AUDIT_SHARDS``
separate key ranges, which Table Storage can serve from different partition servers (with
the hour first, every current write lands at the end of one range: the "append only"
anti-pattern). A time range is read as one range query per shard. ``FRAUD_AUDIT_SHARDS`` may
be raised, never lowered: reads look in the shards the setting names.
RowKey is the transaction id. A decision is written once: its row and its id-index row are
created, never replaced (``create_grouped``), so a second write of the same transaction id —
a redelivery, a repair after a lost write, or a forged write with another score — changes
nothing that was stored. The label join merges its own columns (``set_labels``: the current
label, derived from the label history) onto the row and never writes a decision field.

The scoring path writes the two halves apart (issue #17): it *claims* each new transaction id
by creating its id-index row (``claim``: one entity-group transaction of creates per index
partition) after scoring and before the profile commit, and writes the decision rows
(``write_decisions``) after the commit. A claim that meets an existing row reads that
partition's ids back (point reads), so two processes scoring one new id for two customers at
once cannot both pass. So an index row may exist whose decision row does not (a claim whose
commit was refused or never happened): readers that mean "was scored" check the decision row.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence


from shared.domain.decision_record import DecisionRecord
from shared.service.fanout import RequestFanout
from shared.service.ports import ScoredElsewhere
from shared.domain.decision_record import index_decision_fields, scored_elsewhere_fields
from shared.adapters.tables import (create_grouped, create_missing, delete_grouped, group_by_partition, read_row,
                                    shard_of, upsert_grouped)
from shared.adapters.storage_account import create_if_missing

def hour_key(moment: datetime) -> str:
    """``YYYYMMDDHH`` of the moment in UTC (formatted by hand: ``strftime`` costs several times more)."""
    m = moment.astimezone(timezone.utc)
    return f"{m.year}{m.month:02d}{m.day:02d}{m.hour:02d}"  # the year unpadded, as strftime gives it here


def partition_key(event_time: datetime, transaction_id: str, shards: int) -> str:
    return f"{shard_of(transaction_id, shards):02d}-{hour_key(event_time)}"


def shard_hours(shard: int, first: datetime, last: datetime) -> tuple[str, str]:
    """The key range [lo, hi) of one shard's partitions from ``first``'s hour to ``last``'s (inclusive)."""
    return f"{shard:02d}-{hour_key(first)}", f"{shard:02d}-{hour_key(last)}~"


INDEX_SHARDS = 16


def scored_elsewhere(entity: dict[str, Any]) -> ScoredElsewhere:
    return ScoredElsewhere(entity["customer_id"], entity["audit_pk"], **scored_elsewhere_fields(entity))


def index_partition(transaction_id: str) -> str:
    """Where the transaction id -> audit row pointer lives (labels arrive with the id only)."""
    return f"idx-{shard_of(transaction_id, INDEX_SHARDS, salt=b'i'):02d}"


class AuditLog:
    def __init__(self, table_client: Any, shards: int = 8) -> None:
        self._table = table_client
        self.shards = shards
        self._fanout = RequestFanout(8, "audit-io")

    def ensure_table(self) -> None:
        create_if_missing(self._table.create_table)

    def _decision_entity(self, record: DecisionRecord) -> dict[str, Any]:
        fields = record.audit_fields()
        return {"PartitionKey": partition_key(fields["event_time"], record.transaction_id, self.shards),
                "RowKey": record.transaction_id, **fields}

    def _index_entity(self, record: DecisionRecord) -> dict[str, Any]:
        event_time = record.transaction.timestamp
        return {"PartitionKey": index_partition(record.transaction_id), "RowKey": record.transaction_id,
                "audit_pk": partition_key(event_time, record.transaction_id, self.shards),
                "customer_id": record.customer_id, "event_time": event_time.astimezone(timezone.utc).isoformat(),
                "merchant_id": record.transaction.merchant_id or "", **index_decision_fields(record)}

    def write(self, records: Iterable[DecisionRecord]) -> int:
        """Create the decisions' rows and id-index rows that do not exist yet (entity fields:
        ``DecisionRecord.audit_fields``), batched per partition; an existing row is never
        touched, whatever the new content. Returns the number of entities created."""
        entities: list[dict[str, Any]] = []
        for record in records:
            entities.append(self._decision_entity(record))
            entities.append(self._index_entity(record))
        return create_grouped(self._table, entities, self._fanout.map)

    def write_decisions(self, records: Iterable[DecisionRecord]) -> int:
        """Create the decision rows that do not exist yet (not their id-index rows: ``claim``
        wrote those), one entity-group transaction per partition. Returns the number created."""
        return create_grouped(self._table, (self._decision_entity(r) for r in records), self._fanout.map)

    def claim(self, records: Sequence[DecisionRecord]) -> dict[str, ScoredElsewhere]:
        """Create the id-index rows of ``records`` (create-only, one entity-group transaction per
        index partition) and return the entries that existed already, by transaction id. Only a
        partition whose transaction is refused (an id there exists) reads its own ids back, by
        point reads, and creates the rest (``create_missing``)."""
        def claim_chunk(chunk: list) -> dict[str, ScoredElsewhere]:
            _, existing = create_missing(self._table, chunk, read_row)
            return {txn_id: scored_elsewhere(entity) for txn_id, entity in existing.items()}

        found: dict[str, ScoredElsewhere] = {}
        for existing in self._fanout.map(claim_chunk, group_by_partition(self._index_entity(r) for r in records)):
            found.update(existing)
        return found

    def update_index(self, records: Sequence[DecisionRecord]) -> int:
        """Replace the id-index rows of ``records`` with their committed decisions (a claim made
        with scores that a retry after a profile conflict changed; rare)."""
        return upsert_grouped(self._table, (self._index_entity(r) for r in records), self._fanout.map)

    def read(self, start: datetime, end: datetime, select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every decision whose event time is in [start, end): per shard, one range scan over
        the partitions of those hours (they sort by hour within a shard), filtered by event time."""
        for shard in range(self.shards):
            lo, hi = shard_hours(shard, start, end)
            rows = self._table.query_entities(
                "PartitionKey ge @lo and PartitionKey lt @hi and event_time ge @start and event_time lt @end",
                parameters={"lo": lo, "hi": hi, "start": start.astimezone(timezone.utc),
                            "end": end.astimezone(timezone.utc)},
                select=select, results_per_page=1000,
            )
            for row in rows:
                yield dict(row)

    def entities(self) -> Iterator[dict[str, Any]]:
        """Every entity of the table, decisions and their id index (partitions ``idx-*``):
        a whole-table scan, for tests and small local logs only."""
        for row in self._table.list_entities():
            yield dict(row)

    @property
    def name(self) -> str:
        return self._table.table_name

    def read_hour(self, hour: datetime, start: datetime, end: datetime, select: list[str],
                  risk_levels: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        """One UTC hour's decisions of the given risk levels with event time in [start, end]:
        one query per shard's partition of that hour, in parallel."""
        key = hour_key(hour)
        levels = " or ".join(f"risk_level eq @level{i}" for i in range(len(risk_levels)))

        def shard_rows(shard: int) -> list[dict[str, Any]]:
            rows = self._table.query_entities(
                f"PartitionKey eq @pk and event_time ge @start and event_time le @end and ( {levels} )",
                parameters={"pk": f"{shard:02d}-{key}", "start": start, "end": end,
                            **{f"level{i}": level for i, level in enumerate(risk_levels)}},
                select=select, results_per_page=1000,
            )
            return [dict(row) for row in rows]

        for rows in self._fanout.map(shard_rows, list(range(self.shards))):
            yield from rows

    def locate(self, transaction_ids: list[str]) -> dict[str, ScoredElsewhere]:
        """transaction id -> its id-index entry (audit_pk, customer_id, ...) for the ids that
        have one: claimed, and scored unless the claim's commit never happened (``scored``
        tells). Point reads: an OR of row keys would scan the whole (ever-growing) index partition."""
        def read(txn_id: str) -> dict[str, Any] | None:
            return read_row(self._table, index_partition(txn_id), txn_id)

        return {entity["RowKey"]: scored_elsewhere(entity)
                for entity in self._fanout.map(read, list(dict.fromkeys(transaction_ids))) if entity is not None}

    def decisions(self, keys: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        """Point reads of decisions by (audit partition key, transaction id), in parallel:
        transaction id -> its row (JSON types: ``event_time`` as ISO text), for those found."""
        return {entity["RowKey"]: entity
                for entity in self._fanout.map(lambda key: read_row(self._table, *key), list(dict.fromkeys(keys)))
                if entity is not None}

    def scored(self, keys: list[tuple[str, str]]) -> set[str]:
        """Which of the (audit partition key, transaction id) have a decision row: point reads of
        the keys only, in parallel (an id-index row alone is a claim, not yet a decision)."""
        def read(key: tuple[str, str]) -> str | None:
            return key[1] if read_row(self._table, *key, select="RowKey") else None

        return {t for t in self._fanout.map(read, list(dict.fromkeys(keys))) if t is not None}

    def set_labels(self, labelled: list[tuple[str, str, dict[str, Any]]]) -> int:
        """Merge label fields into audit rows: (audit_pk, transaction_id, fields); idempotent."""
        return upsert_grouped(self._table, ({"PartitionKey": pk, "RowKey": txn_id, **fields}
                                            for pk, txn_id, fields in labelled))


    # -- retention ------------------------------------------------------------------------
    def expired_decisions(self, before_hour: str, limit: int) -> list[tuple[str, str]]:
        """Keys of decision rows in hours before ``before_hour`` (``YYYYMMDDHH``), at most ``limit``:
        per shard one range query ``<shard>-`` .. ``<shard>-<before_hour>`` selecting only the keys
        (the shard's hours sort in time order; ``idx-*`` lies outside every shard's range)."""
        keys: list[tuple[str, str]] = []
        for shard in range(self.shards):
            rows = self._table.query_entities(
                "PartitionKey ge @lo and PartitionKey lt @hi",
                parameters={"lo": f"{shard:02d}-", "hi": f"{shard:02d}-{before_hour}"},
                select=["PartitionKey", "RowKey"], results_per_page=min(limit, 1000),
            )
            for row in rows:
                keys.append((row["PartitionKey"], row["RowKey"]))
                if len(keys) >= limit:
                    return keys
        return keys

    def delete_index(self, transaction_ids: Sequence[str]) -> int:
        """Delete the id-index entries of those transactions, grouped per ``idx-NN`` partition
        (entity-group transactions of at most 100); entries already gone are skipped."""
        return delete_grouped(self._table, ((index_partition(t), t) for t in transaction_ids), self._fanout.map)

    def delete_decisions(self, keys: Sequence[tuple[str, str]]) -> int:
        """Delete decision rows by key, grouped per partition; rows already gone are skipped."""
        return delete_grouped(self._table, keys, self._fanout.map)
