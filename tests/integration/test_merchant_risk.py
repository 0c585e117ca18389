"""Merchant risk: one definition, computed by the timer into Table Storage and by training's
replay, with identical values; labels count only once known."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np

from fraud_events import decision_record
from shared.domain.labels import Label
from shared.domain.merchant_risk import DAY, HOUR, MerchantHistory, MerchantRiskReplay, label_known_at
from shared.adapters.merchant_table import MerchantRiskCache

NOW = datetime(2026, 11, 28, 12, 30, tzinfo=timezone.utc)


def test_windows_and_label_knowledge_by_hand():
    h = MerchantHistory()
    as_of = 100 * DAY
    for t in (as_of - 2 * HOUR, as_of - 3 * DAY, as_of - 20 * DAY, as_of - 40 * DAY, as_of + 10):
        h.add_transaction(t)
    h.add_fraud("a", as_of - 2 * HOUR, known_at=as_of - HOUR)  # known in time
    h.add_fraud("b", as_of - 3 * DAY, known_at=as_of + DAY)  # not yet known
    rates_and_counts = h.features(as_of)
    assert rates_and_counts[3:] == [1.0, 2.0, 3.0]  # counts 1d/7d/30d; the 40-day-old and future ones excluded
    assert rates_and_counts[:3] == [1.0, 0.5, 1 / 3]
    assert MerchantHistory().features(as_of) == [-1.0, -1.0, -1.0, 0.0, 0.0, 0.0]


def test_timer_table_and_training_replay_agree(services, monkeypatch):
    rng = np.random.default_rng(4)
    start = NOW - timedelta(days=12)
    events = []
    for i in range(600):
        t = start + timedelta(seconds=float(rng.uniform(0, 12 * DAY - 3600)))
        events.append((f"MR{i}", f"M{int(rng.integers(5))}", t, bool(rng.random() < 0.15)))
    events.sort(key=lambda e: e[2])
    records = [decision_record(tid, t, "Low", amount=10.0, score=0.1, features=[0.0], model_version="x", latency_ms=1.0,
                               merchant_id=merchant) for tid, merchant, t, _ in events]
    services.audit.write(records)
    # half the fraud labels say when they were known (analyst verdicts within hours), half do not
    labels, known_at = [], {}
    for k, (tid, merchant, t, fraud) in enumerate(e for e in events if e[3]):
        labelled = t + timedelta(hours=3) if k % 2 == 0 else None
        labels.append(Label(tid, True, None, labelled, "test"))
        known_at[tid] = label_known_at(t.timestamp(), labelled.timestamp() if labelled else None, 7)
    services.label_store.put(labels)
    monitoring = services.monitoring
    monitoring.clock = lambda: NOW
    monitoring.config = replace(monitoring.config, merchant_recount_hours=24 * 31)
    report = monitoring.run()
    assert report["merchant_risk"]["merchants"] == 5

    frauds = {}
    for tid, merchant, t, fraud in events:
        if fraud:
            frauds.setdefault(merchant, []).append((tid, t.timestamp(), known_at[tid]))
    replayed = MerchantRiskReplay(frauds)
    for tid, merchant, t, _ in events:
        replayed.features_then_add(merchant, t.timestamp())
    served = MerchantRiskCache(services.merchant_store)
    in_this_hour = NOW.timestamp()
    for merchant in (f"M{k}" for k in range(5)):
        expected = replayed.features_then_add(merchant, in_this_hour)
        assert served.values(merchant, in_this_hour) == expected, merchant
        assert expected[5] > 0 and 0 <= expected[2] <= 1  # real counts and a real rate
    # a second run changes nothing
    monitoring.run()
    assert MerchantRiskCache(services.merchant_store).values("M0", in_this_hour) == served.values("M0", in_this_hour)


def test_backfilled_merchant_risk_equals_the_replay_at_the_end_of_history(services, simulated_csv):
    from training.backfill import build_merchant_risk
    from training.dataset import merchant_risk_replay, read_labelled_csv

    data = read_labelled_csv(simulated_csv)
    histories, as_of = build_merchant_risk(data, 7.0)
    services.merchant_store.save(histories, as_of)
    cache = MerchantRiskCache(services.merchant_store)
    replayed = merchant_risk_replay(data, 7.0)
    for txn in data.transactions:
        replayed.features_then_add(txn.merchant_id, txn.epoch_seconds)
    merchants = sorted(histories)[:25]
    for merchant in merchants:
        assert cache.values(merchant, as_of + 1800) == replayed.features_then_add(merchant, as_of + 1800)
