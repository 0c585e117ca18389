"""Customer profiles in Table Storage, applied exactly once (a Table Storage adapter).

One partition per customer (PartitionKey = the customer's keyed pseudonym, ``cu_...``:
``shared.domain.pseudonym``; the raw customer id is not stored in this table):

* RowKey ``profile``        the ``CustomerProfile`` state (JSON) and counters; its device map
                            is keyed by the device's keyed pseudonym (``dv_...``); ``recent``:
                            the last ``RECENT_IDS_KEPT`` transaction ids applied (space-separated,
                            oldest first), so a redelivery is known without a commit;
* RowKey ``txn:<id>``       one row per applied transaction, holding its decision (the
                            decision document without the customer id, which the caller
                            names when reading it back, and with the device id as its
                            keyed pseudonym: ``applied`` puts back an arriving device id
                            whose pseudonym it is; ``recent_transactions`` shows pseudonyms).

Callers speak of customers by their id; this adapter alone turns it into the partition key.
Retention's listings (``expired_transactions``, ``inactive_profiles``) name partitions by
their keys (pseudonyms), which the matching deletions take back.

A commit is one entity-group transaction: the profile row (``create`` for a new
customer, else ``update`` with the ETag read) plus a ``create`` of every transaction row.
A redelivered transaction fails its ``create``; a concurrent writer fails the ETag
condition. Either way the whole commit is rejected, and the caller re-reads and retries:
a transaction is applied once, whatever the delivery. A commit refused only for an existing
transaction row (the profile's condition held) keeps the cached profile: it is still current.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.domain import json_text
from shared.domain.decision_record import DecisionRecord
from shared.domain.features import CustomerProfile
from shared.domain.pseudonym import Pseudonyms
from shared.domain.transaction import Transaction
from shared.service.fanout import RequestFanout
from shared.service.ports import MAX_TXNS_PER_COMMIT, CommitConflict, StoredProfile
from shared.adapters.tables import BatchRejected, delete_grouped, delete_if_present, read_entity, read_row, submit_batch
from shared.adapters.storage_account import create_if_missing

PROFILE_ROW = "profile"
TXN_PREFIX = "txn:"


def txn_row_key(transaction_id: str) -> str:
    return TXN_PREFIX + transaction_id


class ProfileCache:
    """Recently committed profiles (the profile as parsed, its ETag, its recent ids), newest
    last; bounded. A hit hands out a copy (``CustomerProfile.copy``): no JSON is parsed.

    Event Hubs sends a customer's events to one partition (partition key = customer id),
    so one instance keeps seeing the same customers: after the first read, their profile
    comes from here and the commit's ETag condition proves it is still current. A stale
    entry (another instance or the HTTP path wrote meanwhile) fails the condition, is
    evicted and re-read: correctness never depends on the cache.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[CustomerProfile, str, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, customer_id: str) -> tuple[CustomerProfile, str, tuple[str, ...]] | None:
        with self._lock:
            entry = self._entries.get(customer_id)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(customer_id)
            self.hits += 1
            return entry

    def put(self, customer_id: str, profile: CustomerProfile, etag: str, recent: tuple[str, ...] = ()) -> None:
        """Keep ``profile`` as committed (the caller must not change it afterwards)."""
        if self.capacity <= 0:
            return
        with self._lock:
            self._entries[customer_id] = (profile, etag, recent)
            self._entries.move_to_end(customer_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def evict(self, customer_id: str) -> None:
        with self._lock:
            self._entries.pop(customer_id, None)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ProfileStore:
    # When a row is written (``updated_at``, ``applied_at``): what retention reads; tests set it.
    clock: Callable[[], datetime] = staticmethod(_utc_now)

    def __init__(self, table_client: Any, cache_size: int = 0, *, pseudonyms: Pseudonyms) -> None:
        self._table = table_client
        self.cache = ProfileCache(cache_size)  # by partition key
        self.pseudonyms = pseudonyms
        self._fanout = RequestFanout(8, "profile-io")

    def partition_of(self, customer_id: str) -> str:
        """The customer's partition key: their keyed pseudonym."""
        return self.pseudonyms.customer(customer_id)

    def _profile(self, state: str | None) -> CustomerProfile:
        device_key = self.pseudonyms.device
        return CustomerProfile(device_key=device_key) if state is None else CustomerProfile.from_json(state, device_key)

    def ensure_table(self) -> None:
        create_if_missing(self._table.create_table)

    def load(self, customer_id: str) -> StoredProfile:
        partition = self.partition_of(customer_id)
        cached = self.cache.get(partition)
        if cached is not None:
            return StoredProfile(customer_id, cached[0].copy(), cached[1], cached[2])
        found = read_entity(self._table, partition, PROFILE_ROW)
        if found is None:
            return StoredProfile(customer_id, self._profile(None), None)
        entity, etag = found
        return StoredProfile(customer_id, self._profile(entity["state"]), etag,
                             tuple((entity.get("recent") or "").split()))

    def applied(self, customer_id: str, transaction_ids: Iterable[str],
                arriving: Mapping[str, Transaction] | None = None) -> dict[str, DecisionRecord]:
        """The stored decisions of those transactions already applied: their device id is the
        stored pseudonym, or the ``arriving`` transaction's device id when that is its pseudonym.
        One point read per id (an OR of row keys would scan the customer's growing partition)."""
        partition = self.partition_of(customer_id)
        rows = [r for r in self._fanout.map(lambda t: read_row(self._table, partition, txn_row_key(t)),
                                            list(dict.fromkeys(transaction_ids))) if r is not None]
        found = {entity["RowKey"][len(TXN_PREFIX):]: _decision(entity, customer_id) for entity in rows}
        for txn_id, record in (found.items() if arriving else ()):
            txn = arriving.get(txn_id)
            stored_device = record.transaction.device_id
            if txn is not None and txn.device_id and stored_device == self.pseudonyms.device(txn.device_id):
                found[txn_id] = replace(record, transaction=replace(record.transaction, device_id=txn.device_id))
        return found

    def commit(self, stored: StoredProfile, decisions: Sequence[DecisionRecord]) -> None:
        """Write the updated profile and the new transactions' rows atomically (at most 99).

        Raises ``CommitConflict`` when the condition fails (retry after a re-read).
        """
        if not 0 < len(decisions) <= MAX_TXNS_PER_COMMIT:
            raise ValueError(f"a commit takes 1-{MAX_TXNS_PER_COMMIT} transactions, got {len(decisions)}")
        now = self.clock()
        partition = self.partition_of(stored.customer_id)
        recent = stored.with_applied([r.transaction_id for r in decisions])
        profile_entity = {
            "PartitionKey": partition,
            "RowKey": PROFILE_ROW,
            "state": stored.profile.to_json(),
            "history_count": stored.profile.history_count,
            "recent": " ".join(recent),
            "updated_at": now,
        }
        if stored.etag is None:
            operations: list[tuple] = [("create", profile_entity)]
        else:
            operations = [("update", profile_entity, {"etag": stored.etag})]
        for record in decisions:
            operations.append(("create", {
                "PartitionKey": partition,
                "RowKey": txn_row_key(record.transaction_id),
                "decision": self._stored_document(record),
                "alert_state": "pending" if record.alert else "none",
                "applied_at": now,
            }))
        try:
            etags = submit_batch(self._table, operations)
        except HttpResponseError as exc:  # TableTransactionError is one
            # 409 on a transaction row (operation 1 on): it exists, and the profile's condition
            # (operation 0, checked first) held, so the cached profile is still current. Else
            # 412: the profile changed; 404: it was removed (retention) since it was read; or a
            # 409 without an index: the re-read starts afresh.
            if not (exc.status_code == 409 and getattr(exc, "index", None)):
                self.cache.evict(partition)
            removed = exc.status_code == 404 and "TableNotFound" not in str(exc)
            if exc.status_code in (409, 412) or removed:
                raise CommitConflict(str(exc).splitlines()[0]) from None
            raise
        except Exception:
            self.cache.evict(partition)
            raise
        etag = etags[0]
        if etag:
            self.cache.put(partition, stored.profile.copy(), etag, recent)

    def _stored_document(self, record: DecisionRecord) -> str:
        """The decision document as a ``txn:`` row keeps it: without the raw customer id (the
        partition names the customer), the device id as its keyed pseudonym."""
        document = record.document()
        del document["customer_id"]
        if document.get("device_id"):
            document["device_id"] = self.pseudonyms.device(document["device_id"])
        return json_text.dumps(document)

    def new_profile(self) -> CustomerProfile:
        """An empty profile keyed as this store keys devices (for the backfill to fill)."""
        return self._profile(None)

    def backfill(self, customer_id: str, profile: CustomerProfile, overwrite: bool = False) -> bool:
        """Store a profile built from history; an existing one is kept unless overwrite. The
        profile must key its devices by this store's device pseudonyms (``new_profile``):
        one built with another key function would store unkeyed device hashes, and is refused."""
        if profile.device_key != self.pseudonyms.device:
            raise ValueError("a backfilled profile must key its devices by the store's device pseudonyms "
                             "(build it from ProfileStore.new_profile())")
        entity = {"PartitionKey": self.partition_of(customer_id), "RowKey": PROFILE_ROW, "state": profile.to_json(),
                  "history_count": profile.history_count, "updated_at": self.clock()}
        if overwrite:
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            return True
        try:
            self._table.create_entity(entity)
            return True
        except ResourceExistsError:
            return False

    def pending_alert(self, customer_id: str, transaction_id: str) -> bool:
        try:
            entity = self._table.get_entity(self.partition_of(customer_id), txn_row_key(transaction_id),
                                            select=["alert_state"])
        except ResourceNotFoundError:
            return False
        return entity.get("alert_state") == "pending"

    def mark_alert_sent(self, customer_id: str, transaction_id: str) -> None:
        self._table.update_entity(
            {"PartitionKey": self.partition_of(customer_id), "RowKey": txn_row_key(transaction_id), "alert_state": "sent"},
            mode=UpdateMode.MERGE,
        )

    def recent_transactions(self, customer_id: str, limit: int = 20) -> list[DecisionRecord]:
        """A customer's latest decisions (for analysts), newest first."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": self.partition_of(customer_id), "lo": TXN_PREFIX, "hi": TXN_PREFIX[:-1] + chr(ord(":") + 1)},
            select=["decision"],
        )
        records = [_decision(r, customer_id) for r in rows]
        records.sort(key=lambda r: r.transaction.timestamp, reverse=True)
        return records[:limit]


    # -- retention ------------------------------------------------------------------------
    def expired_transactions(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """Keys (partition key, ``txn:`` row key) of transaction rows applied before ``before``,
        whatever the customer: one filtered scan of the table selecting only the keys."""
        rows = self._table.query_entities(
            "RowKey ge @lo and RowKey lt @hi and applied_at lt @before",
            parameters={"lo": TXN_PREFIX, "hi": TXN_PREFIX[:-1] + chr(ord(":") + 1),
                        "before": before.astimezone(timezone.utc)},
            select=["PartitionKey", "RowKey"], results_per_page=min(limit, 1000))
        return _first(((row["PartitionKey"], row["RowKey"]) for row in rows), limit)

    def delete_transactions(self, keys: Sequence[tuple[str, str]]) -> int:
        """Delete transaction rows by key, grouped per customer; rows already gone are skipped."""
        return delete_grouped(self._table, keys)

    def inactive_profiles(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """(partition key, ETag) of profile rows last written before ``before``."""
        rows = self._table.query_entities(
            "RowKey eq @profile and updated_at lt @before",
            parameters={"profile": PROFILE_ROW, "before": before.astimezone(timezone.utc)},
            select=["PartitionKey", "RowKey"], results_per_page=min(limit, 1000))
        return _first(((row["PartitionKey"], row.metadata["etag"]) for row in rows), limit)

    def remove_profiles(self, profiles: Sequence[tuple[str, str]]) -> int:
        """Delete each profile row if its ETag is still the one listed (If-Match): a customer
        who transacted since keeps the profile. A scoring process still holding the removed
        profile fails its commit's condition and re-reads (``CommitConflict``)."""
        removed = 0
        for partition, etag in profiles:
            self.cache.evict(partition)
            try:
                removed += delete_if_present(self._table, {"PartitionKey": partition, "RowKey": PROFILE_ROW}, etag)
            except BatchRejected as exc:
                if exc.status_code != 412:
                    raise
        return removed


def _first(items: Iterable[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    out = []
    for item in items:
        out.append(item)
        if len(out) >= limit:
            break
    return out


def _decision(entity: dict[str, Any], customer_id: str) -> DecisionRecord:
    """A ``txn:`` row's decision, of the customer whose partition it was read from."""
    return DecisionRecord.from_document({**json_text.loads(entity["decision"]), "customer_id": customer_id})
