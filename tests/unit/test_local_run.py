"""make run's simulated time: the bank's labels arrive once known, each only once; the
injected drift moves what it says; days end at local midnight."""
from datetime import datetime, timezone

from tools.local_run import by_day, inject_drift, labels_known_by


def row(txn, when, channel="pos", is_fraud="0", labelled_at=""):
    return {"transaction_id": txn, "timestamp": when, "channel": channel, "is_fraud": is_fraud, "labelled_at": labelled_at}


def test_labels_arrive_when_the_bank_learned_them_and_only_once():
    rows = [row("T1", "2026-11-22T10:00:00+01:00", is_fraud="1", labelled_at="2026-11-22T20:00:00+01:00"),
            row("T2", "2026-11-22T11:00:00+01:00", is_fraud="1", labelled_at="2026-11-25T09:00:00+01:00"),
            row("T3", "2026-11-22T12:00:00+01:00")]
    sent: set[str] = set()
    first = labels_known_by(rows, datetime(2026, 11, 22, 23, tzinfo=timezone.utc), sent).decode().splitlines()
    assert first == ["transaction_id,label,labelled_at,source", "T1,1,2026-11-22T20:00:00+01:00,simulation"]
    later = labels_known_by(rows, datetime(2026, 11, 26, tzinfo=timezone.utc), sent).decode().splitlines()
    assert later[1:] == ["T2,1,2026-11-25T09:00:00+01:00,simulation"]  # T1 not again; T3 never labelled


def test_injected_drift_moves_card_and_online_payments_to_mobile_only():
    rows = [row(f"T{i}", "2026-11-22T10:00:00+01:00", channel=c) for i, c in enumerate(["pos", "online", "atm"] * 200)]
    moved = inject_drift(rows, seed=7)
    assert 270 < moved < 370 and sum(r["channel"] == "mobile" for r in rows) == moved
    assert sum(r["channel"] == "atm" for r in rows) == 200


def test_days_end_at_local_midnight():
    days = by_day([row("A", "2026-11-22T00:30:00+01:00"), row("B", "2026-11-22T23:59:00+01:00"),
                   row("C", "2026-11-23T08:00:00+01:00")])
    assert [(end.isoformat(), [r["transaction_id"] for r in rows]) for end, rows in days] == [
        ("2026-11-22T23:00:00+00:00", ["A", "B"]), ("2026-11-23T23:00:00+00:00", ["C"])]
