"""Two analysts' verdicts on one transaction at the same moment, on Azurite: the label table's
current label is written only if it is still the one read (ETag), so the loser derives it again
from the whole history instead of overwriting the other's with a stale value."""
from datetime import datetime, timedelta, timezone

from shared.adapters.label_table import LabelStore
from shared.domain.labels import Label

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


class Interleaved(LabelStore):
    """The real adapter; once, right after it read the current labels, another process's put runs."""

    def __init__(self, table_client, other: LabelStore, labels: list[Label], now: datetime) -> None:
        super().__init__(table_client)
        self.pending = (other, labels, now)

    def _current_rows(self, transaction_ids):
        found = super()._current_rows(transaction_ids)
        if self.pending is not None:
            other, labels, now = self.pending
            self.pending = None
            other.put(labels, now=now)  # lands between this put's read and its write
        return found


def make(services):
    return services.table_service.get_table_client(services.config.label_table)


def test_a_concurrent_first_verdict_is_not_overwritten_by_a_stale_one(services):
    other = LabelStore(make(services))
    bob = Label("RACE1", False, None, NOW, "analyst", "bob@bank")  # given later: the current one
    store = Interleaved(make(services), other, [bob], NOW)
    written = store.put([Label("RACE1", True, None, NOW - timedelta(minutes=1), "analyst", "alice@bank")], now=NOW)
    assert [e["labelled_by"] for e in store.history("RACE1")] == ["alice@bank", "bob@bank"]
    current = store.get("RACE1")
    assert (current["label"], current["labelled_by"], current["history"]) == (0, "bob@bank", 2)
    assert [(r["label"], r["labelled_by"]) for r in written] == [(0, "bob@bank")]  # what alice's put reports


def test_a_concurrent_change_is_not_overwritten_by_a_stale_one(services):
    first = LabelStore(make(services))
    first.put([Label("RACE2", True, None, NOW - timedelta(hours=1), "analyst", "alice@bank")], now=NOW - timedelta(hours=1))
    other = LabelStore(make(services))
    carol = Label("RACE2", True, None, NOW, "analyst", "carol@bank")  # given last: the current one
    store = Interleaved(make(services), other, [carol], NOW)
    store.put([Label("RACE2", False, None, NOW - timedelta(minutes=1), "analyst", "bob@bank")], now=NOW)
    assert [e["labelled_by"] for e in store.history("RACE2")] == ["alice@bank", "bob@bank", "carol@bank"]
    current = store.get("RACE2")
    assert (current["label"], current["labelled_by"], current["history"]) == (1, "carol@bank", 3)
