"""Hostile input: property-based tests (hypothesis) of the schema, the features, the decision
rules and the Event Hub function on Azurite.

Promises: validation never raises on any JSON value and names a known field in every error;
valid transactions survive a round trip; one corrupted field is reported as exactly that
field; a batch with garbage mixed in scores the valid events and dead-letters the rest with
reasons, and sent = scored + dead-lettered.
"""
from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fraud_events import audit_rows, event_hub_batch
from functions.score_stream import score_stream
from shared.domain.decision import Thresholds
from shared.domain.features import FEATURE_NAMES, CustomerProfile, features_then_record
from shared.domain.merchant_risk import NO_MERCHANT
from shared.domain.transaction import CHANNELS, KNOWN_FIELDS, MERCHANT_CATEGORIES, validate_transaction

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
ERROR_FIELDS = KNOWN_FIELDS | {"$"}
MEGABYTE = "x" * 1_000_000

# -- strategies -------------------------------------------------------------------------
json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
                | st.text(max_size=80))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
hostile_values = st.one_of(
    json_values,
    st.integers(min_value=10**300, max_value=10**400),  # beyond float range
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, -0.0, 1e-320, 1e309]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=80),  # any character, incl. / \\ # ? controls
    st.sampled_from([MEGABYTE, "", " ", "\x00", "a/b", "a\\b", "a#b", "a?b", "\u202e", "ß", "ﬀ", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-14:00", "2026-11-29T12:00:00", "Z", "NaN"]),
)
ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:@", min_size=1, max_size=64)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.builds(lambda seconds, tz: (NOW - timedelta(seconds=seconds)).astimezone(tz).isoformat(),
                       st.integers(min_value=0, max_value=400 * 86400), offsets)


@st.composite
def valid_transactions(draw, customer=None):
    body = {
        "transaction_id": draw(ids),
        "customer_id": customer or draw(ids),
        "transaction_amount": draw(st.floats(min_value=0.01, max_value=1e9, allow_nan=False, allow_infinity=False)),
        "timestamp": draw(timestamps),
    }
    optional = {
        "currency": st.sampled_from(["NGN", "usd", "EUR", "GBP"]),
        "device_id": ids, "merchant_id": ids,
        "merchant_category": st.sampled_from(MERCHANT_CATEGORIES + ("new-category",)),
        "channel": st.sampled_from(CHANNELS + ("POS",)),
        "country": st.sampled_from(["NG", "gh", "US"]),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


BAD_VALUES = {
    "transaction_id": st.sampled_from(["", "a/b", "x" * 65, "has space", "#1", 7, None]),
    "customer_id": st.sampled_from(["", "a\\b", "c?d", "\x00", "é", 3.5, ["C1"], None]),
    "transaction_amount": st.sampled_from([math.nan, math.inf, -5.0, 0, "12.5", True, None, 10**400, 2e9]),
    "timestamp": st.sampled_from(["yesterday", "2026-11-29T12:00:00", 1700000000, "", "2026-13-01T00:00:00Z",
                                  "2099-01-01T00:00:00Z", None]),
    "currency": st.sampled_from(["XXX1", "", "ngn ", 566, "ЕUR"]),
    "device_id": st.sampled_from(["", "d/1", 12]),
    "merchant_id": st.sampled_from(["", "m#1", {"id": 1}]),
    "merchant_category": st.sampled_from(["", "c" * 65, 4]),
    "channel": st.sampled_from(["fax", "", 1]),
    "country": st.sampled_from(["NGA", "N1", "ß", "ﬀ", 1]),
}
REQUIRED = {"transaction_id", "customer_id", "transaction_amount", "timestamp"}


# -- the schema ------------------------------------------------------------------------
@given(st.one_of(json_values, st.fixed_dictionaries({}, optional={f: hostile_values for f in KNOWN_FIELDS})))
@settings(max_examples=400, deadline=None)
@example({"transaction_id": "T1", "customer_id": "C1", "transaction_amount": 10**400, "timestamp": "2026-11-29T10:00:00Z"})
@example({"transaction_id": "T1", "customer_id": "C1", "transaction_amount": 5, "timestamp": "0001-01-01T00:00:00+01:00"})
def test_validation_never_raises_and_every_error_names_a_known_field(raw):
    for fill_missing in (False, True):
        outcome = validate_transaction(raw, now=NOW, fill_missing=fill_missing)
        assert outcome.ok != bool(outcome.errors)
        assert all(e.field in ERROR_FIELDS and e.problem for e in outcome.errors)
        if outcome.ok:
            txn = outcome.transaction
            assert math.isfinite(txn.transaction_amount) and 0 < txn.transaction_amount <= 1e9
            assert txn.timestamp - NOW <= timedelta(minutes=5)
            # anything accepted is also a valid UTC instant and Table Storage key
            assert txn.timestamp.astimezone(timezone.utc).year >= 1970


@given(valid_transactions())
@settings(max_examples=300, deadline=None)
def test_valid_transactions_are_accepted_and_round_trip(body):
    outcome = validate_transaction(body, now=NOW)
    assert outcome.ok, outcome.errors
    again = validate_transaction(outcome.transaction.to_dict(), now=NOW)
    assert again.transaction == outcome.transaction


@given(valid_transactions(), st.sampled_from(sorted(BAD_VALUES)), st.data())
@settings(max_examples=300, deadline=None)
def test_one_corrupted_field_is_reported_as_that_field(body, field, data):
    bad = data.draw(BAD_VALUES[field])
    corrupted = {**body, field: bad}
    if bad is None and field not in REQUIRED:
        return  # an optional field may be null
    outcome = validate_transaction(corrupted, now=NOW)
    assert not outcome.ok
    assert {e.field for e in outcome.errors} == {field}


@given(valid_transactions(), st.dictionaries(st.text(max_size=20).filter(lambda k: k not in KNOWN_FIELDS), json_values,
                                             max_size=5))
@settings(max_examples=100, deadline=None)
def test_unknown_fields_are_ignored(body, extra):
    assert validate_transaction({**body, **extra}, now=NOW).transaction == validate_transaction(body, now=NOW).transaction


# -- features and decisions -------------------------------------------------------------
@given(st.lists(valid_transactions(customer="C1"), min_size=1, max_size=40))
@settings(max_examples=100, deadline=None)
def test_features_are_finite_for_any_history(bodies):
    profile = CustomerProfile()
    for body in bodies:
        txn = validate_transaction(body, now=NOW).transaction
        row = features_then_record(profile, txn, NO_MERCHANT)
        assert len(row) == len(FEATURE_NAMES) and np.isfinite(np.asarray(row, dtype=np.float64)).all()
    assert profile.history_count == len(bodies)
    assert CustomerProfile.from_json(profile.to_json()).to_json() == profile.to_json()


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_risk_level_never_decreases_as_the_score_rises(a, b, medium, high):
    medium, high = sorted((medium, high))
    thresholds = Thresholds(medium=medium, high=high)
    order = ["Low", "Medium", "High"]
    lo, hi = sorted((a, b))
    assert order.index(thresholds.risk_level(lo)) <= order.index(thresholds.risk_level(hi))


# -- the Event Hub function with garbage mixed in (Azurite) ----------------------------
def garbage_events(run: str, good: list[dict]) -> dict[str, st.SearchStrategy]:
    base = good[0]
    return {
        "invalid_json": st.binary(max_size=40).filter(lambda b: not _is_json(b)),
        "not_utf8": st.just(b"\xff\xfe{" + run.encode()),
        "deeply_nested": st.integers(1_000, 20_000).map(lambda n: b"[" * n + b"]" * n),
        "wrong_type": st.sampled_from([[1, 2], "text", 42, None, True]).map(lambda v: json.dumps(v).encode()),
        "bad_amount": st.sampled_from(["NaN", "Infinity", "-Infinity", "-12.5", "0", "1e400", '"12"', "null"]).map(
            lambda v: json.dumps({**base, "transaction_id": f"{run}-amt"}).replace(
                f'"transaction_amount": {json.dumps(base["transaction_amount"])}', f'"transaction_amount": {v}').encode()),
        "megabyte_string": st.sampled_from(["customer_id", "merchant_category", "device_id"]).map(
            lambda f: json.dumps({**base, "transaction_id": f"{run}-big", f: MEGABYTE[:990_000]}).encode()),
        "forbidden_key_chars": st.sampled_from(["/", "\\", "#", "?", "\t", "\x7f"]).map(
            lambda c: json.dumps({**base, "transaction_id": f"{run}{c}x"}).encode()),
        "same_id_other_body": st.sampled_from(good).map(
            lambda g: json.dumps({**g, "transaction_amount": g["transaction_amount"] + 1}).encode()),
    }


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
        return True
    except ValueError:
        return False


def dead_letter_count(services) -> int:
    return sum(1 for _ in services.dead_letters.items())


def audit_ids(services, prefix: str) -> list[str]:
    return [r["RowKey"] for r in audit_rows(services) if r["RowKey"].startswith(prefix)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_batch_with_garbage_scores_the_valid_and_dead_letters_the_rest(published, services, data):
    run = uuid.uuid4().hex[:10]
    now = datetime.now(timezone.utc)
    good = [{"transaction_id": f"{run}-{k}", "customer_id": f"{run}-C{k % 3}", "transaction_amount": 1000.0 + k,
             "currency": "NGN", "timestamp": (now - timedelta(minutes=k)).isoformat(), "channel": "pos",
             "merchant_id": "M1", "merchant_category": "grocery", "device_id": "D1", "country": "NG"}
             for k in range(data.draw(st.integers(1, 12), label="valid"))]
    kinds = garbage_events(run, good)
    garbage = data.draw(st.lists(st.sampled_from(sorted(kinds)), min_size=1, max_size=10), label="garbage kinds")
    raw_garbage = [data.draw(kinds[kind], label=kind) for kind in garbage]
    # conflicting bodies are only conflicts once their id was scored: send those after the originals
    conflicting = [g for kind, g in zip(garbage, raw_garbage) if kind == "same_id_other_body"]
    others = [g for kind, g in zip(garbage, raw_garbage) if kind != "same_id_other_body"]
    events = data.draw(st.permutations([json.dumps(g).encode() for g in good] + others), label="order")
    sent = events + conflicting
    letters_before = dead_letter_count(services)

    # a fresh stretch of the partition: (partition, sequence number) identifies an event
    score_stream(event_hub_batch(sent, partition="1", first_sequence=uuid.uuid4().int % 10**12))

    scored = audit_ids(services, f"{run}-")
    dead = dead_letter_count(services) - letters_before
    assert sorted(scored) == sorted(g["transaction_id"] for g in good)
    assert dead == len(raw_garbage)
    assert len(sent) == len(scored) + dead
    assert services.profiles.load(f"{run}-C0").profile.history_count == len([g for g in good if g["customer_id"].endswith("C0")])


def test_each_kind_of_garbage_is_dead_lettered_with_its_reason(published, services):
    run = uuid.uuid4().hex[:8]
    good = {"transaction_id": f"{run}-1", "customer_id": "C1", "transaction_amount": 2500.0,
            "timestamp": datetime.now(timezone.utc).isoformat()}
    garbage = {
        "$": b"{\"transaction_id\": ",
        "transaction_amount": json.dumps({**good, "transaction_id": f"{run}-2"}).replace("2500.0", "NaN").encode(),
        "customer_id": json.dumps({**good, "transaction_id": f"{run}-3", "customer_id": MEGABYTE}).encode(),
        "merchant_id": json.dumps({**good, "transaction_id": f"{run}-4", "merchant_id": "m/1"}).encode(),
        "transaction_id": json.dumps({**good, "transaction_amount": 2600.0}).encode(),
    }
    batch = event_hub_batch([json.dumps(good).encode(), *garbage.values()], partition="2")
    score_stream(batch)
    score_stream(batch)  # redelivered: the same letters, not new ones
    letters = list(services.dead_letters.list())
    assert sorted(letter["reasons"][0]["field"] for letter in letters) == sorted(garbage)
    conflict = next(letter for letter in letters if letter["reasons"][0]["field"] == "transaction_id")
    assert "transaction_amount" in conflict["reasons"][0]["problem"]
    big = next(letter for letter in letters if letter["reasons"][0]["field"] == "customer_id")
    assert big["raw_bytes"] > 1_000_000 and len(big["raw_text"]) <= 4096
    assert audit_ids(services, f"{run}-") == [f"{run}-1"]
