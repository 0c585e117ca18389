"""The ids tables.py gives its requests (x-ms-client-request-id) and $batch boundaries: UUID-shaped,
unique across threads, and a forked worker process does not repeat its parent's."""
from __future__ import annotations

import multiprocessing
import threading
import uuid

from shared.adapters.tables import unique_id


def test_ids_are_uuid_shaped_and_unique_across_threads():
    seen: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4, timeout=10)

    def take(k: int) -> None:
        start.wait()
        seen[k].extend(unique_id() for _ in range(5000))

    threads = [threading.Thread(target=take, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for part in seen for i in part]
    assert len(set(ids)) == len(ids) == 20000
    assert all(str(uuid.UUID(i)) == i for i in ids[:100])


def _child_id(queue) -> None:
    queue.put(unique_id())


def test_a_forked_process_has_its_own_prefix():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_id, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(timeout=30)
    ours = unique_id()
    assert theirs[:24] != ours[:24]
