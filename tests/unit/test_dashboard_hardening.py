"""Small hardening of what analysts get (issue #16, item 7): a forged alert-queue cursor is
refused before any storage read, and exported CSV cells never start a formula."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain.decision_record import export_row
from shared.service.dashboard_views import MAX_HOURS, BadCursor, alert_queue, encode_cursor

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


class NoStorage:
    """Any attribute read fails the test: the cursor must be refused before storage is touched."""

    def __getattr__(self, name):
        raise AssertionError(f"storage touched ({name}) for a cursor that should be refused")


@pytest.mark.parametrize("after, start", [
    (datetime(2030, 1, 1, tzinfo=timezone.utc), datetime(2000, 1, 1, tzinfo=timezone.utc)),  # 260,000 hours
    (NOW - timedelta(hours=1), NOW - timedelta(hours=MAX_HOURS + 1)),  # further back than the queue goes
    (NOW + timedelta(days=1), NOW - timedelta(hours=2)),  # in the future
    (NOW - timedelta(hours=5), NOW - timedelta(hours=1)),  # the window starts after the cursor's time
])
def test_a_cursor_outside_the_queue_s_window_is_refused_before_any_read(after, start):
    with pytest.raises(BadCursor, match="outside the alert queue's window"):
        alert_queue(NoStorage(), cursor=encode_cursor(after, "T1", start), now=NOW)


def test_exported_cells_that_would_run_as_formulas_are_made_inert():
    row = export_row({"transaction_id": "T1", "merchant_category": "=HYPERLINK(\"http://x\",\"y\")",
                      "device_id": "@SUM(A1)", "country": "+NG", "channel": "-mobile", "merchant_id": "M1",
                      "transaction_amount": -5.0, "fraud_score": 0.25, "label": 1})
    assert row["merchant_category"].startswith("'=") and row["device_id"] == "'@SUM(A1)"
    assert (row["country"], row["channel"], row["merchant_id"]) == ("'+NG", "'-mobile", "M1")
    assert (row["transaction_amount"], row["fraud_score"], row["label"]) == (-5.0, 0.25, 1)  # numbers stay numbers


def _unsigned(after, start):
    """A cursor as the queue made them before they were signed: base64 of the JSON alone."""
    import base64
    import json

    raw = json.dumps({"t": after.isoformat(), "id": "T1", "s": start.isoformat()}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_forged_or_edited_cursor_is_refused_before_any_read():
    import base64

    after, start = NOW - timedelta(hours=1), NOW - timedelta(hours=2)  # inside the window: only the signature stops it
    genuine = encode_cursor(after, "T1", start)
    payload, _, signature = genuine.partition(".")
    edited = base64.urlsafe_b64encode(base64.urlsafe_b64decode(payload + "==").replace(b'"T1"', b'"T9"')).decode().rstrip("=")
    for forged in (_unsigned(after, start), edited + "." + signature, payload + "." + signature[:-2] + "AA",
                   payload + ".", "." + signature, genuine + "x", "", "....", "ä.ö"):
        with pytest.raises(BadCursor, match="signature does not match"):
            alert_queue(NoStorage(), cursor=forged or ".", now=NOW)


def test_a_cursor_signed_with_another_key_is_refused_and_instances_sharing_the_secret_agree():
    from shared.service.dashboard_views import cursor_key, decode_cursor

    after, start = NOW - timedelta(hours=1), NOW - timedelta(hours=2)
    one, other = cursor_key(b"pseudonym-secret"), cursor_key(b"pseudonym-secret")
    assert one == other and one != b"pseudonym-secret" and len(one) == 32  # derived, never the secret itself
    cursor = encode_cursor(after, "T1", start, one)
    assert decode_cursor(cursor, other) == (after, "T1", start)  # another instance, same secret
    with pytest.raises(BadCursor, match="signature"):
        decode_cursor(cursor, cursor_key(b"another secret"))
    with pytest.raises(BadCursor, match="signature"):
        decode_cursor(cursor)  # this process's random key
    assert cursor_key(None) == cursor_key(b"")  # unset: the per-process key
