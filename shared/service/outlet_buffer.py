"""An outlet that rides out a storage outage: what it could not write waits in memory, in
order, and goes first at the next scoring call.

The decision archive and the training sample append to Blob storage after the decision is
committed (profile, audit log). Failing the scoring call when Blob storage is down would stop
scoring for an outage of a store the decision does not depend on; so a failed write is
logged and kept, and scoring goes on. At most ``max_pending`` decisions wait: beyond that the
call fails (back pressure: the host retries it, and nothing more piles up in memory). What
waits is lost if the process dies before Blob storage is back — at most ``max_pending``
decisions, every one still in the audit log (the archive's and the sample's readers drop
repeats by transaction id, so a later re-append is harmless).
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

from shared.domain.decision_record import Delivery
from shared.service.ports import DecisionOutletPort

log = logging.getLogger(__name__)


class OutletBacklogFull(Exception):
    """More decisions wait for a failing outlet than it may keep in memory."""


@dataclass
class BufferedOutlet:
    inner: DecisionOutletPort
    name: str
    max_pending: int = 50_000
    _pending: deque = field(default_factory=deque, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def pending(self) -> int:
        return sum(len(batch) for batch in self._pending)

    def record(self, deliveries: Sequence[Delivery]) -> None:
        if self._pending:
            self._drain()
        if self._pending:  # still failing: this call's decisions wait behind the others
            self._queue(deliveries, None)
            return
        try:
            self.inner.record(deliveries)
        except Exception as exc:
            self._queue(deliveries, exc)

    def _queue(self, deliveries: Sequence[Delivery], exc: Exception | None) -> None:
        with self._lock:
            waiting = self.pending + len(deliveries)
            if waiting > self.max_pending:  # the caller's retry brings this call's decisions again
                raise OutletBacklogFull(f"{self.name}: {waiting} decisions would wait for a write that keeps "
                                        f"failing") from exc
            self._pending.append(list(deliveries))
        log.error("%s: write failed, %d decisions wait in memory for the next call: %s", self.name, waiting,
                  exc or "an earlier write is still failing")

    def _drain(self) -> None:
        """Write what waits, oldest first, until a write fails (one drainer at a time)."""
        with self._lock:
            while self._pending:
                try:
                    self.inner.record(self._pending[0])
                except Exception:
                    return
                self._pending.popleft()
