"""RequestFanout.map: every item in item order, in parallel, every item tried when one fails,
and a map from inside the pool's own tasks finishes even when the pool is busy."""
from __future__ import annotations

import threading

import pytest

from shared.service.fanout import RequestFanout


def test_results_come_back_in_item_order():
    fanout = RequestFanout(4, "test-order")
    assert fanout.map(lambda x: x * x, range(50)) == [x * x for x in range(50)]
    assert fanout.map(lambda x: x, []) == []
    assert fanout.map(lambda x: -x, [3]) == [-3]


def test_items_run_in_parallel_on_as_many_threads_as_workers():
    fanout = RequestFanout(4, "test-parallel")
    together = threading.Barrier(4, timeout=10)  # breaks (and the test fails) unless 4 run at once
    threads = fanout.map(lambda _: (together.wait(), threading.get_ident())[1], range(4))
    assert len(set(threads)) == 4
    assert threading.get_ident() in threads  # the caller takes items too


def test_every_item_is_tried_and_the_first_failure_in_item_order_is_raised():
    fanout = RequestFanout(3, "test-failures")
    tried = []
    lock = threading.Lock()

    def fn(x):
        with lock:
            tried.append(x)
        if x in (7, 3):
            raise ValueError(f"item {x}")
        return x

    with pytest.raises(ValueError, match="item 3"):
        fanout.map(fn, range(20))
    assert sorted(tried) == list(range(20))


def test_a_map_inside_the_pools_own_tasks_finishes_with_every_worker_busy():
    fanout = RequestFanout(2, "test-nested")
    done = threading.Event()
    outcome = []

    def outer():
        # both workers and the caller run an ``inner`` map whose helper tasks queue behind them
        outcome.append(fanout.map(lambda x: sum(fanout.map(lambda y: x * y, range(5))), range(6)))
        done.set()

    threading.Thread(target=outer, daemon=True).start()
    assert done.wait(timeout=30), "a nested map waited on helpers that could never start"
    assert outcome == [[x * 10 for x in range(6)]]
