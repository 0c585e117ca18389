"""An outlet that fails (Blob storage down) does not fail scoring: its decisions wait in
memory, in order, and are written first once it works again; beyond a bound the call fails."""
from datetime import datetime, timezone

import pytest

from fraud_events import decision_record
from shared.domain.decision_record import Delivery
from shared.service.outlet_buffer import BufferedOutlet, OutletBacklogFull

NOW = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


class FlakyOutlet:
    def __init__(self) -> None:
        self.down = False
        self.written: list[str] = []

    def record(self, deliveries) -> None:
        if self.down:
            raise OSError("blob storage unavailable")
        self.written.extend(d.record.transaction_id for d in deliveries)


def batch(*ids):
    return [Delivery(decision_record(i, NOW, "Low")) for i in ids]


def test_failed_writes_wait_and_go_first_in_order_when_the_store_is_back():
    inner = FlakyOutlet()
    outlet = BufferedOutlet(inner, "archive", max_pending=10)
    outlet.record(batch("A1", "A2"))
    inner.down = True
    outlet.record(batch("B1", "B2", "B3"))
    outlet.record(batch("C1"))
    assert outlet.pending == 4 and inner.written == ["A1", "A2"]
    inner.down = False
    outlet.record(batch("D1"))
    assert inner.written == ["A1", "A2", "B1", "B2", "B3", "C1", "D1"] and outlet.pending == 0


def test_beyond_the_bound_the_call_fails_and_keeps_nothing_of_it():
    inner = FlakyOutlet()
    inner.down = True
    outlet = BufferedOutlet(inner, "archive", max_pending=4)
    outlet.record(batch("A1", "A2", "A3"))
    with pytest.raises(OutletBacklogFull):
        outlet.record(batch("B1", "B2"))  # the caller's retry brings these again
    assert outlet.pending == 3
    inner.down = False
    outlet.record(batch("B1", "B2"))
    assert inner.written == ["A1", "A2", "A3", "B1", "B2"]
