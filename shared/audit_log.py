"""The audit log of every decision: a Table Storage adapter.

PartitionKey ``<YYYYMMDDHH>-<shard>``: the event's UTC hour and a stable shard of the
transaction id, so one hour's writes spread over ``FRAUD_AUDIT_SHARDS`` partitions
(no single hot partition) and a time range is read partition by partition.
RowKey is the transaction id: writes are upserts, so a repeated write changes nothing.
"""
from __future__ import annotations

import json
import zlib
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping


from shared.request_fanout import RequestFanout
from shared.table_batch import read_entity, submit_batch
from shared.storage import create_if_missing

MAX_BATCH = 100
# The seed's log structure first, then what we add.
EXPORT_COLUMNS = (
    "transaction_id", "customer_id", "transaction_amount", "fraud_score", "risk_level", "timestamp", "label",
    "action", "is_fraud", "reasons", "rules_fired", "model_version", "latency_ms", "scored_at",
    "currency", "channel", "merchant_id", "merchant_category", "device_id", "country", "source",
)


def shard_of(transaction_id: str, shards: int) -> int:
    return zlib.crc32(transaction_id.encode()) % shards


def hour_key(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H")


def partition_key(event_time: datetime, transaction_id: str, shards: int) -> str:
    return f"{hour_key(event_time)}-{shard_of(transaction_id, shards):02d}"


INDEX_SHARDS = 16


def index_partition(transaction_id: str) -> str:
    """Where the transaction id -> audit row pointer lives (labels arrive with the id only)."""
    return f"idx-{zlib.crc32(b'i' + transaction_id.encode()) % INDEX_SHARDS:02d}"


class AuditLog:
    def __init__(self, table_client: Any, shards: int = 8) -> None:
        self._table = table_client
        self.shards = shards
        self._fanout = RequestFanout(8, "audit-io")

    def ensure_table(self) -> None:
        create_if_missing(self._table.create_table)

    def write(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Upsert decision records (dicts from the scoring service); batched per partition."""
        by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            event_time = datetime.fromisoformat(record["timestamp"])
            entity = {
                "PartitionKey": partition_key(event_time, record["transaction_id"], self.shards),
                "RowKey": record["transaction_id"],
                "transaction_id": record["transaction_id"],
                "customer_id": record["customer_id"],
                "transaction_amount": float(record["transaction_amount"]),
                "currency": record.get("currency") or "",
                "fraud_score": float(record["fraud_score"]),
                "risk_level": record["risk_level"],
                "action": record["action"],
                "is_fraud": bool(record["is_fraud"]),
                "reasons": json.dumps(record.get("reasons", [])),
                "rules_fired": json.dumps(record.get("rules_fired", [])),
                "model_version": record["model_version"],
                "features": json.dumps(record["features"]),
                "latency_ms": float(record.get("latency_ms", 0.0)),
                "timestamp": record["timestamp"],
                "event_time": event_time.astimezone(timezone.utc),
                "scored_at": record["scored_at"],
                "channel": record.get("channel") or "",
                "merchant_id": record.get("merchant_id") or "",
                "merchant_category": record.get("merchant_category") or "",
                "device_id": record.get("device_id") or "",
                "country": record.get("country") or "",
                "source": record.get("source") or "",
            }
            by_partition[entity["PartitionKey"]].append(entity)
            by_partition[index_partition(record["transaction_id"])].append({
                "PartitionKey": index_partition(record["transaction_id"]), "RowKey": record["transaction_id"],
                "audit_pk": entity["PartitionKey"], "customer_id": record["customer_id"],
                "event_time": entity["event_time"].isoformat(), "merchant_id": entity["merchant_id"],
            })
        chunks = [entities[start:start + MAX_BATCH] for entities in by_partition.values()
                  for start in range(0, len(entities), MAX_BATCH)]
        # MERGE keeps a label already joined if a decision is written again.
        write = lambda chunk: len(submit_batch(self._table, [("upsert", e) for e in chunk]))  # noqa: E731
        return sum(self._fanout.map(write, chunks))

    def read(self, start: datetime, end: datetime, select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every decision whose event time is in [start, end): one range scan over the
        partitions of those hours (they sort by hour), filtered by event time."""
        first = hour_key(start)
        last = hour_key(end)
        rows = self._table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi and event_time ge @start and event_time lt @end",
            parameters={"lo": f"{first}-", "hi": f"{last}-~", "start": start.astimezone(timezone.utc),
                        "end": end.astimezone(timezone.utc)},
            select=select, results_per_page=1000,
        )
        for row in rows:
            yield dict(row)

    @property
    def name(self) -> str:
        return self._table.table_name

    def read_hour(self, hour: datetime, start: datetime, end: datetime, select: list[str],
                  risk_levels: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        """One UTC hour's decisions of the given risk levels with event time in [start, end]."""
        key = hour_key(hour)
        levels = " or ".join(f"risk_level eq @level{i}" for i in range(len(risk_levels)))
        rows = self._table.query_entities(
            f"PartitionKey ge @lo and PartitionKey lt @hi and event_time ge @start and event_time le @end and ( {levels} )",
            parameters={"lo": f"{key}-", "hi": f"{key}-~", "start": start, "end": end,
                        **{f"level{i}": level for i, level in enumerate(risk_levels)}},
            select=select, results_per_page=1000,
        )
        for row in rows:
            yield dict(row)

    def locate(self, transaction_ids: list[str]) -> dict[str, dict[str, Any]]:
        """transaction id -> {audit_pk, customer_id} for the ids that were scored."""
        # Point reads: an OR of row keys would scan the whole (ever-growing) index partition.
        def read(txn_id: str) -> dict[str, Any] | None:
            hit = read_entity(self._table, index_partition(txn_id), txn_id)
            return hit[0] if hit else None

        found: dict[str, dict[str, Any]] = {}
        for entity in self._fanout.map(read, list(dict.fromkeys(transaction_ids))):
            if entity is not None:
                found[entity["RowKey"]] = {"audit_pk": entity["audit_pk"], "customer_id": entity["customer_id"],
                                           "event_time": entity.get("event_time"),
                                           "merchant_id": entity.get("merchant_id") or ""}
        return found

    def set_labels(self, labelled: list[tuple[str, str, dict[str, Any]]]) -> int:
        """Merge label fields into audit rows: (audit_pk, transaction_id, fields); idempotent."""
        by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pk, txn_id, fields in labelled:
            by_partition[pk].append({"PartitionKey": pk, "RowKey": txn_id, **fields})
        written = 0
        for entities in by_partition.values():
            for start in range(0, len(entities), MAX_BATCH):
                written += len(submit_batch(self._table, [("upsert", e) for e in entities[start:start + MAX_BATCH]]))
        return written


def export_row(entity: Mapping[str, Any]) -> dict[str, Any]:
    row = {column: entity.get(column, "") for column in EXPORT_COLUMNS}
    row["label"] = "" if entity.get("label") in (None, "") else entity.get("label")
    return row
