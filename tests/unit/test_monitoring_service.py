"""The monitoring service on fakes: the label join, label files, the report and the retrain
request's cooldown (tests/integration/test_monitoring.py runs the timer on Azurite with a
real model and its drift reference)."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fakes import FakeAuditLog, FakeLabelFiles, FakeLabelStore, FakeMerchantRiskStore, FakeMonitoringAggregates, FakeReports
from fraud_events import decision_record
from shared.domain.labels import Label
from shared.domain.decision_record import Delivery
from shared.service.monitoring import MonitoringConfig, MonitoringService
from shared.service.monitoring_aggregates import MonitoringAggregator, reference_lookup

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
MANIFEST = {"version": "test-v1", "feature_names": ["a", "b"], "thresholds": {"high": 0.8, "medium": 0.5, "alert": 0.7}}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def parts():
    manifests = {MANIFEST["version"]: MANIFEST}
    aggregates = FakeMonitoringAggregates()
    return {"audit": FakeAuditLog(), "labels": FakeLabelStore(), "label_files": FakeLabelFiles(),
            "reports": FakeReports(), "merchants": FakeMerchantRiskStore(), "clock": Clock(), "manifests": manifests,
            "aggregates": aggregates, "aggregator": MonitoringAggregator(aggregates, reference_lookup(manifests.get))}


def decide(parts, records) -> None:
    """What the scoring service does with its decisions: the audit log, then the outlets."""
    parts["audit"].write(records)
    parts["aggregator"].record([Delivery(r) for r in records])
    parts["aggregator"].flush()


def monitor(parts, **config) -> MonitoringService:
    settings = {"min_labelled_fraud": 20, "min_recall": 0.5, "retrain_cooldown_hours": 24, "label_delay_days": 7, **config}
    return MonitoringService(parts["audit"], parts["labels"], parts["label_files"], parts["reports"], lambda: MANIFEST,
                             aggregates=parts["aggregates"], merchants=parts["merchants"],
                             config=MonitoringConfig(**settings), clock=parts["clock"])


def test_labels_join_known_decisions_and_keep_unknown_ones(parts):
    scored_at = NOW - timedelta(hours=5)
    decide(parts, [decision_record("T1", scored_at, "High", customer="C1", merchant_id="M1"),
                          decision_record("T2", scored_at, "Low", customer="C2", merchant_id="M1"),
                          decision_record("T3", scored_at, "Low", customer="C3", merchant_id="M2")])
    verdict_at = NOW - timedelta(hours=1)
    outcome = monitor(parts).accept_labels([Label("T1", True, "C1", verdict_at, "analyst"),
                                            Label("T2", False, None, None, "case"),
                                            Label("T3", True, None, None, "chargeback"),
                                            Label("T9", True, None, None, "case")])
    assert (outcome["joined"], outcome["unknown"], outcome["unknown_transaction_ids"]) == (3, 1, ["T9"])
    rows = {r["RowKey"]: r for r in parts["audit"].read(NOW - timedelta(days=1), NOW)}
    assert (rows["T1"]["label"], rows["T2"]["label"], rows["T3"]["label"]) == (1, 0, 1)
    assert parts["labels"].get("T9")["status"] == "unknown" and parts["labels"].get("T1")["status"] == "joined"
    assert parts["labels"].compromised_since("C1") == scored_at.isoformat()
    assert parts["labels"].compromised_since("C2") is None
    # an analyst's verdict counts from when it was given; a label without a time after the label delay
    m1, m2 = parts["merchants"].histories["M1"], parts["merchants"].histories["M2"]
    hour = int(scored_at.timestamp() // 3600)
    for end in range(hour + 1, hour + 8 * 24):  # counted (once) as of every hour end by which it is known
        assert m1.frauds_known(hour, hour + 1, end) == int(verdict_at.timestamp() <= end * 3600)
        assert m2.frauds_known(hour, hour + 1, end) == int((scored_at + timedelta(days=7)).timestamp() <= end * 3600)


def test_a_verdict_records_the_analyst_and_a_changed_mind_is_a_new_history_entry(parts):
    decide(parts, [decision_record("V1", NOW - timedelta(hours=3), "High", customer="C1")])
    service = monitor(parts)
    first = service.accept_labels([Label("V1", True, "C1", None, "analyst")], labelled_by="alice@bank", labelled_by_id="oid-a")
    assert first["joined"] == 1 and first["current"][0]["labelled_by"] == "alice@bank"
    assert first["current"][0]["labelled_at"] == NOW.isoformat()  # dated when it was given
    parts["clock"].now = NOW + timedelta(minutes=5)
    resent = service.accept_labels([Label("V1", True, "C1", None, "analyst")], labelled_by="alice@bank")
    assert resent["joined"] == 0 and len(parts["labels"].history("V1")) == 1  # a retry adds nothing, joins nothing
    parts["clock"].now = NOW + timedelta(minutes=10)
    changed = service.accept_labels([Label("V1", False, "C1", None, "analyst")], labelled_by="bob@bank")
    assert changed["joined"] == 1 and changed["current"][0]["previous_label"] == 1
    assert [(e["label"], e["labelled_by"]) for e in parts["labels"].history("V1")] == [(1, "alice@bank"), (0, "bob@bank")]
    row, = [r for r in parts["audit"].read(NOW - timedelta(days=1), NOW) if r["RowKey"] == "V1"]
    assert (row["label"], row["labelled_by"]) == (0, "bob@bank")


def test_a_label_file_records_itself_as_who_labelled_and_a_redelivered_file_adds_nothing(parts):
    decide(parts, [decision_record("F1", NOW - timedelta(hours=3), "High")])
    content = b"transaction_id,label,labelled_at,labelled_by\nF1,fraud,2026-11-28T10:00:00Z,mallory@bank\n"
    parts["label_files"].files["cases/day1.csv"] = content
    service = monitor(parts)
    service.run()
    entry, = parts["labels"].history("F1")
    assert entry["labelled_by"] == "file:cases/day1.csv"  # the file, not what a column claims
    parts["label_files"].files["cases/day1.csv"] = content + b"\n"  # uploaded again: a new ETag, the same labels
    assert service.ingest_label_files()["files"] == 1 and len(parts["labels"].history("F1")) == 1
    assert parts["labels"].get("F1")["status"] == "joined"


def test_a_label_file_is_read_once_and_its_bad_lines_are_counted(parts):
    parts["label_files"].files["day1.csv"] = b"transaction_id,label\nT1,fraud\nT 2,1\nT3,maybe\n"
    service = monitor(parts)
    assert service.ingest_label_files() == {"files": 1, "labels": 1, "rejected_lines": 2}
    assert service.ingest_label_files() == {"files": 0, "labels": 0, "rejected_lines": 0}
    assert [r["RowKey"] for r in parts["labels"].awaiting()] == ["T1"]


def test_a_quiet_window_is_reported_without_a_retrain_request(parts):
    decide(parts, [decision_record(f"Q{i}", NOW - timedelta(minutes=10 * i + 1), "Low", score=0.05 * (i % 10),
                                          latency_ms=float(i)) for i in range(40)])
    report = monitor(parts).run()
    assert report["window"]["decisions"] == 40 and report["breaches"] == [] and report["retrain_request"] is None
    assert sum(report["score_distribution"]["counts"]) == 40 and len(report["score_distribution"]["counts"]) == 20
    assert report["latency_ms"]["p50"] == 20.0  # 0..39 ms: the median 19.5 falls in the (10, 20] ms bin
    assert parts["reports"].latest()["window"]["decisions"] == 40


MATURED = NOW - timedelta(days=7)  # the label maturity (the label delay by default)


def test_low_matured_recall_asks_for_a_retrain_once_per_cooldown(parts):
    missed = [decision_record(f"F{i}", MATURED - timedelta(hours=2, minutes=i), "Low", score=0.1) for i in range(25)]
    caught = [decision_record(f"G{i}", MATURED - timedelta(hours=3, minutes=i), "High", score=0.9) for i in range(5)]
    decide(parts, missed + caught)
    service = monitor(parts)
    service.accept_labels([Label(r.transaction_id, True, None, NOW, "case") for r in missed + caught])
    first = service.run()
    assert first["performance"]["positives"] == 30 and first["performance"]["view"] == "matured"
    assert first["performance"]["at_thresholds"]["medium"]["recall"] == pytest.approx(5 / 30)
    assert first["breaches"] and "recall" in first["breaches"][0] and first["retrain_request"] is not None
    parts["clock"].now = NOW + timedelta(hours=1)
    second = service.run()
    assert second["breaches"] and second["retrain_request"] is None  # within the cooldown
    assert len(parts["reports"].requests) == 1


def test_too_few_labelled_frauds_judge_no_recall(parts):
    decide(parts, [decision_record(f"F{i}", MATURED - timedelta(hours=2), "Low", score=0.1) for i in range(5)])
    service = monitor(parts)
    service.accept_labels([Label(f"F{i}", True, None, NOW, "case") for i in range(5)])
    assert service.run()["breaches"] == []


def test_matured_performance_counts_unlabelled_decisions_as_legitimate(parts):
    """The matured window [now - maturity - w, now - maturity) judged with unlabelled decisions
    as legitimate equals the same figures computed directly; the fresh window is provisional."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(3)
    scores = rng.random(80).round(4)
    labels = {i: 1 for i in range(0, 80, 7)} | {i: 0 for i in range(3, 80, 11)}  # the rest never labelled
    matured = [decision_record(f"M{i}", MATURED - timedelta(hours=1, minutes=10 * i), "Low", customer=f"C{i % 9}",
                               score=float(s)) for i, s in enumerate(scores)]
    fresh = [decision_record(f"N{i}", NOW - timedelta(hours=1, minutes=i), "Low", score=0.9) for i in range(5)]
    too_old = [decision_record("OLD", MATURED - timedelta(hours=30), "Low", score=0.99)]
    decide(parts, matured + fresh + too_old)
    service = monitor(parts)
    service.accept_labels([Label(f"M{i}", bool(v), None, NOW, "case") for i, v in labels.items()]
                          + [Label("N0", True, None, NOW, "analyst"), Label("OLD", True, None, NOW, "case")])
    report = service.run()

    y = np.array([labels.get(i, 0) for i in range(80)])
    perf = report["performance"]
    assert perf["view"] == "matured" and (perf["rows"], perf["positives"]) == (80, int(y.sum()))
    assert perf["labelled"] == len(labels) and perf["unlabelled_counted_as_legitimate"] == 80 - len(labels)
    assert perf["average_precision"] == pytest.approx(average_precision_score(y, scores))
    flagged = scores > MANIFEST["thresholds"]["medium"]
    medium = perf["at_thresholds"]["medium"]
    assert medium["recall"] == pytest.approx((flagged & (y == 1)).sum() / y.sum())
    assert medium["precision"] == pytest.approx((flagged & (y == 1)).sum() / flagged.sum())
    assert perf["expected_calibration_error"] is not None
    provisional = report["performance_provisional"]
    assert provisional["view"] == "provisional" and "still arriving" in provisional["note"]
    assert (provisional["rows"], provisional["positives"], provisional["labelled"]) == (5, 1, 1)


def test_fresh_labels_never_judge_recall(parts):
    """Labels of the fresh window are mostly the model's own alerts confirmed: a low recall
    there asks for nothing."""
    decide(parts, [decision_record(f"F{i}", NOW - timedelta(hours=2, minutes=i), "Low", score=0.1)
                          for i in range(30)])
    service = monitor(parts)
    service.accept_labels([Label(f"F{i}", True, None, NOW, "case") for i in range(30)])
    report = service.run()
    assert report["performance"] is None and report["performance_provisional"]["positives"] == 30
    assert report["breaches"] == [] and report["retrain_request"] is None


def test_a_model_change_within_the_window_withholds_the_retrain_request(parts):
    missed = [decision_record(f"F{i}", MATURED - timedelta(hours=2, minutes=i), "Low", score=0.1) for i in range(25)]
    switched = [decision_record("OLD1", NOW - timedelta(hours=20), "Low", model_version="previous-v0"),
                decision_record("NEW1", NOW - timedelta(hours=2), "Low")]
    decide(parts, missed + switched)
    service = monitor(parts)
    service.accept_labels([Label(r.transaction_id, True, None, NOW, "case") for r in missed])
    report = service.run()
    assert report["breaches"] and report["retrain_request"] is None
    assert "warming up" in report["retrain_withheld"] and "previous-v0" in report["warming_up"]
    assert parts["reports"].requests == []


def test_the_shadow_is_judged_by_the_gate_on_matured_decisions_both_models_scored(parts):
    """A shadow that ranks the matured fraud better at the same alert volume would be promoted
    on that evidence; the report holds both models' figures; rows without its score are left out."""
    from dataclasses import replace

    from shared.domain.decision_record import ShadowScore
    from shared.domain.promotion import PromotionGate

    rng = np.random.default_rng(5)
    fraud = rng.random(200) < 0.1
    champion = np.clip(np.where(fraud, rng.normal(0.45, 0.25, 200), rng.normal(0.3, 0.2, 200)), 0, 1)
    shadow = np.clip(np.where(fraud, rng.normal(0.85, 0.1, 200), rng.normal(0.1, 0.1, 200)), 0, 1)
    records = [replace(decision_record(f"S{i}", MATURED - timedelta(hours=1, minutes=5 * i), "Low", customer=f"C{i}",
                                       score=float(champion[i])), shadow=ShadowScore("shadow-v2", float(shadow[i])))
               for i in range(200)]
    records.append(decision_record("UNSHADOWED", MATURED - timedelta(hours=2), "Low", score=0.99))
    shadow_manifest = {"version": "shadow-v2", "thresholds": {"high": 0.9, "medium": 0.5, "alert": 0.7}}
    parts["manifests"]["shadow-v2"] = {**shadow_manifest, "feature_names": []}
    decide(parts, records)
    service = monitor(parts)
    service.shadow_manifest = lambda: shadow_manifest
    service.gate = PromotionGate(k=5, max_alert_ratio=None)
    service.accept_labels([Label(f"S{i}", True, None, NOW, "case") for i in np.flatnonzero(fraud)])
    report = service.run()["shadow"]
    assert report["version"] == "shadow-v2" and report["rows"] == 200
    verdict = report["verdict"]
    assert verdict["challenger"]["version"] == "shadow-v2" and verdict["champion"]["version"] == "test-v1"
    assert verdict["challenger"]["average_precision"] > verdict["champion"]["average_precision"]
    assert verdict["promoted"] is True, verdict["reasons"]
    assert "challenger_training_before_holdout" not in verdict["checks"]  # scored live: no windows to check

    service.shadow_manifest = lambda: {**shadow_manifest, "version": "shadow-v3"}
    assert service.run()["shadow"] == {**{k: report[k] for k in ("start", "end")}, "version": "shadow-v3", "rows": 0,
                                       "note": "no matured decision was scored by this shadow yet"}
