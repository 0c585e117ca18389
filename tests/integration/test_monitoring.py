"""Closing the loop on Azurite: labels joined once, drift flagged where injected, live
performance equal to a reference computation, retrain requests rate-limited."""
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from azure.functions.timer import TimerRequest
from sklearn import metrics as skm

from fraud_events import analyst_post, decision_record, event_hub_batch, http_post, record_decisions, transaction
from functions.labels_http import labels_http
from functions.monitor_timer import monitor_timer
from functions.score_stream import score_stream
from shared.domain.drift import chi_square_binary, ks_from_counts
from shared.domain.features import FEATURE_NAMES, feature_index, replay
from shared.domain.model import load_model
from training.dataset import merchant_risk_replay, read_labelled_csv

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def replayed(simulated_csv):
    data = read_labelled_csv(simulated_csv)
    return data, replay(data.transactions, merchants=merchant_risk_replay(data, 7.0))  # as training did


def log_decisions(services, artifact, X, y, start, tag):
    """Write decisions to the real audit log as the scoring service would (features as served)."""
    model = load_model(artifact)
    scores = model.predict(X)
    records = []
    for i, (vector, score) in enumerate(zip(X, scores)):
        when = start + timedelta(seconds=int(i * 20 * 3600 / len(X)))
        records.append(decision_record(f"{tag}{i}", when, "High" if score > 0.8 else "Medium" if score > 0.5 else "Low",
                                       customer=f"C{i % 50}", amount=max(float(vector[0]), 0.01), score=float(score),
                                       features=vector, model_version=artifact.version, latency_ms=5.0 + i % 7,
                                       merchant_id=None, is_fraud=bool(score > 0.7)))
    record_decisions(services, records)
    return scores


def monitoring_at(services, now=NOW):
    service = services.monitoring
    service.clock = lambda: now
    return service


def sample(replayed, manifest, n, seed):
    """Rows of the model's test window: the period its drift reference describes."""
    data, X = replayed
    times = data.times
    windows = manifest["data"]["windows"]
    lo, hi = (datetime.fromisoformat(windows[k]).timestamp() for k in ("test_start", "test_end"))
    idx = np.flatnonzero((times >= lo) & (times < hi))
    pick = np.random.default_rng(seed).choice(idx, size=n, replace=False)
    return X[pick].copy(), data.labels[pick]


def test_a_stationary_stream_raises_no_alarm(published, services, replayed):
    X, y = sample(replayed, published.manifest, 3000, seed=1)
    log_decisions(services, published, X, y, NOW - timedelta(hours=21), "S")
    report = monitoring_at(services).run()
    assert report["window"]["decisions"] == 3000
    alerts = [n for n, d in report["drift"]["features"].items() if d["status"] == "alert"]
    assert alerts == [] and report["drift"]["score"]["status"] != "alert"
    assert report["breaches"] == [] and report["retrain_request"] is None


def test_injected_drift_is_flagged_on_the_right_features_and_asks_once(published, services, replayed):
    X, y = sample(replayed, published.manifest, 3000, seed=2)
    drifted = ("amount", "log_amount", "is_new_device")
    X[:, feature_index("amount")] *= 6.0
    X[:, feature_index("log_amount")] += np.log(6.0)
    X[: len(X) // 2, feature_index("is_new_device")] = 1.0
    log_decisions(services, published, X, y, NOW - timedelta(hours=21), "D")
    report = monitoring_at(services).run()
    features = report["drift"]["features"]
    alerts = {n for n, d in features.items() if d["status"] == "alert"}
    assert set(drifted) <= alerts
    assert alerts <= set(drifted) | {n for n in FEATURE_NAMES if n.startswith("amount_to")}  # amount ratios move too
    assert features["is_new_device"]["test"] == "chi_square" and features["is_new_device"]["test_significant"]
    assert features["amount"]["test"] == "kolmogorov_smirnov" and features["amount"]["p_value"] < 1e-6
    first = report["retrain_request"]
    assert first and services.monitoring_blobs.retrain_requests() == [first.split("/", 1)[1]]
    # the next run, still within the cooldown, sees the same breach and asks nothing more
    again = monitoring_at(services, NOW + timedelta(minutes=15)).run()
    assert again["breaches"] and again["retrain_request"] is None
    assert len(services.monitoring_blobs.retrain_requests()) == 1
    later = monitoring_at(services, NOW + timedelta(hours=25)).run()  # after the cooldown (window empty now)
    assert later["window"]["decisions"] == 0
    latest = services.monitoring_blobs.latest()
    assert latest["run_at"] == later["run_at"]


def test_matured_performance_equals_a_reference_computation(published, services, replayed):
    X, y = sample(replayed, published.manifest, 2000, seed=3)
    matured = NOW - timedelta(days=services.config.label_maturity_days)
    scores = log_decisions(services, published, X, y, matured - timedelta(hours=21), "P")
    services.label_store.put([__import__("shared.domain.labels", fromlist=["Label"]).Label(f"P{i}", bool(v), None, None, "test")
                              for i, v in enumerate(y)])
    report = monitoring_at(services).run()
    assert report["labels"]["joined"] == 2000 and report["window"]["decisions"] == 0
    perf = report["performance"]
    assert (perf["view"], perf["rows"], perf["labelled"]) == ("matured", 2000, 2000)
    assert perf["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    assert perf["average_precision"] == pytest.approx(skm.average_precision_score(y, scores))
    medium = perf["at_thresholds"]["medium"]
    review = published.manifest["thresholds"]["medium"]  # chosen from data at training
    assert medium["threshold"] == review
    assert medium["precision"] == pytest.approx(skm.precision_score(y, scores > review, zero_division=0))
    assert medium["recall"] == pytest.approx(skm.recall_score(y, scores > review))
    assert perf["expected_calibration_error"] == pytest.approx(
        np.abs(np.bincount(np.minimum((scores * 10).astype(int), 9), weights=y - scores, minlength=10)).sum() / len(y))
    # the same decisions as the fresh window of a run a maturity earlier: volume, latency, scores
    fresh = monitoring_at(services, matured).run()
    assert fresh["performance_provisional"]["view"] == "provisional"
    # latencies 5..11 ms, median 8: the upper edge of the (5, 10] ms bin of the aggregates' histogram
    assert np.percentile(5.0 + np.arange(2000) % 7, 50) == 8.0 and fresh["latency_ms"]["p50"] == 10.0
    assert sum(fresh["volume_per_hour"].values()) == 2000
    right_closed = np.clip(np.searchsorted(np.linspace(0, 1, 21)[1:-1], scores, side="left"), 0, 19)
    assert fresh["score_distribution"]["counts"] == np.bincount(right_closed, minlength=20).tolist()


def test_labels_from_files_and_http_are_joined_exactly_once(published, services):
    score_stream(event_hub_batch([transaction(i, customer="C3") for i in range(4)]))
    services.label_files.upload("2026/11/chargebacks.csv",
                                b"transaction_id,label,labelled_at,source\nT0,1,2026-11-27T10:00:00Z,chargeback\n"
                                b"T1,0,,chargeback\nNOPE-1,1,,chargeback\nbad/id,1,,chargeback\n")
    first = monitoring_at(services).run()
    assert first["labels"]["files"] == 1 and first["labels"]["labels"] == 3 and first["labels"]["rejected_lines"] == 1
    assert first["labels"]["joined"] == 2 and first["labels"]["unknown_transaction_ids"] == ["NOPE-1"]
    rows = {r["RowKey"]: r for r in services.audit.read(NOW - timedelta(days=30), NOW + timedelta(days=1))}
    assert rows["T0"]["label"] == 1 and rows["T1"]["label"] == 0 and rows["T2"].get("label", "") == ""
    assert services.label_store.compromised_since("C3") is not None
    # an analyst verdict over HTTP joins at once
    response = labels_http(analyst_post("labels", {"transaction_id": "T2", "label": "fraud", "customer_id": "C3"}))
    assert response.status_code == 202 and json.loads(response.get_body())["joined"] == 1
    # re-running changes nothing; the unknown id stays known-unknown, not lost
    second = monitoring_at(services).run()
    assert second["labels"]["files"] == 0 and second["labels"]["joined"] == 0
    assert second["labels"]["unknown_transaction_ids"] == ["NOPE-1"]
    assert services.label_store.get("NOPE-1")["status"] == "unknown"
    # once the transaction is scored, the waiting label joins
    score_stream(event_hub_batch([{**transaction(9, customer="C3"), "transaction_id": "NOPE-1"}]))
    third = monitoring_at(services).run()
    assert third["labels"]["joined"] == 1 and third["labels"]["unknown"] == 0


def test_bad_labels_over_http_are_a_400_naming_item_and_field(published, services):
    response = labels_http(analyst_post("labels", {"labels": [{"transaction_id": "T1", "label": "maybe"}, {"label": 1}]}))
    body = json.loads(response.get_body())
    assert response.status_code == 400
    assert [e["field"] for e in body["errors"]] == ["labels[0].label", "labels[1].transaction_id"]


def test_the_timer_function_runs_the_loop(published, services):
    score_stream(event_hub_batch([transaction(i) for i in range(3)]))
    monitor_timer(TimerRequest(past_due=True))
    latest = services.monitoring_blobs.latest()
    assert latest is not None and "drift" in latest and "performance" in latest


def test_ks_and_chi_square_against_hand_computed_values():
    expected = np.array([0.25, 0.25, 0.25, 0.25])
    counts = np.array([10, 10, 40, 40])
    d, p = ks_from_counts(expected, counts, 1000)
    assert d == pytest.approx(0.3)  # cumulative 0.25/0.5/0.75 against 0.1/0.2/0.6
    assert 0 <= p < 1e-4
    stat, p2 = chi_square_binary(np.array([0.9, 0.1]), np.array([80, 20]))
    assert stat == pytest.approx((80 - 90) ** 2 / 90 + (20 - 10) ** 2 / 10)
    from scipy import stats  # the reference implementation (tests only)

    assert p2 == pytest.approx(stats.chi2.sf(stat, 1), rel=1e-9)
    ks = stats.kstwo.sf(0.3, 1)  # sanity: the asymptotic formula is a proper tail probability
    assert 0 <= ks <= 1
