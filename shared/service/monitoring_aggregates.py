"""The scoring side of monitoring: each process adds its decisions to hourly aggregates and
writes them every ``flush_seconds`` (a ``DecisionOutletPort``).

Each process writes its own rows: one per event hour and *generation*, replaced at every
flush with the running totals, so writers never contend and a repeated flush changes
nothing. A process forgets an hour ``keep_hours`` after the newest it has seen; should a late
decision of that hour come later, it starts a new generation (a new row), never overwriting
the old one with smaller totals.

Counting is once per decision as far as this process knows: redeliveries (``duplicate``)
are skipped. What a process had not flushed when it died (at most ``flush_seconds`` of its
decisions) is missing from the aggregates, never counted twice; the audit log and the
archive still hold those decisions. A failed write is logged and retried at the next flush:
it never fails scoring (the batch's retry would count it again).

Decisions wait in a small per-aggregate list until ``fold_rows`` of them are there (or the next
flush), then are added in one ``HourAggregate.add``: its cost is mostly per call (numpy over
each reference feature's bins), and an HTTP request brings one decision (issue #17).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from shared.domain.decision_record import Delivery
from shared.domain.monitoring_aggregate import AggregateKey, HourAggregate, ServingReference, decision_row, hour_of
from shared.service.append_staging import writer_id
from shared.service.ports import MonitoringAggregatePort

log = logging.getLogger(__name__)


@dataclass
class MonitoringAggregator:
    store: MonitoringAggregatePort
    reference_of: Callable[[str], ServingReference]  # a model version's reference (its manifest's)
    flush_seconds: float = 60.0
    keep_hours: int = 2
    clock: Callable[[], float] = time.monotonic
    process: str = field(default_factory=writer_id)
    fold_rows: int = 64  # decisions an aggregate takes in one add (fewer wait for the next flush)
    _open: dict[AggregateKey, HourAggregate] = field(default_factory=dict, init=False)
    _dirty: set[int] = field(default_factory=set, init=False)
    _generation: dict[int, int] = field(default_factory=lambda: defaultdict(int), init=False)
    _flushed_at: float | None = field(default=None, init=False)
    _waiting: dict[AggregateKey, list[dict[str, Any]]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _references: dict[str, ServingReference] = field(default_factory=dict, init=False)

    def record(self, deliveries: Sequence[Delivery]) -> None:
        grouped: dict[AggregateKey, list[dict[str, Any]]] = defaultdict(list)
        for delivery in deliveries:
            if delivery.duplicate or delivery.record is None:
                continue
            row = decision_row(delivery.record)
            grouped[(hour_of(delivery.record.transaction.timestamp), row["model_version"], row["shadow_version"])].append(row)
        if grouped:
            with self._lock:
                for key, rows in grouped.items():
                    waiting = self._waiting.setdefault(key, [])
                    waiting.extend(rows)
                    if len(waiting) >= self.fold_rows:
                        self._fold(key)
                    self._dirty.add(key[0])
        now = self.clock()
        if self._flushed_at is None:
            self._flushed_at = now
        if now - self._flushed_at >= self.flush_seconds:  # 0: every call (tests, make run)
            self.flush()

    def _fold(self, key: AggregateKey) -> None:
        """Add the decisions waiting for ``key`` to its aggregate (under the lock)."""
        rows = self._waiting.pop(key, None)
        if rows:
            self._aggregate(key).add(rows, self._reference(key[1]))

    def _reference(self, version: str) -> ServingReference:
        reference = self._references.get(version)
        if reference is None:
            reference = self._references[version] = self.reference_of(version)
        return reference

    def _aggregate(self, key: AggregateKey) -> HourAggregate:
        aggregate = self._open.get(key)
        if aggregate is None:
            hour, version, shadow_version = key
            shadow = self._reference(shadow_version).thresholds if shadow_version else None
            aggregate = self._open[key] = HourAggregate.start(hour, self._reference(version), version, shadow_version, shadow)
        return aggregate

    def flush(self) -> int:
        """Write every hour changed since the last flush; returns the rows written."""
        with self._lock:
            self._flushed_at = self.clock()
            for key in list(self._waiting):
                self._fold(key)
            documents = {hour: {"process": self.process, "generation": self._generation[hour],
                                "aggregates": [a.to_dict() for k, a in self._open.items() if k[0] == hour]}
                         for hour in self._dirty}
            self._dirty.clear()
        written = 0
        for hour, document in sorted(documents.items()):
            try:
                self.store.put(hour, f"{self.process}-g{document['generation']:03d}", document)
                written += 1
            except Exception as exc:  # retried at the next flush; never fails scoring
                log.error("monitoring aggregates of hour %d not written (retried at the next flush): %s", hour, exc)
                with self._lock:
                    self._dirty.add(hour)
        self._forget_old_hours()
        return written

    def _forget_old_hours(self) -> None:
        with self._lock:
            if not self._open:
                return
            newest = max(k[0] for k in self._open)
            old = {k[0] for k in self._open if k[0] < newest - self.keep_hours and k[0] not in self._dirty}
            for key in [k for k in self._open if k[0] in old]:
                del self._open[key]
            for hour in old:
                self._generation[hour] += 1


def reference_lookup(manifests: Callable[[str], Mapping[str, Any] | None]) -> Callable[[str], ServingReference]:
    """A model version's ``ServingReference`` from a manifest lookup (None: no reference, counts only)."""
    def reference_of(version: str) -> ServingReference:
        try:
            manifest = manifests(version)
        except Exception as exc:
            log.warning("no manifest for model %s (its decisions are counted without drift bins): %s", version, exc)
            manifest = None
        return ServingReference.from_manifest(manifest) if manifest else ServingReference(
            version, (), {}, 0, None, {}, None)
    return reference_of
