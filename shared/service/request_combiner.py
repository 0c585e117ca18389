"""Group commit for concurrent synchronous calls: what arrives while a batch is in flight goes
in the next batch, so N concurrent callers share its storage round trips.

The Functions host runs concurrent HTTP requests on a thread pool in one process. Each
``POST /api/score`` alone would be its own id claim, profile commit, audit write and archive
append; through a ``RequestCombiner`` the requests that arrive while another batch is being
scored are scored together as one batch by the same path as an Event Hub batch (one claim per
index partition, one audit write per audit partition, one archive append, one ONNX call), and
each caller gets its own result. Nothing waits for company: a caller that finds no batch in
flight runs at once with whatever is queued (alone, if nothing is), so a lone request is not
delayed, and a request waits at most for the batch in flight before its own starts. Every
caller still returns only after its own batch is committed and written: no guarantee changes.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Slot(Generic[Item]):
    item: Item
    done: bool = False
    result: Any = None
    error: BaseException | None = None


@dataclass
class RequestCombiner(Generic[Item, Result]):
    """``submit(item)`` returns ``run(batch)[i]`` for the batch its item went in (``run`` returns
    one result per item, in order), or raises what ``run`` raised for that batch."""

    run: Callable[[Sequence[Item]], Sequence[Result]]
    max_batch: int = 64
    _queue: list[_Slot] = field(default_factory=list, init=False, repr=False)
    _busy: bool = field(default=False, init=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    batches: int = field(default=0, init=False)  # batches run (for tests and benchmarks)

    def submit(self, item: Item) -> Result:
        slot = _Slot(item)
        with self._cond:
            self._queue.append(slot)
            self._cond.notify_all()  # wakes ``wait_queued``
            while self._busy and not slot.done:
                self._cond.wait()
            if not slot.done:  # this caller leads: its item and those queued, oldest first
                self._busy = True
                self._queue.remove(slot)
                batch, self._queue = [slot] + self._queue[:self.max_batch - 1], self._queue[self.max_batch - 1:]
                self.batches += 1
        if not slot.done:
            self._lead(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result

    def wait_queued(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` callers wait for the next batch (for tests and benchmarks)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._queue) >= n, timeout)

    def _lead(self, batch: list[_Slot]) -> None:
        try:
            results = list(self.run([s.item for s in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"a combined run gave {len(results)} results for {len(batch)} items")
            for s, result in zip(batch, results):
                s.result = result
        except BaseException as exc:  # every caller of the batch gets the failure
            for s in batch:
                s.error = exc
        finally:
            with self._cond:
                for s in batch:
                    s.done = True
                self._busy = False
                self._cond.notify_all()
