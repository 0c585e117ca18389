"""Training: a versioned ONNX artifact with everything serving and monitoring need."""
import csv

import numpy as np
import pytest

from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH
from shared.domain.model import load_model, sha256_hex
from training.dataset import read_labelled_csv
from training.simulate import SCENARIOS
from training.train import SEARCH_SPACE, build_parser, onnx_probabilities, train


def test_the_manifest_carries_what_serving_and_monitoring_need(trained_artifact):
    m = trained_artifact.manifest
    assert m["feature_names"] == list(FEATURE_NAMES) and m["feature_schema_hash"] == FEATURE_SCHEMA_HASH
    assert m["onnx_sha256"] == sha256_hex(trained_artifact.onnx_bytes)
    thresholds = m["thresholds"]
    assert 0 <= thresholds["medium"] <= thresholds["high"] <= 1 and thresholds["alert"] == thresholds["medium"]
    assert {d["source"] for d in m["threshold_choice"]["details"].values()} <= {"chosen", "fallback"}
    assert m["calibration"]["method"] == "isotonic" and m["merchant_label_delay_days"] == 7.0
    assert m["rows"]["train"] > 0 and m["rows"]["test"] > 0 and m["rows"]["test_fraud"] > 0
    windows = m["data"]["windows"]
    assert windows["train_start"] < windows["train_end"] < windows["test_start"] < windows["test_end"]
    # the windows a promotion gate checks a holdout against: the label delay between training and test
    assert {k: m["windows"][k] for k in windows} == windows and m["windows"]["gap_days"] == pytest.approx(7.0)
    for name in ("test", "baseline_test"):
        result = m["metrics"][name]
        for key in ("roc_auc", "average_precision", "recall_at_1pct_fpr", "precision_top100_per_day",
                    "card_precision_top100_per_day"):
            assert 0.0 <= result[key] <= 1.0, (name, key)
        assert set(result["by_scenario"]) <= {*SCENARIOS, "unspecified"}
        assert result["calibration"]["brier"] < 0.05 and result["time_to_detection"]["detected"] > 0
    assert [t["params"] for t in m["hyperparameters"]["search"]] == [dict(p) for p in SEARCH_SPACE[:2]]
    assert m["hyperparameters"]["fraud_weight"] > 1 and m["unavailable_features"] == {}
    assert set(m["reference"]["features"]) == set(FEATURE_NAMES)
    assert sum(m["reference"]["score"]["proportions"]) == pytest.approx(1.0)
    assert m["metrics"]["onnx_max_abs_difference"] <= 1e-5
    load_model(trained_artifact)  # serving accepts it


def test_the_model_separates_fraud_on_the_time_ordered_test_window(trained_artifact):
    test = trained_artifact.manifest["metrics"]["test"]
    # 400 customers: a small, hard simulation (novelty does not give fraud away); 1.0 would mean a leak
    assert 0.7 < test["roc_auc"] < 0.99 and 0.1 < test["average_precision"] < 0.9


def test_served_scores_are_the_calibrated_probabilities_in_the_report(trained_artifact, simulated_csv, tmp_path_factory):
    folder = [p for p in tmp_path_factory.getbasetemp().glob("model*")][0]
    rows = list(csv.DictReader(open(folder / "scores.csv")))
    assert len(rows) == trained_artifact.manifest["rows"]["test"]
    data = read_labelled_csv(simulated_csv)
    from shared.domain.features import replay
    from training.dataset import merchant_risk_replay

    wanted = {r["transaction_id"]: float(r["score"]) for r in rows[:300]}
    X = replay(data.transactions, merchants=merchant_risk_replay(data, 7.0))
    pick = [i for i, t in enumerate(data.transactions) if t.transaction_id in wanted]
    served = load_model(trained_artifact).predict(X[pick])
    expected = np.array([wanted[data.transactions[i].transaction_id] for i in pick])
    assert np.allclose(served, expected, atol=1e-5)
    raw = load_model(trained_artifact).raw_predict(X[pick])
    assert not np.allclose(raw, served, atol=1e-3)  # calibration moved them
    report = (folder / "report.md").read_text()
    assert report.startswith("# Fraud model") and "logistic_regression" in report
    for png in ("pr_curves.png", "reliability.png", "score_distributions.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png in report


def test_a_plain_csv_with_five_columns_and_no_offsets_trains_out_of_the_box(simulated_csv, tmp_path):
    """Customer, merchant, amount, timestamp (no UTC offset, no id) and the label: --assume-utc reads
    it, and the features that need the absent columns are recorded as unavailable."""
    from datetime import timezone
    from shared.domain.transaction import parse_timestamp

    plain = tmp_path / "plain.csv"
    with open(simulated_csv) as src, open(plain, "w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["customer", "terminal", "amount", "when", "fraud"])
        for row in csv.DictReader(src):
            naive = parse_timestamp(row["timestamp"]).astimezone(timezone.utc).replace(tzinfo=None).isoformat()
            writer.writerow([row["customer_id"], row["merchant_id"], row["transaction_amount"], naive, row["is_fraud"]])
    maps = ["--map", "customer=customer_id", "--map", "terminal=merchant_id", "--map", "amount=transaction_amount",
            "--map", "when=timestamp", "--map", "fraud=is_fraud"]
    common = ["--data", str(plain), "--max-iter", "40", "--search-candidates", "1", "--no-plots", "--no-baseline"]
    with pytest.raises(SystemExit, match="no valid rows"):  # naive timestamps are refused without the option
        train(build_parser().parse_args([*common, "--out", str(tmp_path / "refused"), *maps]))
    artifact = train(build_parser().parse_args([*common, "--out", str(tmp_path / "m"), "--assume-utc", *maps]))
    m = artifact.manifest
    assert set(m["unavailable_features"]) == {"device_id", "channel", "merchant_category", "country"}
    assert "is_new_device" in m["unavailable_features"]["device_id"]
    assert m["data"]["utc_offset_assumed"] == "+00:00" and m["rows"]["total"] > 10_000
    assert m["metrics"]["test"]["roc_auc"] > 0.7
    load_model(artifact)


def test_a_banks_own_export_with_other_column_names_is_read_with_map(simulated_csv, tmp_path):
    renamed = tmp_path / "bank.csv"
    with open(simulated_csv) as src, open(renamed, "w", newline="") as dst:
        reader = csv.DictReader(src)
        names = ["txn_ref" if c == "transaction_id" else "amount" if c == "transaction_amount" else c
                 for c in reader.fieldnames if c not in ("country", "fraud_scenario")]
        writer = csv.DictWriter(dst, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        for k, row in enumerate(reader):
            if k >= 500:
                break
            writer.writerow({**row, "txn_ref": row["transaction_id"], "amount": row["transaction_amount"]})
    data = read_labelled_csv(renamed, {"txn_ref": "transaction_id", "amount": "transaction_amount"})
    assert len(data) == 500 and not data.rejected
    assert data.transactions[0].country is None


def test_onnx_parity_with_scikit_learn_on_real_features(trained_artifact, simulated_csv):
    from shared.domain.features import replay
    from training.train import fit_classifier, to_onnx

    data = read_labelled_csv(simulated_csv)
    X_all = replay(data.transactions)
    pick = np.r_[np.flatnonzero(data.labels == 1), np.flatnonzero(data.labels == 0)[:3000]]
    X, y = X_all[pick], data.labels[pick]
    model = fit_classifier(X, y, 30, 0)
    diff = np.abs(model.predict_proba(X)[:, 1] - onnx_probabilities(to_onnx(model), X))
    assert diff.max() <= 1e-5


def test_windows_that_do_not_fit_the_data_are_refused(simulated_csv, tmp_path):
    args = build_parser().parse_args(["--data", str(simulated_csv), "--out", str(tmp_path / "m"),
                                      "--train-start", "2026-02-01", "--train-end", "2026-01-10"])
    with pytest.raises(SystemExit, match="time windows"):
        train(args)
