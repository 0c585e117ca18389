"""Small scoring calls share one write: an outlet whose decisions may wait a moment.

A synchronous ``POST /api/score`` is a scoring call of one decision. Appending its archive
line (or training-sample line) to Blob storage at once costs a storage request per request,
a quarter of the request's CPU and a quarter of its storage requests (docs/BENCHMARKS.md).
``LingeringOutlet`` lets a call of fewer than ``direct_at`` decisions wait up to
``linger_seconds`` for the next calls, and writes them all in one call of the outlet it
wraps: on the next call that brings the waiting ones to ``direct_at``, or from a background
thread when the oldest has waited ``linger_seconds``. A call of ``direct_at`` or more (an
Event Hub batch) is written with the call, as before, together with any that wait.

What it weakens, and why that is acceptable for the outlets it wraps (the archive's staging
half and the training sample; never the audit log, the profile or the alerts): a process
that dies holding waiting decisions loses at most ``linger_seconds`` of its small calls'
lines, every one still in the audit log. ``BufferedOutlet`` already accepts that loss, for
longer, during a Blob outage; so it does not linger while its inner outlet has a backlog:
then each call goes straight through, so its back pressure reaches the caller as before. At
interpreter exit the waiting lines are written (``atexit``).
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Sequence

from shared.domain.decision_record import Delivery
from shared.service.ports import DecisionOutletPort

log = logging.getLogger(__name__)

_LIVE: "weakref.WeakSet[LingeringOutlet]" = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for outlet in list(_LIVE):
        try:
            outlet.flush()
        except Exception as exc:  # nothing is left to report it to but the log
            log.error("%s: %d decisions not written at exit: %s", outlet.name, outlet.waiting, exc)


@dataclass(eq=False)
class LingeringOutlet:
    inner: DecisionOutletPort
    name: str
    linger_seconds: float = 1.0
    direct_at: int = 32
    clock: Callable[[], float] = time.monotonic
    _waiting: list = field(default_factory=list, init=False)
    _since: float | None = field(default=None, init=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, init=False)
    _writing: threading.Lock = field(default_factory=threading.Lock, init=False)
    _flusher: threading.Thread | None = field(default=None, init=False)
    writes: int = field(default=0, init=False)  # calls of the inner outlet (tests read it)

    def __post_init__(self) -> None:
        _LIVE.add(self)

    @property
    def waiting(self) -> int:
        """Decisions lingering here, not yet handed to the wrapped outlet."""
        return len(self._waiting)

    @property
    def pending(self) -> int:
        """Decisions not yet written: those lingering here and those the wrapped outlet keeps
        (a ``BufferedOutlet`` during a Blob outage)."""
        return self.waiting + getattr(self.inner, "pending", 0)

    def record(self, deliveries: Sequence[Delivery]) -> None:
        if self.linger_seconds <= 0:
            self._write(list(deliveries))
            return
        with self._changed:
            backlog = getattr(self.inner, "pending", 0)  # a failing store: no lingering, back pressure
            if len(self._waiting) + len(deliveries) < self.direct_at and not backlog:
                self._waiting.extend(deliveries)
                if self._since is None:
                    self._since = self.clock()
                    self._start_flusher()
                    self._changed.notify_all()
                return
            earlier = self._take()
        try:
            self._write(earlier + list(deliveries))
        except Exception:
            self._give_back(earlier)  # this call's own decisions come again with its retry
            raise

    def flush(self) -> int:
        """Write what waits now; returns how many decisions were written."""
        with self._changed:
            batch = self._take()
        if batch:
            try:
                self._write(batch)
            except Exception:
                self._give_back(batch)
                raise
        return len(batch)

    def _take(self) -> list:
        batch, self._waiting, self._since = self._waiting, [], None
        return batch

    def _give_back(self, batch: list) -> None:
        if batch:
            with self._changed:
                self._waiting[:0] = batch
                if self._since is None:
                    self._since = self.clock()
                self._changed.notify_all()

    def _write(self, batch: list) -> None:
        if batch:
            with self._writing:  # one write at a time keeps the lines of one hour in call order
                self.inner.record(batch)
                self.writes += 1

    def _start_flusher(self) -> None:
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self._flush_when_due, args=(weakref.ref(self),),
                                             name=f"linger-{self.name}", daemon=True)
            self._flusher.start()

    @staticmethod
    def _flush_when_due(ref: "weakref.ref[LingeringOutlet]") -> None:
        """The background writer: wakes when the oldest waiting decision is due. Holds only a
        weak reference between waits, so a dropped outlet (tests build many) ends its thread."""
        while True:
            outlet = ref()
            if outlet is None:
                return
            with outlet._changed:
                if outlet._since is None:
                    outlet._changed.wait(timeout=5.0)
                    due = None
                else:
                    due = outlet._since + outlet.linger_seconds - outlet.clock()
                    if due > 0:
                        outlet._changed.wait(timeout=due)
            if due is not None and due <= 0:
                try:
                    outlet.flush()
                except Exception as exc:  # waits again: written by the next call or flush
                    log.error("%s: %d decisions wait for a failing write: %s", outlet.name, outlet.waiting, exc)
            del outlet
