"""Merchant risk in Table Storage (written by the timer) and its read cache (used when scoring).

Table ``merchantrisk``: PartitionKey ``m-<shard>``, RowKey the merchant id; properties
``hour_base`` and one JSON array per hourly statistic from that hour on (``counts``,
``amounts`` in cents, ``new_devices``, ``first_visits``), the known frauds as counts
(``fraud_hour_base``, ``fraud_counts`` per event hour, ``fraud_pending`` per event hour and
hour known, ``fraud_settled``, and the per-day fingerprint sets ``frauds_seen_0``..``_3`` that
keep a fraud from counting twice: each bounded by the windows' hours, not by how many frauds,
see ``shared.domain.merchant_risk``) and ``as_of`` (epoch seconds: stats are complete up to here);
one row ``counted``/``as_of`` holds when every merchant's visits were last counted up to.
Only the timer writes it, once per run per merchant seen: no per-transaction write, so a
big merchant never becomes a hot partition. Scoring reads a merchant at most once per
``FRAUD_MERCHANT_CACHE_SECONDS`` per process.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable


from shared.domain.merchant_risk import NO_MERCHANT, MerchantHistory, as_of_hour
from shared.adapters.tables import read_entity, shard_key, upsert_grouped
from shared.adapters.storage_account import create_if_missing
from shared.service.merchant_risk_book import MerchantRiskBook

SHARDS = 16
COUNTED = ("counted", "as_of")  # outside the merchants' m-<shard> partitions


def merchant_partition(merchant_id: str) -> str:
    return shard_key("m", merchant_id, SHARDS)


class MerchantRiskStore(MerchantRiskBook):
    def __init__(self, table_client: Any) -> None:
        self._table = table_client

    def ensure_table(self) -> None:
        create_if_missing(self._table.create_table)

    def load(self, merchant_id: str) -> tuple[MerchantHistory, float | None]:
        found = read_entity(self._table, merchant_partition(merchant_id), merchant_id)
        if found is None:
            return MerchantHistory(), None
        entity = found[0]
        as_of = entity.get("as_of")
        return MerchantHistory.from_properties(entity), (float(as_of) if as_of is not None else None)

    def save(self, histories: dict[str, MerchantHistory], as_of: float | None) -> int:
        entities = []
        for merchant_id, history in histories.items():
            entity = {"PartitionKey": merchant_partition(merchant_id), "RowKey": merchant_id, **history.to_properties()}
            if as_of is not None:
                entity["as_of"] = float(as_of)
            entities.append(entity)
        upsert_grouped(self._table, entities)
        return len(histories)

    def counted_as_of(self) -> float | None:
        found = read_entity(self._table, COUNTED[0], COUNTED[1])
        return float(found[0]["as_of"]) if found is not None else None

    def save_counted_as_of(self, as_of: float) -> None:
        self._table.upsert_entity({"PartitionKey": COUNTED[0], "RowKey": COUNTED[1], "as_of": float(as_of)})


class MerchantRiskCache:
    """What scoring sees: merchant risk values at a transaction's time, cached per merchant."""

    def __init__(self, store: MerchantRiskStore, ttl_seconds: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, MerchantHistory, float | None]] = {}
        self._counted: tuple[float, float | None] | None = None  # (read at, the store's counted_as_of)
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget what was read (``make run`` compresses time: a simulated hour passes in seconds)."""
        with self._lock:
            self._entries.clear()
            self._counted = None

    def _counted_as_of(self) -> float | None:
        cached = self._counted
        if cached is not None and self.clock() - cached[0] < self.ttl:
            return cached[1]
        counted = self.store.counted_as_of()
        self._counted = (self.clock(), counted)
        return counted

    def _entry(self, merchant_id: str) -> tuple[MerchantHistory, float | None]:
        with self._lock:
            entry = self._entries.get(merchant_id)
        if entry is not None and self.clock() - entry[0] < self.ttl:
            return entry[1], entry[2]
        history, as_of = self.store.load(merchant_id)
        with self._lock:
            self._entries[merchant_id] = (self.clock(), history, as_of)
            if len(self._entries) > 50_000:
                self._entries.pop(next(iter(self._entries)))
        return history, as_of

    def prefetch(self, merchant_ids: Iterable[str]) -> None:
        for merchant_id in merchant_ids:
            self._entry(merchant_id)

    def values(self, merchant_id: str | None, t: float, delay_days: float) -> list[float]:
        if not merchant_id:
            return list(NO_MERCHANT)
        history, stored_as_of = self._entry(merchant_id)
        if stored_as_of is None:
            return list(NO_MERCHANT)
        counted = self._counted_as_of()  # no visit since its own as_of: its hours up to here are zero
        as_of = stored_as_of if counted is None else max(stored_as_of, counted)
        return history.features(min(as_of_hour(t), as_of), delay_days)
