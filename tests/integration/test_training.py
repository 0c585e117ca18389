"""Training: a versioned ONNX artifact with everything serving and monitoring need."""
import csv

import numpy as np
import pytest

from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH
from shared.domain.model import load_model, sha256_hex
from training.dataset import read_labelled_csv
from training.simulate import SCENARIOS
from training.train import build_parser, onnx_probabilities, train


def test_the_manifest_carries_what_serving_and_monitoring_need(trained_artifact):
    m = trained_artifact.manifest
    assert m["feature_names"] == list(FEATURE_NAMES) and m["feature_schema_hash"] == FEATURE_SCHEMA_HASH
    assert m["onnx_sha256"] == sha256_hex(trained_artifact.onnx_bytes)
    assert m["thresholds"] == {"high": 0.8, "medium": 0.5, "alert": 0.7}
    assert m["rows"]["train"] > 0 and m["rows"]["test"] > 0 and m["rows"]["test_fraud"] > 0
    windows = m["data"]["windows"]
    assert windows["train_start"] < windows["train_end"] < windows["test_start"] < windows["test_end"]
    test = m["metrics"]["test"]
    for key in ("roc_auc", "average_precision", "recall_at_1pct_fpr", "precision_top20_per_day"):
        assert 0.0 <= test[key] <= 1.0
    assert set(m["metrics"]["test_by_scenario"]) == set(SCENARIOS)
    assert set(m["reference"]["features"]) == set(FEATURE_NAMES)
    assert sum(m["reference"]["score"]["proportions"]) == pytest.approx(1.0)
    assert m["metrics"]["onnx_max_abs_difference"] <= 1e-5
    load_model(trained_artifact)  # serving accepts it


def test_the_model_separates_fraud_on_the_time_ordered_test_window(trained_artifact):
    test = trained_artifact.manifest["metrics"]["test"]
    assert test["roc_auc"] > 0.8 and test["average_precision"] > 0.3


def test_scores_out_has_one_row_per_test_transaction(trained_artifact, tmp_path_factory):
    folder = [p for p in tmp_path_factory.getbasetemp().glob("model*")][0]
    rows = list(csv.DictReader(open(folder / "scores.csv")))
    assert len(rows) == trained_artifact.manifest["rows"]["test"]
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    assert (folder / "report.md").read_text().startswith("# Fraud model")
    assert (folder / "pr_curve.svg").read_text().startswith("<svg")


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
