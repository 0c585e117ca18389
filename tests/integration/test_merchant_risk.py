"""Merchant risk: one definition, computed by the timer into Table Storage and by training's
replay, with identical values; labels count only once known."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np

from fraud_events import decision_record, record_decisions
from shared.domain.labels import Label
from shared.domain.merchant_risk import DAY, MerchantRiskReplay, label_known_at
from shared.adapters.merchant_table import MerchantRiskCache

NOW = datetime(2026, 11, 28, 12, 30, tzinfo=timezone.utc)


def test_timer_table_and_training_replay_agree(services, monkeypatch):
    """Decisions with their real feature vectors in the audit log (Azurite), labels half with
    labelled_at: the timer's table serves exactly what training's replay computes, for every
    merchant feature, label-based and label-free."""
    from shared.domain.features import replay
    from shared.domain.merchant_risk import MERCHANT_FEATURES, NO_MERCHANT
    from shared.domain.transaction import Transaction

    rng = np.random.default_rng(4)
    start = NOW - timedelta(days=12)
    events = []
    for i in range(600):
        t = start + timedelta(seconds=float(rng.uniform(0, 12 * DAY - 3600)))
        events.append((f"MR{i}", f"M{int(rng.integers(5))}", t, bool(rng.random() < 0.15),
                       f"C{int(rng.integers(40))}", f"D{int(rng.integers(60))}", float(rng.integers(100, 90_000))))
    events.sort(key=lambda e: e[2])
    transactions = [Transaction(tid, customer, amount, "NGN", t, device, merchant, None, "pos", None)
                    for tid, merchant, t, _, customer, device, amount in events]
    vectors = replay(transactions)  # the customer features each decision was served with
    records = [decision_record(tid, t, "Low", customer=customer, amount=amount, score=0.1, features=vector,
                               model_version="x", latency_ms=1.0, merchant_id=merchant)
               for (tid, merchant, t, _, customer, _, amount), vector in zip(events, vectors)]
    record_decisions(services, records)
    # half the fraud labels say when they were known (analyst verdicts within hours), half do not
    labels, known_at = [], {}
    for k, (tid, merchant, t, fraud, *_rest) in enumerate(e for e in events if e[3]):
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
    for tid, merchant, t, fraud, *_rest in events:
        if fraud:
            frauds.setdefault(merchant, []).append((tid, t.timestamp(), known_at[tid]))
    for delay in (7.0, 2.0):
        replayed = MerchantRiskReplay(frauds, delay)
        replay(transactions, merchants=replayed)
        served = MerchantRiskCache(services.merchant_store)
        in_this_hour = NOW.timestamp()
        for merchant in (f"M{k}" for k in range(5)):
            expected = replayed.values(merchant, in_this_hour)
            assert served.values(merchant, in_this_hour, delay) == expected, (merchant, delay)
            named = dict(zip(MERCHANT_FEATURES, expected))
            assert named["merchant_count_30d"] > 0 and 0 <= named["merchant_new_device_share_30d"] <= 1
        assert any(v != d for v, d in zip(expected, NO_MERCHANT))
    # a second run changes nothing
    monitoring.run()
    assert MerchantRiskCache(services.merchant_store).values("M0", in_this_hour, 7.0) == served.values("M0", in_this_hour, 7.0)


def test_backfilled_merchant_risk_equals_the_replay_at_the_end_of_history(services, simulated_csv):
    from shared.domain.features import replay
    from training.backfill import build_merchant_risk
    from training.dataset import merchant_risk_replay, read_labelled_csv

    data = read_labelled_csv(simulated_csv)
    histories, as_of = build_merchant_risk(data, 7.0)
    services.merchant_store.backfill(histories, as_of)
    cache = MerchantRiskCache(services.merchant_store)
    replayed = merchant_risk_replay(data, 7.0)
    replay(data.transactions, merchants=replayed)
    merchants = sorted(histories)[:25]
    for merchant in merchants:
        assert cache.values(merchant, as_of + 1800, 7.0) == replayed.values(merchant, as_of + 1800)


def test_five_thousand_frauds_a_month_for_one_merchant_fit_one_table_row_and_serve_the_id_lists_values(services):
    """A merchant under attack: 5,000 frauds in a month, joined in batches by the timer (one
    batch twice), written to Azurite. Every property stays within a Table property's 64 KiB
    (the id list they replace would not), and the label features read back equal the id
    list's for the last day's hours and delays."""
    import json
    import random

    from merchant_id_list import id_list_label_values
    from shared.adapters.merchant_table import merchant_partition
    from shared.adapters.tables import read_entity
    from shared.domain.merchant_risk import HOUR, LABEL_FEATURES, MAX_PROPERTY_CHARS

    store, merchant = services.merchant_store, "M-BREACHED"
    rng = random.Random(16)
    end = int(NOW.timestamp() // HOUR)
    start = end - 30 * 24
    hourly = {h: [rng.randrange(20, 60), 0, 0, 0] for h in range(start, end)}
    for stats in hourly.values():
        stats[1] = stats[0] * 5_000_00  # amounts in cents
    frauds = {}
    for i in range(5000):
        t = (start + rng.uniform(0, 30 * 24 - 1)) * HOUR
        labelled = t + rng.uniform(0, 48 * HOUR) if rng.random() < 0.5 else None
        frauds[f"{rng.getrandbits(128):032x}"] = (t, label_known_at(t, labelled, 7.0))
    store.refresh_counts({merchant: hourly}, start, end * HOUR)  # the timer counted the visits
    batches = [list(frauds.items())[k:k + 500] for k in range(0, 5000, 500)]
    for batch in batches + batches[3:4]:  # then the labels: the fourth batch joined twice (a crash before marking)
        store.add_frauds([(merchant, txn_id, t, known) for txn_id, (t, known) in batch])

    row, _ = read_entity(store._table, merchant_partition(merchant), merchant)  # the row as Azurite holds it
    sizes = {name: len(value) for name, value in row.items() if isinstance(value, str)}
    assert max(sizes.values()) <= MAX_PROPERTY_CHARS, sizes  # 64 KiB of UTF-16
    assert len(json.dumps({k: list(v) for k, v in frauds.items()}, separators=(",", ":"))) > 32_768  # the id list
    assert row["frauds"] == ""

    history, as_of = store.load(merchant)
    assert as_of == end * HOUR
    visits = sorted(h * HOUR for h, stats in hourly.items() for _ in range(stats[0]))
    for hour in range(end - 23, end + 1):
        for delay in (7.0, 2.0):
            expected = id_list_label_values(frauds, visits, hour * HOUR, delay)
            assert history.features(hour * HOUR, delay)[:len(LABEL_FEATURES)] == expected, (hour, delay)
    assert expected[LABEL_FEATURES.index("merchant_fraud_count_7d")] > 500
    # the whole month joined again changes nothing
    store.add_frauds([(merchant, txn_id, t, known) for txn_id, (t, known) in frauds.items()])
    again, _ = store.load(merchant)
    assert again == history
