"""Labels (an append-only history and the current value), label files already read,
compromised customers: a Table adapter.

Table ``labels`` (``FRAUD_LABEL_TABLE``):

* ``lbh-<shard>`` / ``<transaction id>~<content hash>``: one row per label received (who gave
  it, when, the value before it, its source), created once and never updated: an exact
  redelivery has the same row key and adds nothing; only retention deletes them;
* ``lbl-<shard>`` / transaction id: the current label, derived from that history
  (``shared.domain.labels.current_fields``), and its join status (``pending`` until joined to
  the audit log, ``joined``, or ``unknown`` while no decision with that id exists yet — kept
  and retried, never dropped);
* ``files`` / hash of blob name + ETag: a label file already read, with its counts and
  rejected lines;
* ``compromised`` / customer id: the event time from which the customer is known to be
  compromised (their earliest transaction labelled fraud).

``~`` is not allowed in a transaction id, so ``<id>~`` .. ``<id>~~`` holds one transaction's history.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

from azure.core.exceptions import ResourceExistsError

from shared.domain.labels import Label, append_to_history, current_fields, history_order
from shared.adapters.tables import (MAX_OPERATIONS, ROW_KEYS_PER_QUERY, BatchRejected, delete_grouped, query_row_keys,
                                    read_entity, shard_of, submit_batch, upsert_grouped)
from shared.adapters.storage_account import create_if_missing
from shared.service.fanout import RequestFanout

SHARDS = 16
SEPARATOR = "~"


def label_partition(transaction_id: str) -> str:
    return f"lbl-{shard_of(transaction_id, SHARDS):02d}"


def history_partition(transaction_id: str) -> str:
    return f"lbh-{shard_of(transaction_id, SHARDS):02d}"


def _storable(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if v is not None}


class LabelStore:
    def __init__(self, table_client: Any) -> None:
        self._table = table_client
        self._fanout = RequestFanout(8, "label-io")

    def ensure_table(self) -> None:
        create_if_missing(self._table.create_table)

    # -- labels ---------------------------------------------------------------------------
    def history(self, transaction_id: str) -> list[dict[str, Any]]:
        """Every label received for a transaction, oldest first (the last is the current one)."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": history_partition(transaction_id), "lo": transaction_id + SEPARATOR,
                        "hi": transaction_id + SEPARATOR * 2})
        return sorted((dict(r) for r in rows), key=history_order)

    def _create(self, entities: list[dict[str, Any]]) -> None:
        """Create history rows, grouped per partition; one created meanwhile by a concurrent
        delivery of the same label (same key, same content) is left as it is."""
        by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entity in entities:
            by_partition[entity["PartitionKey"]].append(entity)
        chunks = [group[i:i + MAX_OPERATIONS] for group in by_partition.values() for i in range(0, len(group), MAX_OPERATIONS)]

        def create(chunk: list[dict[str, Any]]) -> None:
            try:
                submit_batch(self._table, [("create", e) for e in chunk])
            except BatchRejected as exc:
                if exc.status_code != 409:
                    raise
                for entity in chunk:
                    try:
                        self._table.create_entity(entity)
                    except ResourceExistsError:
                        pass

        self._fanout.map(create, chunks)

    def put(self, labels: Iterable[Label], now: datetime | None = None, attempts: int = 4) -> list[dict[str, Any]]:
        """Append labels to their transactions' histories (an exact redelivery, or a repeat of the
        current label by the same source and person, adds nothing) and derive the current labels.
        Returns the current label row of every transaction named: ``pending`` when the current
        value changed or was not joined yet, ``joined`` when it stands as joined.

        A current-label row is written only if it is still the one read (ETag; created only if
        absent): when a concurrent put for the same transaction got there first, the current
        label is derived again from the whole history (its own entries are there already)."""
        now = now or datetime.now(timezone.utc)
        groups: dict[str, list[Label]] = {}
        for label in labels:
            groups.setdefault(label.transaction_id, []).append(label)
        txn_ids = list(groups)
        histories = dict(zip(txn_ids, self._fanout.map(self.history, txn_ids)))
        added = {t: append_to_history(histories[t], groups[t], now) for t in txn_ids}
        self._create([_storable({"PartitionKey": history_partition(t), "RowKey": f"{t}{SEPARATOR}{e['key']}", **e})
                      for t in txn_ids for e in added[t]])
        projections = self._current_rows(txn_ids)
        operations: dict[str, list[tuple[str, tuple]]] = defaultdict(list)
        result: dict[str, dict[str, Any]] = {}
        for txn_id in txn_ids:
            projection, etag = projections.get(txn_id, (None, None))
            history = histories[txn_id] + added[txn_id]
            fields = current_fields(history)
            if not fields:
                continue
            keys = {"PartitionKey": label_partition(txn_id), "RowKey": txn_id}
            if projection is not None and projection.get("current_key") == fields["current_key"] \
                    and projection.get("history") == fields["history"]:
                result[txn_id] = projection  # nothing new: as it stands (joined or still waiting)
                continue
            if projection is not None and projection.get("current_key") == fields["current_key"]:
                row = {**projection, "history": fields["history"], "received_at": fields["received_at"]}
            else:  # a new current value, waiting to be joined
                row = {**keys, **fields, "status": "pending"}
            operation = ("create", _storable(row)) if projection is None else ("update", _storable(row), {"etag": etag})
            operations[keys["PartitionKey"]].append((txn_id, operation))
            result[txn_id] = row
        chunks = [ops[i:i + MAX_OPERATIONS] for ops in operations.values() for i in range(0, len(ops), MAX_OPERATIONS)]

        def write(chunk: list[tuple[str, tuple]]) -> list[str]:
            try:
                submit_batch(self._table, [operation for _, operation in chunk])
                return []
            except BatchRejected as exc:
                if exc.status_code not in (409, 412) or attempts <= 1:
                    raise
                return [txn_id for txn_id, _ in chunk]  # raced: derive these again

        raced = [txn_id for lost in self._fanout.map(write, chunks) for txn_id in lost]
        if raced:
            again = self.put([label for t in raced for label in groups[t]], now, attempts - 1)
            result.update((row["RowKey"], row) for row in again)
        return [result[t] for t in txn_ids if t in result]

    def _current_rows(self, transaction_ids: list[str]) -> dict[str, tuple[dict[str, Any], str]]:
        """The current-label rows of these transactions that exist, with their ETags, a few per
        query per partition."""
        by_partition: dict[str, list[str]] = defaultdict(list)
        for txn_id in transaction_ids:
            by_partition[label_partition(txn_id)].append(txn_id)
        chunks = [(pk, ids[i:i + ROW_KEYS_PER_QUERY]) for pk, ids in by_partition.items()
                  for i in range(0, len(ids), ROW_KEYS_PER_QUERY)]
        found: dict[str, tuple[dict[str, Any], str]] = {}
        for rows in self._fanout.map(lambda chunk: list(query_row_keys(self._table, *chunk)), chunks):
            found.update((row["RowKey"], (dict(row), row.metadata["etag"])) for row in rows)
        return found

    def awaiting(self) -> Iterator[dict[str, Any]]:
        """Current labels not yet joined (pending or unknown), shard by shard."""
        for shard in range(SHARDS):
            yield from self._table.query_entities(
                "PartitionKey eq @pk and status ne @joined", parameters={"pk": f"lbl-{shard:02d}", "joined": "joined"})

    def mark(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Merge status fields into current-label rows: (partition, transaction id, fields)."""
        upsert_grouped(self._table, ({"PartitionKey": pk, "RowKey": txn_id, **fields} for pk, txn_id, fields in rows))

    def get(self, transaction_id: str) -> dict[str, Any] | None:
        """The current label of a transaction and its join status, or None."""
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
        """Keys of history entries received before ``before`` and of current labels whose latest
        entry was (any status), shard by shard; only the keys are read. Label files read and
        compromised customers are not labels: they stay."""
        keys: list[tuple[str, str]] = []
        for partition in [f"{kind}-{shard:02d}" for shard in range(SHARDS) for kind in ("lbh", "lbl")]:
            rows = self._table.query_entities(
                "PartitionKey eq @pk and received_at lt @before",
                parameters={"pk": partition, "before": before.astimezone(timezone.utc)},
                select=["PartitionKey", "RowKey"], results_per_page=min(limit, 1000))
            for row in rows:
                keys.append((row["PartitionKey"], row["RowKey"]))
                if len(keys) >= limit:
                    return keys
        return keys

    def delete_labels(self, keys: Sequence[tuple[str, str]]) -> int:
        """Delete label rows by key, grouped per partition; rows already gone are skipped."""
        return delete_grouped(self._table, keys)
