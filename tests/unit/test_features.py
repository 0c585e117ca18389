"""The one feature engine: replay vs incremental parity, bounded state, event-time windows."""
import math
import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from shared.domain import features as F
from shared.domain.transaction import Transaction

LAGOS = timezone(timedelta(hours=1))


def txn(i, customer, when, amount, device="D1", merchant="M1", category="grocery", channel="pos", country="NG"):
    return Transaction(f"T{i}", customer, amount, "NGN", when, device, merchant, category, channel, country)


def random_stream(n=3000, customers=25, seed=3):
    rng = random.Random(seed)
    t = datetime(2026, 1, 1, tzinfo=LAGOS)
    out = []
    for i in range(n):
        t += timedelta(seconds=rng.expovariate(1 / 900))
        out.append(txn(i, f"C{rng.randrange(customers)}", t, round(rng.lognormvariate(8, 1), 2),
                       device=f"D{rng.randrange(6)}", merchant=f"M{rng.randrange(80)}",
                       category=rng.choice(["grocery", "fuel", "electronics", "brand-new-category"]),
                       channel=rng.choice(["pos", "online", "atm"]), country=rng.choice(["NG"] * 9 + ["GH"])))
    return out


def test_replay_and_incremental_serving_give_identical_float32_vectors():
    stream = random_stream()
    trained = F.replay(stream)
    # Serving: the profile is stored (JSON) and loaded again before every transaction.
    stored: dict[str, str] = {}
    served = []
    for t in stream:
        profile = F.CustomerProfile.from_json(stored[t.customer_id]) if t.customer_id in stored else F.CustomerProfile()
        served.append(F.features_then_record(profile, t))
        stored[t.customer_id] = profile.to_json()
    served = F.as_matrix(served)
    assert trained.dtype == np.float32 and trained.shape == (len(stream), F.N_FEATURES)
    assert np.array_equal(trained, served)


def test_serving_with_keyed_device_pseudonyms_gives_trainings_vectors_even_when_devices_are_evicted():
    """Training replays in memory with the default key function; serving's profiles key devices by
    the keyed pseudonym (the profile store sets it) and are stored and reloaded between
    transactions. Many devices, several seen at the same second, overflow the device map, so
    evictions with ties happen: the vectors must still be identical (ties go to the first seen)."""
    from fakes import TEST_PSEUDONYMS

    rng = random.Random(11)
    t = datetime(2026, 1, 1, tzinfo=LAGOS)
    stream = []
    for i in range(1500):
        if i % 3:  # two of every three transactions share the second of the one before: last-seen ties
            t += timedelta(seconds=rng.expovariate(1 / 1800))
        stream.append(txn(i, f"C{rng.randrange(3)}", t, 100.0 + i, device=f"phone-{rng.randrange(40)}"))
    trained = F.replay(stream)
    stored: dict[str, str] = {}
    served = []
    device_key = TEST_PSEUDONYMS.device
    for item in stream:
        profile = (F.CustomerProfile.from_json(stored[item.customer_id], device_key) if item.customer_id in stored
                   else F.CustomerProfile(device_key=device_key))
        served.append(F.features_then_record(profile, item))
        stored[item.customer_id] = profile.to_json()
        assert len(profile.devices) <= F.MAX_DEVICES
    assert np.array_equal(trained, F.as_matrix(served))
    state = "".join(stored.values())
    assert "phone-" not in state and F.short_hash("phone-1") not in state
    assert all(key.startswith("dv_") for text in stored.values() for key in F.CustomerProfile.from_json(text).devices)


def test_windows_count_and_sum_by_event_time_not_wall_clock():
    base = datetime(2026, 3, 2, 10, 0, tzinfo=LAGOS)
    profile = F.CustomerProfile()
    for k in range(5):
        profile.apply(txn(k, "C", base + timedelta(minutes=5 * k), 100.0))
    profile.apply(txn(9, "C", base - timedelta(days=3), 1000.0))  # late, but within 30 days
    v = F.transaction_features(profile, txn(10, "C", base + timedelta(minutes=30), 300.0))
    get = lambda name: v[F.feature_index(name)]  # noqa: E731
    assert get("count_1h") == 5 and get("sum_1h") == 500.0
    assert get("count_24h") == 5
    assert get("count_7d") == 6 and get("sum_7d") == 1500.0
    assert get("amount_to_mean_30d") == 300.0 / (1500.0 / 6)
    assert get("amount_to_max_30d") == 300.0 / 1000.0
    assert get("seconds_since_previous") == 600.0
    assert get("hour_of_day") == 10 and get("is_night") == 0
    # two hours later the one-hour window is empty again
    later = F.transaction_features(profile, txn(11, "C", base + timedelta(hours=3), 50.0))
    assert later[F.feature_index("count_1h")] == 0


def test_device_merchant_and_country_novelty():
    base = datetime(2026, 3, 2, 10, 0, tzinfo=LAGOS)
    profile = F.CustomerProfile()
    first = F.features_then_record(profile, txn(1, "C", base, 100.0, device="D1"))
    assert first[F.feature_index("is_new_device")] == 0  # no history: nothing to be new against
    v = F.transaction_features(profile, txn(2, "C", base + timedelta(days=2), 100.0, device="D2", merchant="M9",
                                            category="electronics", country="GH"))
    for name in ("is_new_device", "is_new_merchant", "is_new_category", "is_new_country"):
        assert v[F.feature_index(name)] == 1.0, name
    same = F.transaction_features(profile, txn(3, "C", base + timedelta(days=2), 100.0, device="D1"))
    assert same[F.feature_index("is_new_device")] == 0 and same[F.feature_index("device_age_days")] == 2.0


def test_profile_state_stays_bounded_whatever_the_history_length():
    stream = random_stream(n=6000, customers=1)
    profile = F.CustomerProfile()
    sizes = []
    for i, t in enumerate(stream):
        profile.apply(t)
        if i in (100, 5999):
            sizes.append(len(profile.to_json()))
    assert len(profile.devices) <= F.MAX_DEVICES and len(profile.merchants) <= F.MAX_MERCHANTS
    assert sizes[1] < 32_000  # one Table Storage string property holds 32K UTF-16 chars
    assert sizes[1] < sizes[0] * 3


def test_out_of_order_event_older_than_a_ring_only_misses_that_ring():
    base = datetime(2026, 3, 2, 10, 0, tzinfo=LAGOS)
    profile = F.CustomerProfile()
    profile.apply(txn(1, "C", base, 100.0))
    profile.apply(txn(2, "C", base - timedelta(hours=30), 50.0))  # older than the 24h ring
    v = F.transaction_features(profile, txn(3, "C", base + timedelta(minutes=1), 10.0))
    assert v[F.feature_index("count_24h")] == 1 and v[F.feature_index("count_7d")] == 2


def test_unknown_category_maps_to_other_and_channels_are_one_hot():
    v = F.transaction_features(F.CustomerProfile(), txn(1, "C", datetime(2026, 3, 7, 2, tzinfo=LAGOS), 5.0,
                                                       category="brand-new-category", channel="atm"))
    assert v[F.feature_index("category_other")] == 1.0
    assert v[F.feature_index("channel_atm")] == 1.0 and v[F.feature_index("channel_pos")] == 0.0
    assert v[F.feature_index("is_weekend")] == 1.0 and v[F.feature_index("is_night")] == 1.0


def test_schema_hash_is_stable_and_tracks_the_feature_list(monkeypatch):
    assert F.FEATURE_SCHEMA_HASH == F._schema_hash()
    monkeypatch.setattr(F, "FEATURE_NAMES", F.FEATURE_NAMES + ("extra",))
    assert F._schema_hash() != F.FEATURE_SCHEMA_HASH


def test_a_profile_copy_is_equal_and_independent():
    """What the profile cache hands out: equal to the cached profile, and applying a transaction
    to it leaves the cached one as it was."""
    from fraud_events import transaction as body
    from shared.domain.features import CustomerProfile
    from shared.domain.transaction import validate_transaction

    now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    profile = CustomerProfile()
    for i in range(40):
        profile.apply(validate_transaction(body(i, device_id=f"D{i % 3}", merchant_id=f"M{i % 7}"), now=now).transaction)
    cached = profile.to_json()
    copy = profile.copy()
    assert copy.to_json() == cached and copy.device_key is profile.device_key
    copy.apply(validate_transaction(body(99, device_id="NEW", merchant_id="NEWM", country="GH", channel="pos"),
                                    now=now).transaction)
    assert profile.to_json() == cached and copy.to_json() != cached
    assert copy.history_count == profile.history_count + 1
    # a device and a merchant both already know, seen again later: the copy's pairs move on
    # (the seen-maps' pairs are shared by the copy and replaced, never changed in place)
    again = profile.copy()
    again.apply(validate_transaction(body(120, device_id="D1", merchant_id="M1"), now=now).transaction)
    assert profile.to_json() == cached
    assert again.devices[again.device_key("D1")][1] > profile.devices[profile.device_key("D1")][1]


def _windows_by_slot(ring: F.BucketRing, t: float, spans: tuple[int, ...]) -> list[tuple[int, float, float, float]]:
    """The definition, slot by slot: a slot counts in a span when its bucket is 0..span-1 buckets old."""
    newest = int(t // ring.width)
    out = []
    for span in spans:
        held = [k for k in range(ring.size) if ring.counts[k] and 0 <= newest - ring.ids[k] < span]
        out.append((sum(ring.counts[k] for k in held), sum(ring.sums[k] for k in held),
                    max([ring.maxes[k] for k in held], default=0.0), sum(ring.squares[k] for k in held)))
    return out


def test_ring_windows_match_the_slot_by_slot_definition():
    rng = random.Random(7)
    for width, size, spans in ((300, 12, (1, 2, 12)), (3600, 24, (24,)), (86400, 30, (7, 30)), (60, 5, (3, 8))):
        ring = F.BucketRing(width, size)
        start = 1_700_000_000
        for _ in range(300):
            ring.add(start + rng.random() * 3 * size * width, round(rng.random() * 5000, 2))
        for t in [start + rng.random() * 4 * size * width for _ in range(50)] + [start - width]:
            got, want = ring.windows(t, spans), _windows_by_slot(ring, t, spans)
            for (c, s, m, q), (wc, ws, wm, wq) in zip(got, want):
                assert (c, m) == (wc, wm)
                assert math.isclose(s, ws, rel_tol=1e-12, abs_tol=1e-9) and math.isclose(q, wq, rel_tol=1e-12, abs_tol=1e-6)


def test_ring_windows_refuse_spans_out_of_order():
    with pytest.raises(ValueError):
        F.BucketRing(300, 12).windows(0.0, (12, 1))
