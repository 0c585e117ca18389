"""Merchant risk on hand-built streams: delay-shifted label windows, confirmed frauds counted at
once, label-free signals against the merchant's own baseline; and the timer's recount giving
training's replay values exactly, for every feature."""
import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from shared.domain import features as F
from shared.domain.merchant_risk import (
    DAY, HOUR, MERCHANT_FEATURES, NO_MERCHANT, MerchantHistory, MerchantRiskReplay, MerchantVisit, as_of_hour,
    label_known_at, tally_visit)
from shared.domain.transaction import Transaction

AS_OF = 1000 * DAY  # a UTC midnight


def values(history, as_of=AS_OF, delay=7):
    return dict(zip(MERCHANT_FEATURES, history.features(as_of, delay)))


def visit(amount=100.0, new_device=False, first_visit=False):
    return MerchantVisit(amount, new_device, first_visit)


def test_label_windows_are_shifted_by_the_delay_and_count_only_known_labels():
    h = MerchantHistory()
    shifted_end = AS_OF - 7 * DAY
    # transactions inside the 1-day shifted window [as_of-8d, as_of-7d): 4, two of them fraud
    for k in range(4):
        h.add_visit(shifted_end - (k + 1) * HOUR, visit())
    h.add_fraud("a", shifted_end - 1 * HOUR, known_at=shifted_end + DAY)  # known long before as_of
    h.add_fraud("b", shifted_end - 2 * HOUR, known_at=AS_OF + HOUR)  # reported after as_of: not yet known
    # 10 days before the shift: only in the 30-day shifted window
    for k in range(6):
        h.add_visit(shifted_end - 10 * DAY - k * HOUR, visit())
    h.add_fraud("c", shifted_end - 10 * DAY, known_at=shifted_end)
    # inside the delay gap: not in any shifted window; one confirmed by an analyst already
    h.add_visit(AS_OF - 2 * HOUR, visit())
    h.add_visit(AS_OF - 3 * HOUR, visit())
    h.add_fraud("d", AS_OF - 2 * HOUR, known_at=AS_OF - HOUR)
    h.add_fraud("e", AS_OF - 3 * HOUR, known_at=AS_OF + DAY)  # not confirmed yet
    v = values(h)
    assert v["merchant_fraud_count_1d"] == 1 and v["merchant_fraud_rate_1d"] == 1 / 4
    assert v["merchant_fraud_count_7d"] == 1 and v["merchant_fraud_rate_7d"] == 1 / 4
    assert v["merchant_fraud_count_30d"] == 2 and v["merchant_fraud_rate_30d"] == 2 / 10
    assert v["merchant_recent_confirmed_frauds"] == 1
    # without the shift (delay 0) the 1-day window would be the last day, where nothing is known yet
    unshifted = values(h, delay=0)
    assert unshifted["merchant_fraud_count_1d"] == 1 and unshifted["merchant_fraud_rate_1d"] == 1 / 2
    assert unshifted["merchant_recent_confirmed_frauds"] == 0


def test_a_label_without_labelled_at_is_known_after_the_delay():
    assert label_known_at(100.0, None, 7) == 100.0 + 7 * DAY
    assert label_known_at(100.0, 5000.0, 7) == 5000.0
    h = MerchantHistory()
    t = AS_OF - 7 * DAY - HOUR
    h.add_visit(t, visit())
    h.add_fraud("x", t, label_known_at(t, None, 7))  # known at as_of - 1h
    assert values(h)["merchant_fraud_count_1d"] == 1


def test_label_free_signals_compare_the_last_hour_and_day_with_the_30_day_baseline():
    h = MerchantHistory()
    # baseline: 29 quiet days, 10 transactions a day at 1,000, 1 of them from a new device, 2 first visits
    for day in range(2, 31):
        for k in range(10):
            h.add_visit(AS_OF - day * DAY + k * HOUR, visit(1000.0, new_device=k == 0, first_visit=k < 2))
    # the last day: a breach, 30 transactions at 3,000 in the last hour, all from new devices and new customers
    for k in range(30):
        h.add_visit(AS_OF - HOUR + k * 60, visit(3000.0, new_device=True, first_visit=True))
    h.add_visit(AS_OF + 60, visit(1e9, True, True))  # in the current hour: not part of any window
    v = values(h)
    assert v["merchant_count_1h"] == 30 and v["merchant_count_24h"] == 30 and v["merchant_count_30d"] == 320
    assert v["merchant_volume_ratio_24h"] == 30 / (320 / 30)
    assert v["merchant_new_device_share_1h"] == 1.0 and v["merchant_new_device_share_24h"] == 1.0
    assert v["merchant_new_device_share_30d"] == (29 + 30) / 320
    assert v["merchant_first_visit_share_30d"] == (58 + 30) / 320
    mean_30d = (290 * 1000.0 + 30 * 3000.0) / 320
    assert v["merchant_amount_ratio_1h"] == pytest.approx(3000.0 / mean_30d, rel=1e-12)
    assert v["merchant_amount_ratio_24h"] == pytest.approx(3000.0 / mean_30d, rel=1e-12)
    # a quiet hour: shares unknown, not zero
    quiet = values(h, as_of=AS_OF - DAY + 12 * HOUR)
    assert quiet["merchant_count_1h"] == 0 and quiet["merchant_new_device_share_1h"] == -1.0
    assert quiet["merchant_amount_ratio_1h"] == -1.0
    assert MerchantHistory().features(AS_OF) == NO_MERCHANT


def test_values_are_cached_per_hour_and_refreshed_when_the_history_changes():
    h = MerchantHistory()
    h.add_visit(AS_OF - HOUR, visit())
    assert values(h)["merchant_count_1h"] == 1
    h.add_visit(AS_OF + 10, visit())  # the current hour: the cached values stand
    assert values(h, as_of=AS_OF + 1800)["merchant_count_1h"] == 1
    h.add_visit(AS_OF - 30 * 60, visit())  # a late event inside the window: recomputed
    assert values(h)["merchant_count_1h"] == 2
    h.add_fraud("z", AS_OF - 2 * HOUR, AS_OF - HOUR)
    assert values(h)["merchant_recent_confirmed_frauds"] == 1


def test_the_storage_form_round_trips_in_cents():
    h = MerchantHistory()
    h.add_visit(AS_OF - 5 * HOUR, visit(0.1, True, False))
    h.add_visit(AS_OF - 5 * HOUR, visit(0.2, False, True))
    h.add_visit(AS_OF - 40 * HOUR, visit(12345.67))
    h.add_fraud("f", AS_OF - 40 * HOUR, AS_OF)
    back = MerchantHistory.from_properties(h.to_properties())
    assert back.hours == h.hours == {int(AS_OF // HOUR) - 5: [2, 30, 1, 1], int(AS_OF // HOUR) - 40: [1, 1234567, 0, 0]}
    assert back == h and back.features(AS_OF) == h.features(AS_OF)


# --------------------------------------------------------------------------- parity

LAGOS = timezone(timedelta(hours=1))


def stream(n=1500, seed=11):
    rng = random.Random(seed)
    t = datetime(2026, 1, 1, tzinfo=LAGOS)
    out = []
    for i in range(n):
        t += timedelta(seconds=rng.expovariate(1 / 600))
        out.append(Transaction(f"T{i}", f"C{rng.randrange(60)}", round(rng.lognormvariate(8, 1), 2), "NGN", t,
                               f"D{rng.randrange(8)}", f"M{rng.randrange(6)}", "grocery", "pos", "NG"))
    return out


def test_the_timers_recount_serves_exactly_what_training_replays_for_every_feature():
    """Serving: profiles stored as JSON between transactions; merchant values from histories the
    'timer' rebuilt from the served float32 feature vectors (as in the audit log) and stored in
    their table form. Training: one replay. Every feature must be identical."""
    txns = stream()
    delay = 2.0
    rng = random.Random(5)
    frauds: dict[str, list[tuple[str, float, float]]] = {}
    for t in txns:
        if rng.random() < 0.1:
            labelled_at = t.epoch_seconds + rng.choice([3 * HOUR, 30 * HOUR]) if rng.random() < 0.5 else None
            frauds.setdefault(t.merchant_id, []).append(
                (t.transaction_id, t.epoch_seconds, label_known_at(t.epoch_seconds, labelled_at, delay)))
    trained = F.replay(txns, merchants=MerchantRiskReplay(frauds, delay))

    profiles: dict[str, str] = {}
    audit: list[tuple[str, float, np.ndarray]] = []
    stored: dict[str, dict] = {}
    read: dict[str, MerchantHistory] = {}
    timer_hour = None
    served = []
    for txn in txns:
        hour = as_of_hour(txn.epoch_seconds)
        if hour != timer_hour:  # the timer runs at the top of each hour and recounts the hours since its last run
            first = int((timer_hour if timer_hour is not None else hour) // HOUR) - 1
            hourly: dict[str, dict[int, list[int]]] = {}
            for merchant, moment, vector in audit:
                if moment >= first * HOUR:
                    tally_visit(hourly.setdefault(merchant, {}), moment, F.merchant_visit(vector))
            for merchant in {t.merchant_id for t in txns}:
                history = MerchantHistory.from_properties(stored[merchant]) if merchant in stored else MerchantHistory()
                for txn_id, moment, known in frauds.get(merchant, []):
                    if moment < hour and known <= hour:  # labels joined by this run
                        history.add_fraud(txn_id, moment, known)
                history.recount(hourly.get(merchant, {}), first, hour)
                stored[merchant] = history.to_properties()
                read[merchant] = MerchantHistory.from_properties(stored[merchant])  # what scoring reads
            timer_hour = hour
        profile = F.CustomerProfile.from_json(profiles[txn.customer_id]) if txn.customer_id in profiles else F.CustomerProfile()
        merchant_values = read[txn.merchant_id].features(hour, delay)
        vector = np.asarray(F.features_then_record(profile, txn, merchant_values), dtype=np.float32)
        profiles[txn.customer_id] = profile.to_json()
        audit.append((txn.merchant_id, txn.epoch_seconds, vector))
        served.append(vector)
    served = np.vstack(served)
    merchant_columns = [F.feature_index(n) for n in MERCHANT_FEATURES]
    assert (trained[:, merchant_columns] != np.asarray(NO_MERCHANT, dtype=np.float32)).any(axis=0).all()  # all live
    mismatched = [F.FEATURE_NAMES[j] for j in range(F.N_FEATURES) if not np.array_equal(trained[:, j], served[:, j])]
    assert mismatched == []


def test_a_merchant_not_visited_since_its_last_count_reads_zero_recent_visits():
    """Scoring reads a merchant's features as of the store's last complete recount, not as of
    the merchant's own last visit: with no visit since, its last hour holds nothing."""
    from fakes import FakeMerchantRiskStore
    from shared.adapters.merchant_table import MerchantRiskCache
    from shared.domain.merchant_risk import MERCHANT_FEATURES

    store = FakeMerchantRiskStore()
    hour = 500_000
    store.refresh_counts({"M1": {hour: [7, 70_000, 0, 0]}}, hour, (hour + 1) * 3600.0)
    cache = MerchantRiskCache(store, ttl_seconds=600, clock=lambda: 0.0)
    count_1h = MERCHANT_FEATURES.index("merchant_count_1h")
    assert cache.values("M1", (hour + 1) * 3600.0 + 60, 7.0)[count_1h] == 7
    store.refresh_counts({"M2": {hour + 4: [1, 100, 0, 0]}}, hour, (hour + 5) * 3600.0)  # M1: no visit since
    assert cache.values("M1", (hour + 5) * 3600.0 + 60, 7.0)[count_1h] == 7  # the cached marker, until the TTL
    cache.clear()
    assert cache.values("M1", (hour + 5) * 3600.0 + 60, 7.0)[count_1h] == 0
