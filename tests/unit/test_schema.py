"""The transaction schema: a table of good and bad inputs."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain.transaction import validate_transaction

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
GOOD = {
    "transaction_id": "T-1:a@b.c_d",
    "customer_id": "C12345",
    "transaction_amount": 250000,
    "currency": "NGN",
    "timestamp": "2026-11-29T02:00:00+01:00",
    "device_id": "new_device_99",
    "merchant_id": "M001",
    "merchant_category": "electronics",
    "channel": "online",
    "country": "NG",
}


def check(payload, **kwargs):
    return validate_transaction(payload, now=NOW, **kwargs)


def test_a_complete_transaction_is_valid_and_keeps_its_local_offset():
    outcome = check(GOOD)
    assert outcome.ok and outcome.errors == ()
    txn = outcome.transaction
    assert txn.transaction_amount == 250000.0 and txn.timestamp.hour == 2
    assert txn.timestamp.utcoffset() == timedelta(hours=1)


def test_the_seeds_example_body_validates_on_the_http_path():
    seed = {"customer_id": "C12345", "transaction_amount": 250000, "device_id": "new_device_99",
            "merchant_category": "electronics", "channel": "online"}
    outcome = check(seed, fill_missing=True)
    assert outcome.ok
    assert set(outcome.generated) == {"transaction_id", "timestamp"}
    assert outcome.transaction.timestamp == NOW
    assert outcome.transaction.currency == "NGN"
    assert outcome.transaction.transaction_id.startswith("gen-")


def test_without_fill_missing_the_ids_and_timestamp_are_required():
    outcome = check({"customer_id": "C1", "transaction_amount": 5})
    assert {e.field for e in outcome.errors} == {"transaction_id", "timestamp"}


@pytest.mark.parametrize(
    "field,value,fragment",
    [
        ("customer_id", "C/1", "'/'"),
        ("customer_id", "C\\1", "'\\\\'"),
        ("customer_id", "C#1", "'#'"),
        ("customer_id", "C?1", "'?'"),
        ("customer_id", "C\x001", "'\\x00'"),
        ("customer_id", "", "1-64"),
        ("customer_id", "C" * 65, "1-64"),
        ("customer_id", 12345, "string"),
        ("transaction_id", "T 1", "' '"),
        ("transaction_amount", 0, "greater than 0"),
        ("transaction_amount", -5, "greater than 0"),
        ("transaction_amount", float("nan"), "finite"),
        ("transaction_amount", float("inf"), "finite"),
        ("transaction_amount", "100", "number"),
        ("transaction_amount", True, "number"),
        ("transaction_amount", 2e9, "at most"),
        ("currency", "XYZ", "ISO 4217"),
        ("timestamp", "2026-11-29 02:00:00", "UTC offset"),
        ("timestamp", "yesterday", "ISO 8601"),
        ("timestamp", "2026-11-29T12:06:00+00:00", "future"),
        ("channel", "carrier-pigeon", "one of"),
        ("device_id", "dev/1", "'/'"),
        ("country", "Nigeria", "ISO 3166"),
    ],
)
def test_each_bad_field_is_named_with_its_problem(field, value, fragment):
    outcome = check({**GOOD, field: value})
    assert not outcome.ok
    assert [e.field for e in outcome.errors] == [field]
    assert fragment in outcome.errors[0].problem


def test_every_offending_field_is_listed_once():
    outcome = check({**GOOD, "customer_id": "a/b", "transaction_amount": -1, "channel": "fax"})
    assert [e.field for e in outcome.errors] == ["customer_id", "transaction_amount", "channel"]
    assert all(set(e.to_dict()) == {"field", "problem"} for e in outcome.errors)


def test_a_timestamp_within_five_minutes_ahead_is_accepted_and_z_is_utc():
    assert check({**GOOD, "timestamp": "2026-11-29T12:04:00Z"}).ok


def test_optional_fields_may_be_missing():
    minimal = {k: GOOD[k] for k in ("transaction_id", "customer_id", "transaction_amount", "timestamp")}
    txn = check(minimal).transaction
    assert txn.device_id is None and txn.channel is None and txn.country is None


def test_non_object_payloads_are_rejected_at_the_root():
    for payload in ([], "x", 3, None):
        outcome = check(payload)
        assert not outcome.ok and outcome.errors[0].field == "$"
