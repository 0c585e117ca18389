"""Storage round trips in parallel: a thread pool started on first use, shared by the
calls of one service or adapter. A single item runs inline (no hand-off to a thread).

``map`` hands the pool one loop per worker, not one task per item: each loop (the calling
thread runs one too) takes the next item until none is left. A task per item cost a
``Future`` and its lock and condition, and a hand-off, per storage request: about a tenth of
a scoring batch's CPU (measured, docs/BENCHMARKS.md). Every item is tried even when another
fails, and the first failing item's exception (in item order) is raised, as with
``Executor.map``. The caller taking items too means a ``map`` from inside one of the pool's own
tasks cannot wait forever on a pool that is busy with its caller.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable


class RequestFanout:
    def __init__(self, workers: int, name: str) -> None:
        self.workers = workers
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self.name)
        return self._pool

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        results: list[Any] = [None] * len(items)
        failures: dict[int, BaseException] = {}
        indexes = iter(range(len(items)))
        take = threading.Lock()

        def run() -> None:
            while True:
                with take:
                    i = next(indexes, None)
                if i is None:
                    return
                try:
                    results[i] = fn(items[i])
                except BaseException as exc:  # kept for the caller; the other items still run
                    failures[i] = exc

        pool = self._executor()
        helpers = [pool.submit(run) for _ in range(min(self.workers, len(items)) - 1)]
        run()
        for helper in helpers:  # not started yet: nothing is left for it (and its worker may be busy with us)
            helper.cancel()
        wait(helpers)
        if failures:
            raise failures[min(failures)]
        return results

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._executor().submit(fn, *args)
