"""The monitor's figures from the scoring processes' hourly aggregates equal the figures
computed from every audit row (``monitoring_scan.scan_figures``) on the same decisions:
drift, matured and provisional performance, the shadow's verdict, the charts and the
merchants' hourly stats."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fakes import FakeAuditLog, FakeLabelFiles, FakeLabelStore, FakeMerchantRiskStore, FakeMonitoringAggregates, FakeReports
from fraud_events import decision_record
from shared.domain.decision_record import Delivery, ShadowScore
from shared.domain.drift import calendar_strata, reference_histogram, score_histogram
from shared.domain.features import FEATURE_NAMES, N_FEATURES, feature_index
from shared.domain.labels import Label
from shared.domain.monitoring_aggregate import HourAggregate, ScoreBins, ServingReference, TOP_KEPT, fine_edges
from shared.domain.promotion import PromotionGate
from shared.service.monitoring import MonitoringConfig, MonitoringService
from shared.service.monitoring_aggregates import MonitoringAggregator, reference_lookup
from shared.service.monitoring_scan import scan_figures

NOW = datetime(2026, 11, 30, 9, 40, tzinfo=timezone.utc)
THRESHOLDS = {"high": 0.8123, "medium": 0.41, "alert": 0.7}
HOUR_OF_DAY, WEEKEND = feature_index("hour_of_day"), feature_index("is_weekend")


def vectors(rng, n: int, when: list[datetime], shift: float = 0.0) -> np.ndarray:
    matrix = rng.gamma(2.0, 1.0 + shift, size=(n, N_FEATURES)).astype(np.float32)
    matrix[:, 5] = rng.integers(0, 2, n)  # a binary feature
    matrix[:, HOUR_OF_DAY] = [t.hour for t in when]
    matrix[:, WEEKEND] = [t.weekday() >= 5 for t in when]
    return matrix


def manifest(rng) -> dict:
    when = [NOW - timedelta(days=30) + timedelta(minutes=37 * i) for i in range(3000)]
    reference = vectors(rng, 3000, when)
    strata = calendar_strata(reference[:, HOUR_OF_DAY], reference[:, WEEKEND])
    days = np.asarray([t.toordinal() for t in when])
    scores = rng.beta(1, 6, 3000)
    return {"version": "v1", "feature_names": list(FEATURE_NAMES), "thresholds": THRESHOLDS,
            "reference": {"rows": 3000, "alert_rate": float(np.mean(scores > THRESHOLDS["high"])),
                          "features": {n: reference_histogram(reference[:, i], 10, strata, days).to_dict()
                                       for i, n in enumerate(FEATURE_NAMES)},
                          "score": score_histogram(scores, strata=strata).to_dict()}}


SHADOW = {"version": "s2", "feature_names": list(FEATURE_NAMES), "thresholds": {"high": 0.9, "medium": 0.3, "alert": 0.8}}


def decisions(rng) -> tuple[list, dict[str, int]]:
    """A fresh window (with a few decisions of the previous model), a matured window 7 days back
    whose decisions the shadow also scored, and labels: frauds and analysts' legitimate verdicts."""
    records, labels = [], {}
    for window, start, n in (("F", NOW - timedelta(hours=23, minutes=30), 2500), ("M", NOW - timedelta(days=8), 2500)):
        when = sorted(start + timedelta(seconds=float(s)) for s in rng.uniform(0, 24 * 3600 - 60, n))
        features = vectors(rng, n, when, shift=0.3 if window == "F" else 0.0)
        fraud = rng.random(n) < 0.06
        champion = np.clip(np.where(fraud, rng.beta(5, 2, n), rng.beta(1, 8, n)), 0, 1).round(6)
        shadow = np.clip(np.where(fraud, rng.beta(7, 2, n), rng.beta(1, 9, n)), 0, 1).round(6)
        champion[:40] = np.round(np.linspace(0, 1, 41)[:40], 3)  # scores exactly on bin edges count right
        for i in range(n):
            txn_id = f"{window}{i:05d}"
            risk = "High" if champion[i] > THRESHOLDS["high"] else "Medium" if champion[i] > THRESHOLDS["medium"] else "Low"
            record = decision_record(txn_id, when[i], risk, customer=f"C{rng.integers(0, 400)}", score=float(champion[i]),
                                     features=features[i], model_version="v0" if window == "F" and i < 60 else "v1",
                                     latency_ms=float(rng.gamma(2, 3)), merchant_id=f"M{rng.integers(0, 40)}")
            if window == "M" and i % 5:
                record = replace(record, shadow=ShadowScore("s2", float(shadow[i])))
            records.append(record)
            if fraud[i] and rng.random() < 0.9:
                labels[txn_id] = 1
            elif not fraud[i] and rng.random() < 0.03:
                labels[txn_id] = 0
    return records, labels


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(15)
    model = manifest(rng)
    records, labels = decisions(rng)
    audit, store = FakeAuditLog(), FakeMonitoringAggregates()
    manifests = {"v1": model, "s2": SHADOW, "v0": {**model, "version": "v0"}}
    processes = [MonitoringAggregator(store, reference_lookup(manifests.get), flush_seconds=3600) for _ in range(3)]
    for start in range(0, len(records), 100):  # batches of 100 to three processes, flushed now and then
        batch = records[start:start + 100]
        audit.write(batch)
        process = processes[(start // 100) % 3]
        process.record([Delivery(r) for r in batch])
        if start % 700 == 0:
            process.record([Delivery(r, duplicate=True) for r in batch])  # a redelivery counts nothing
            process.flush()
    for process in processes:
        process.flush()
    config = MonitoringConfig(top_k=20, label_delay_days=7, label_maturity_days=7)
    gate = PromotionGate(k=20, max_alert_ratio=None)
    service = MonitoringService(audit, FakeLabelStore(), FakeLabelFiles(), FakeReports(), lambda: model,
                                aggregates=store, merchants=FakeMerchantRiskStore(), shadow_manifest=lambda: SHADOW,
                                gate=gate, config=config, clock=lambda: NOW)
    service.accept_labels([Label(t, bool(v), None, NOW, "case") for t, v in labels.items()])
    hourly: dict = {}
    report = service.evaluate(NOW, hourly)
    first_hour, _ = service.merchant_window(NOW)
    scan = scan_figures(audit, model, NOW, config, SHADOW, gate, merchant_first_hour=first_hour)
    return report, scan, hourly, store


def test_drift_is_the_same_as_from_every_row(world):
    report, scan, _, _ = world
    features = report["drift"]["features"]
    assert features.keys() == scan["drift"]["features"].keys() and len(features) == N_FEATURES
    assert any(d["status"] in ("warn", "alert") for d in features.values())  # the shifted window drifted
    assert features == scan["drift"]["features"]
    assert report["drift"]["score"] == scan["drift"]["score"] and report["drift"]["score"]["psi"] is not None
    assert report["drift"]["alert_rate"] == pytest.approx(scan["drift"]["alert_rate"], abs=1e-12)


def test_performance_is_the_same_as_from_every_row(world):
    report, scan, _, _ = world
    for view in ("performance", "performance_provisional"):
        mine, full = report[view], scan[view]
        assert mine["rows"] == full["rows"] > 2000 and mine["positives"] == full["positives"] > 50
        assert (mine["labelled"], mine["model_versions"]) == (full["labelled"], full["model_versions"])
        for name in THRESHOLDS:
            assert mine["at_thresholds"][name] == pytest.approx(full["at_thresholds"][name], abs=1e-12), (view, name)
        assert mine["expected_calibration_error"] == pytest.approx(full["expected_calibration_error"], abs=1e-9)
        assert mine["card_precision_top20_per_day"] == pytest.approx(full["card_precision_top20_per_day"], abs=1e-12)
        assert mine["precision_top20_per_day"] == pytest.approx(full["precision_top20_per_day"], abs=1e-12)
        assert mine["card_precision_exact"] is True and mine["labelled_without_aggregate"] == 0
        # ranking figures: exact up to the order within a 1/1000-wide bin
        assert mine["average_precision"] == pytest.approx(full["average_precision"], abs=2e-3)
        assert mine["roc_auc"] == pytest.approx(full["roc_auc"], abs=1e-3)
        assert mine["recall_at_1pct_fpr"] == pytest.approx(full["recall_at_1pct_fpr"], abs=0.03)


def test_the_shadow_verdict_is_the_same_as_from_every_row(world):
    report, scan, _, _ = world
    mine, full = report["shadow"]["verdict"], scan["shadow"]
    assert mine["promoted"] == full["promoted"] and mine["failed"] == full["failed"]
    assert report["shadow"]["rows"] == full["holdout"]["rows"] > 1500
    for side in ("challenger", "champion"):
        for block in ("review", "block"):
            assert mine[side][block] == pytest.approx(full[side][block], abs=1e-12)
        assert mine[side]["card_precision_at_k"] == pytest.approx(full[side]["card_precision_at_k"], abs=1e-12)
        assert mine[side]["ece"] == pytest.approx(full[side]["ece"], abs=1e-9)
        assert mine[side]["average_precision"] == pytest.approx(full[side]["average_precision"], abs=2e-3)


def test_charts_and_merchant_stats_are_the_same_as_from_every_row(world):
    report, scan, hourly, _ = world
    assert report["score_distribution"] == scan["score_distribution"]
    assert report["volume_per_hour"] == scan["volume_per_hour"]
    assert report["alert_rate_per_hour"] == pytest.approx(scan["alert_rate_per_hour"], abs=1e-12)
    assert hourly == scan["merchant_hourly"] and hourly
    assert "v0" in report["warming_up"] and report["warming_up"] == scan["warming_up"]
    assert sum(report["decisions_by_risk_level"].values()) == report["window"]["decisions"] == sum(
        scan["volume_per_hour"].values()) > 2000


def test_latency_percentiles_are_bounded_by_their_bin(world):
    report, scan, _, _ = world
    edges = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
    for q, exact in scan["latency_ms"].items():
        upper = report["latency_ms"][q]
        assert upper >= exact and max(e for e in edges if e < upper) <= exact


def test_a_run_reads_rows_per_process_and_hour_not_per_decision(world):
    _, _, _, store = world
    hours = {hour for hour, _ in store.documents}
    assert len(store.documents) <= 3 * len(hours) * 2  # three processes, a generation or two each


def test_score_bins_round_trip_and_add_up():
    rng = np.random.default_rng(2)
    a, b = ScoreBins((0.41, 0.8123)), ScoreBins((0.8123, 0.41))
    a.add(rng.random(500), [f"C{i % 250}" for i in range(500)], [f"T{i}" for i in range(500)])
    b.add(rng.random(300), [f"D{i}" for i in range(300)], [f"U{i}" for i in range(300)])
    copy = ScoreBins.from_dict(a.to_dict())
    assert np.array_equal(copy.counts, a.counts) and np.allclose(copy.sums, a.sums)
    copy.merge(b)
    assert copy.counts.sum() == 800 and len(copy.top_cards) <= 2 * TOP_KEPT and copy.cards_dropped
    assert copy.above(0.8123) == int(np.sum(copy.counts[np.searchsorted(fine_edges((0.41, 0.8123)), 0.8123) + 1:]))
    with pytest.raises(ValueError):
        copy.merge(ScoreBins((0.5,)))


def test_an_aggregate_of_another_hour_or_model_is_not_added():
    reference = ServingReference.from_manifest({"version": "v1", "feature_names": [], "thresholds": THRESHOLDS})
    one = HourAggregate.start(10, reference, "v1", "", None)
    with pytest.raises(ValueError):
        one.merge(HourAggregate.start(11, reference, "v1", "", None))


def test_decisions_that_come_one_at_a_time_are_all_in_the_flushed_hour_as_if_added_at_once():
    """HTTP requests bring one decision each: they wait (up to ``fold_rows``) and are added
    together at the flush; the written hour is the one adding each at once would write."""
    rng = np.random.default_rng(3)
    model = manifest(rng)
    records, _ = decisions(rng)
    records = [r for r in records if r.model_version == "v1"][:150]  # 150: two folds of 64 and 22 left for the flush
    written = []
    for fold_rows in (1, 64):
        store = FakeMonitoringAggregates()
        aggregator = MonitoringAggregator(store, reference_lookup({"v1": model, "s2": SHADOW}.get), flush_seconds=3600,
                                          fold_rows=fold_rows, process="p")
        for record in records:
            aggregator.record([Delivery(record)])
        assert store.documents == {}  # nothing written before the flush
        aggregator.flush()
        written.append(store.documents)
    one_at_a_time, folded = written
    assert folded.keys() == one_at_a_time.keys()
    for key, document in one_at_a_time.items():
        rows = lambda doc: sorted((a["hour"], a["version"], a["rows"]) for a in doc["aggregates"])
        assert rows(folded[key]) == rows(document) and sum(r[2] for r in rows(document)) > 0
        for mine, theirs in zip(sorted(folded[key]["aggregates"], key=lambda a: (a["version"], a["shadow_version"])),
                                sorted(document["aggregates"], key=lambda a: (a["version"], a["shadow_version"]))):
            assert HourAggregate.from_dict(mine).champion.counts.tolist() == HourAggregate.from_dict(theirs).champion.counts.tolist()
            assert {k: v for k, v in mine.items() if k not in ("champion", "shadow")} == \
                   {k: v for k, v in theirs.items() if k not in ("champion", "shadow")}
    assert sum(a["rows"] for d in folded.values() for a in d["aggregates"]) == len(records)
