"""Labels awaiting and done, label files already read, compromised customers: a Table adapter.

Table ``labels`` (``FRAUD_LABEL_TABLE``):

* ``lbl-<shard>`` / transaction id: the latest label for a transaction and its status
  (``pending`` until joined to the audit log, ``joined``, or ``unknown`` while no decision
  with that id exists yet — kept and retried, never dropped);
* ``files`` / hash of blob name + ETag: a label file already read, with its counts and
  rejected lines;
* ``compromised`` / customer id: the event time from which the customer is known to be
  compromised (their earliest transaction labelled fraud).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence


from shared.domain.labels import Label
from shared.adapters.tables import delete_grouped, read_entity, shard_key, submit_batch, upsert_grouped
from shared.adapters.storage_account import create_if_missing

SHARDS = 16


def label_partition(transaction_id: str) -> str:
    return shard_key("lbl", transaction_id, SHARDS)


class LabelStore:
    def __init__(self, table_client: Any) -> None:
        self._table = table_client

    def ensure_table(self) -> None:
        create_if_missing(self._table.create_table)

    # -- labels ---------------------------------------------------------------------------
    def put(self, labels: Iterable[Label], now: datetime | None = None) -> list[dict[str, Any]]:
        """Record labels as pending (joining them again is harmless: it writes the same values);
        returns the rows written (the last label of a transaction wins)."""
        now = now or datetime.now(timezone.utc)
        latest: dict[str, Label] = {}
        for label in labels:
            latest[label.transaction_id] = label  # the last word in a batch wins
        entities = []
        for txn_id, label in latest.items():
            pk = label_partition(txn_id)
            entities.append({
                "PartitionKey": pk, "RowKey": txn_id, "label": int(label.is_fraud), "customer_id": label.customer_id or "",
                "labelled_at": label.labelled_at.isoformat() if label.labelled_at else "", "source": label.source,
                "status": "pending", "received_at": now,
            })
        upsert_grouped(self._table, entities)
        return entities

    def awaiting(self) -> Iterator[dict[str, Any]]:
        """Labels not yet joined (pending or unknown), shard by shard."""
        for shard in range(SHARDS):
            yield from self._table.query_entities(
                "PartitionKey eq @pk and status ne @joined", parameters={"pk": f"lbl-{shard:02d}", "joined": "joined"})

    def mark(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Merge status fields into label rows: (partition, transaction id, fields)."""
        upsert_grouped(self._table, ({"PartitionKey": pk, "RowKey": txn_id, **fields} for pk, txn_id, fields in rows))

    def get(self, transaction_id: str) -> dict[str, Any] | None:
        found = read_entity(self._table, label_partition(transaction_id), transaction_id)
        return found[0] if found else None

    # -- label files ----------------------------------------------------------------------
    @staticmethod
    def file_key(name: str, etag: str) -> str:
        return hashlib.sha256(f"{name}\0{etag}".encode()).hexdigest()[:32]

    def file_seen(self, name: str, etag: str) -> bool:
        return read_entity(self._table, "files", self.file_key(name, etag)) is not None

    def record_file(self, name: str, etag: str, labels: int, rejected: list[dict[str, Any]]) -> None:
        submit_batch(self._table, [("upsert", {
            "PartitionKey": "files", "RowKey": self.file_key(name, etag), "name": name, "labels": labels,
            "rejected_count": len(rejected), "rejected": json.dumps(rejected)[:30000],
            "read_at": datetime.now(timezone.utc)})])

    # -- compromised customers ------------------------------------------------------------
    def mark_compromised(self, customer_id: str, since: datetime) -> None:
        found = read_entity(self._table, "compromised", customer_id)
        if found and found[0].get("since", "9999") <= since.isoformat():
            return
        submit_batch(self._table, [("upsert", {"PartitionKey": "compromised", "RowKey": customer_id,
                                                "since": since.astimezone(timezone.utc).isoformat()})])

    def compromised_since(self, customer_id: str) -> str | None:
        found = read_entity(self._table, "compromised", customer_id)
        return found[0]["since"] if found else None

    # -- retention ------------------------------------------------------------------------
    def expired_labels(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """Keys of labels (any status) received before ``before``, shard by shard; only the keys
        are read. Label files read and compromised customers are not labels: they stay."""
        keys: list[tuple[str, str]] = []
        for shard in range(SHARDS):
            rows = self._table.query_entities(
                "PartitionKey eq @pk and received_at lt @before",
                parameters={"pk": f"lbl-{shard:02d}", "before": before.astimezone(timezone.utc)},
                select=["PartitionKey", "RowKey"], results_per_page=min(limit, 1000))
            for row in rows:
                keys.append((row["PartitionKey"], row["RowKey"]))
                if len(keys) >= limit:
                    return keys
        return keys

    def delete_labels(self, keys: Sequence[tuple[str, str]]) -> int:
        """Delete label rows by key, grouped per partition; rows already gone are skipped."""
        return delete_grouped(self._table, keys)
