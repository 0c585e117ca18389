"""How the timer updates merchant risk, over any store's ``load``/``save``: the Table
adapter and the in-memory fake inherit the same updates."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from typing import Iterable

from shared.domain.merchant_risk import MerchantHistory


class MerchantRiskBook(ABC):
    @abstractmethod
    def load(self, merchant_id: str) -> tuple[MerchantHistory, float | None]:
        """A merchant's history and the time its counts are complete up to (None: never counted)."""

    @abstractmethod
    def save(self, histories: dict[str, MerchantHistory], as_of: float | None) -> int:
        """Store histories; ``as_of`` None keeps each merchant's stored one."""

    @abstractmethod
    def counted_as_of(self) -> float | None:
        """Every merchant's visits are counted up to here (None: never): a merchant whose own
        ``as_of`` is older had no visit since, so its hours up to here are zero."""

    @abstractmethod
    def save_counted_as_of(self, as_of: float) -> None:
        """Record that every merchant's visits are counted up to ``as_of``."""

    def add_frauds(self, frauds: Iterable[tuple[str, str, float, float]]) -> int:
        """(merchant, transaction id, event time, known at) for newly joined fraud labels; idempotent:
        a fraud already counted (its transaction id's fingerprint in its event day's set) is not
        counted again, so a label joined twice changes nothing."""
        grouped: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
        for merchant, txn_id, t, known in frauds:
            if merchant:
                grouped[merchant].append((txn_id, t, known))
        histories = {}
        counted = self.counted_as_of() if grouped else None
        for merchant, items in grouped.items():
            history, as_of = self.load(merchant)
            for txn_id, t, known in items:
                history.add_fraud(txn_id, t, known)
            recounted = max((a for a in (as_of, counted) if a is not None), default=None)
            if recounted is not None:
                history.prune(recounted)  # settled as at the last recount: a month of labels at once stays small
            histories[merchant] = history
        self.save(histories, None)
        return len(histories)

    def refresh_counts(self, hourly: dict[str, dict[int, list[int]]], first_hour: int, as_of: float) -> int:
        """Replace the hourly stats of hours [first_hour, as_of) with ``hourly`` (recounted from the
        audit log, so late events are included and a repeated run changes nothing)."""
        histories = {}
        for merchant, stats in hourly.items():
            history, _ = self.load(merchant)
            history.recount(stats, first_hour, as_of)
            histories[merchant] = history
        saved = self.save(histories, as_of)
        counted = self.counted_as_of()
        if counted is None or first_hour * 3600 <= counted <= as_of:  # no gap since the last recount
            self.save_counted_as_of(as_of)
        return saved

    def backfill(self, histories: dict[str, MerchantHistory], as_of: float) -> int:
        """Histories counted from a complete history up to ``as_of`` (``make run``, a first deployment)."""
        for history in histories.values():
            history.prune(as_of)  # as the timer stores them: old hours dropped, known frauds settled
        saved = self.save(histories, as_of)
        self.save_counted_as_of(as_of)
        return saved
