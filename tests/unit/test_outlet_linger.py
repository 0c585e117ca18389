"""LingeringOutlet: small calls' decisions share one write of the outlet it wraps; a big call
goes at once (with what waits); the background writer writes what waited its time; during a
backlog of the store (BufferedOutlet) nothing lingers, so back pressure reaches the caller."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from fraud_events import decision_record
from shared.domain.decision_record import Delivery
from shared.service.outlet_buffer import BufferedOutlet, OutletBacklogFull
from shared.service.outlet_linger import LingeringOutlet

NOW = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


class RecordingOutlet:
    def __init__(self) -> None:
        self.down = False
        self.calls: list[list[str]] = []
        self.wrote = threading.Event()

    def record(self, deliveries) -> None:
        if self.down:
            raise OSError("blob storage unavailable")
        self.calls.append([d.record.transaction_id for d in deliveries])
        self.wrote.set()


def batch(*ids):
    return [Delivery(decision_record(i, NOW, "Low")) for i in ids]


class FrozenClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_small_calls_share_one_write_and_a_big_call_takes_the_waiting_ones_with_it():
    inner = RecordingOutlet()
    outlet = LingeringOutlet(inner, "archive", linger_seconds=3600, direct_at=5, clock=FrozenClock())
    outlet.record(batch("A"))
    outlet.record(batch("B", "C"))
    assert inner.calls == [] and outlet.waiting == 3
    outlet.record(batch("D", "E"))  # 5 with those waiting: written now, in call order
    assert inner.calls == [["A", "B", "C", "D", "E"]] and outlet.waiting == 0
    outlet.record(batch(*"FGHIJK"))  # a big call alone: at once
    assert inner.calls[-1] == list("FGHIJK") and outlet.writes == 2


def test_flush_writes_what_waits_and_nothing_twice():
    inner = RecordingOutlet()
    outlet = LingeringOutlet(inner, "archive", linger_seconds=3600, direct_at=100, clock=FrozenClock())
    outlet.record(batch("A"))
    outlet.record(batch("B"))
    assert outlet.flush() == 2 and inner.calls == [["A", "B"]]
    assert outlet.flush() == 0 and inner.calls == [["A", "B"]]


def test_the_background_writer_writes_what_waited_its_time_without_another_call():
    inner = RecordingOutlet()
    clock = FrozenClock()
    outlet = LingeringOutlet(inner, "archive", linger_seconds=0.05, direct_at=100, clock=clock)
    outlet.record(batch("A"))
    outlet.record(batch("B"))
    assert not inner.wrote.is_set()
    clock.now = 1.0  # their time is up: the writer, waking within linger_seconds, finds them due
    assert inner.wrote.wait(timeout=30), "the lingering decisions were never written"
    assert inner.calls == [["A", "B"]] and outlet.waiting == 0


def test_zero_linger_writes_every_call_at_once():
    inner = RecordingOutlet()
    outlet = LingeringOutlet(inner, "archive", linger_seconds=0)
    outlet.record(batch("A"))
    outlet.record(batch("B"))
    assert inner.calls == [["A"], ["B"]]


def test_a_failed_big_write_keeps_the_waiting_ones_and_the_caller_gets_the_error():
    inner = RecordingOutlet()
    outlet = LingeringOutlet(inner, "archive", linger_seconds=3600, direct_at=3, clock=FrozenClock())
    outlet.record(batch("A"))
    inner.down = True
    with pytest.raises(OSError):
        outlet.record(batch("B", "C"))  # the caller's retry brings B and C again
    assert outlet.waiting == 1  # A, whose call had returned, still waits
    inner.down = False
    outlet.record(batch("B", "C"))
    assert inner.calls == [["A", "B", "C"]]


def test_during_a_store_backlog_nothing_lingers_so_back_pressure_reaches_the_caller():
    inner = RecordingOutlet()
    buffered = BufferedOutlet(inner, "archive", max_pending=3)
    outlet = LingeringOutlet(buffered, "archive", linger_seconds=3600, direct_at=100, clock=FrozenClock())
    inner.down = True
    outlet.record(batch(*"ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:2]))  # lingers (no backlog yet)
    assert outlet.pending == 2 and buffered.pending == 0  # lingering here
    outlet.flush()  # the write fails: BufferedOutlet keeps them
    assert buffered.pending == 2 and outlet.waiting == 0 and outlet.pending == 2
    outlet.record(batch("C"))  # a backlog: straight through to the buffer, not lingering
    assert buffered.pending == 3 and outlet.waiting == 0
    with pytest.raises(OutletBacklogFull):
        outlet.record(batch("D"))
    inner.down = False
    outlet.record(batch("D"))
    assert [i for call in inner.calls for i in call] == ["A", "B", "C", "D"]
