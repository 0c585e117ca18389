"""Train the fraud model and write a versioned ONNX artifact.

    python -m training.train --data data/transactions.csv --out artifacts/model

Time-ordered evaluation: history before the training window only warms the profiles;
the test window starts ``--label-delay-days`` after the training window ends (labels
arrive late); thresholds are checked on a validation slice at the end of the training
window. The classifier is scikit-learn's HistGradientBoostingClassifier, converted with
skl2onnx; the run fails if onnxruntime and scikit-learn disagree by more than 1e-5.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from shared.domain.drift import reference_histogram, score_histogram
from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH, replay
from shared.domain.metrics import precision_recall_curve, summarize
from shared.domain.model import DEFAULT_THRESHOLDS, ModelArtifact, sha256_hex
from training.dataset import LabelledTransactions, merchant_risk_replay, parse_column_map, read_labelled_csv

ONNX_TOLERANCE = 1e-5
SCENARIOS = ("account_takeover", "card_testing", "compromised_merchant", "spending_spree", "authorised_push_payment")


def log(message: str) -> None:
    print(f"[train {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TimeWindows:
    train_start: float
    train_end: float  # exclusive
    test_start: float
    test_end: float  # exclusive

    def describe(self) -> dict[str, str]:
        iso = lambda t: datetime.fromtimestamp(t, timezone.utc).isoformat()  # noqa: E731
        return {k: iso(getattr(self, k)) for k in ("train_start", "train_end", "test_start", "test_end")}


def _day(text: str) -> float:
    return datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc).timestamp()


def choose_windows(times: np.ndarray, args: argparse.Namespace) -> TimeWindows:
    """Explicit dates win; otherwise: 7 days warm-up, last 14 days test, label delay gap."""
    first, last = float(times.min()), float(times.max())
    day = 86400.0
    delay = args.label_delay_days * day
    test_end = _day(args.test_end) if args.test_end else last + 1
    test_start = _day(args.test_start) if args.test_start else max(first, test_end - 14 * day)
    train_end = _day(args.train_end) if args.train_end else test_start - delay
    train_start = _day(args.train_start) if args.train_start else first + 7 * day
    if not (train_start < train_end <= test_start < test_end):
        raise SystemExit(
            f"time windows do not fit the data: train {train_start}-{train_end}, test {test_start}-{test_end}; "
            "pass --train-start/--train-end/--test-start/--test-end"
        )
    return TimeWindows(train_start, train_end, test_start, test_end)


def fit_classifier(X: np.ndarray, y: np.ndarray, max_iter: int, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    positives = max(int(y.sum()), 1)
    # Class imbalance: up-weight fraud, capped so probabilities stay usable against the
    # seed's fixed 0.5/0.8 thresholds (full balancing would flag far too much). The weight
    # is applied by repeating fraud rows (an integer sample weight): scikit-learn 1.9's
    # sample_weight path of this estimator was ~100x slower here for the same result.
    weight = int(min(round((y.size - positives) / positives), 10))
    repeat = np.where(y == 1, weight, 1)
    X_fit, y_fit = np.repeat(X, repeat, axis=0), np.repeat(y, repeat)
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=40,
        l2_regularization=1.0, early_stopping=False, random_state=seed,
    )
    model.fit(X_fit, y_fit)
    return model, weight


def to_onnx(model) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, len(FEATURE_NAMES)]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return onx.SerializeToString()


def onnx_probabilities(onnx_bytes: bytes, X: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"features": X.astype(np.float32)})
    return np.asarray(probabilities)[:, 1]


def scenario_recall(y: np.ndarray, scores: np.ndarray, scenarios: np.ndarray, thresholds: dict[str, float]) -> dict[str, Any]:
    table = {}
    for name in SCENARIOS:
        mask = (scenarios == name) & (y == 1)
        n = int(mask.sum())
        table[name] = {"fraud_rows": n, **{f"recall_{k}": (float(np.mean(scores[mask] > v)) if n else None) for k, v in thresholds.items()}}
    return table


def pr_curve_svg(precision: np.ndarray, recall: np.ndarray, width: int = 480, height: int = 320) -> str:
    pad = 40
    step = max(1, len(recall) // 400)
    pts = " ".join(
        f"{pad + r * (width - 2 * pad):.1f},{height - pad - p * (height - 2 * pad):.1f}"
        for r, p in zip(recall[::step], precision[::step])
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>'
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">recall</text>'
        f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" text-anchor="middle">precision</text>'
        f'<text x="{pad}" y="{height - pad + 14}">0</text><text x="{width - pad}" y="{height - pad + 14}">1</text>'
        f'<text x="{pad - 12}" y="{pad + 4}">1</text>'
        f'<polyline fill="none" stroke="#c0392b" stroke-width="2" points="{pts}"/></svg>'
    )


def _fmt(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def write_report(folder: Path, manifest: dict[str, Any]) -> None:
    m = manifest["metrics"]["test"]
    lines = [
        f"# Fraud model {manifest['version']}",
        "",
        f"Created {manifest['created_at']}; feature schema `{manifest['feature_schema_hash']}`; "
        f"{manifest['rows']['train']} training rows, {manifest['rows']['test']} test rows.",
        "",
        "## Test window",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    for key in ("rows", "positives", "roc_auc", "average_precision", "recall_at_1pct_fpr"):
        lines.append(f"| {key} | {_fmt(m[key])} |")
    topk = [k for k in m if k.startswith("precision_top")][0]
    lines.append(f"| {topk} | {_fmt(m[topk])} |")
    lines += ["", "| threshold | value | precision | recall | FPR |", "| --- | --- | --- | --- | --- |"]
    for name, r in m["at_thresholds"].items():
        lines.append(f"| {name} | {r['threshold']} | {_fmt(r['precision'])} | {_fmt(r['recall'])} | {_fmt(r['false_positive_rate'])} |")
    lines += ["", "## Recall per fraud scenario (test window)", "", "| scenario | fraud rows | recall > medium | recall > high |", "| --- | --- | --- | --- |"]
    for name, r in manifest["metrics"]["test_by_scenario"].items():
        lines.append(f"| {name} | {r['fraud_rows']} | {_fmt(r['recall_medium'])} | {_fmt(r['recall_high'])} |")
    lines += ["", "## Precision-recall curve", "", "![precision-recall](pr_curve.svg)", ""]
    (folder / "report.md").write_text("\n".join(lines))


def fit_and_package(X: np.ndarray, y: np.ndarray, scenarios: np.ndarray, days: np.ndarray, in_fit: np.ndarray,
                    in_valid: np.ndarray, in_test: np.ndarray, *, thresholds: dict[str, float], max_iter: int, seed: int,
                    top_k: int, version: str | None, data_info: dict[str, Any], total_rows: int,
                    timings: dict[str, float]) -> tuple[ModelArtifact, np.ndarray]:
    """Fit, convert to ONNX (refusing a parity gap), evaluate, and build the manifest.

    Shared by the CLI and the retraining function. Returns the artifact and the ONNX
    scores of the test rows.
    """
    log(f"fit {int(in_fit.sum())} rows, validation {int(in_valid.sum())}, test {int(in_test.sum())} rows")
    if y[in_fit].sum() == 0 or y[in_test].sum() == 0:
        raise SystemExit("the training or test window has no fraud rows; widen the windows")
    fit_started = time.perf_counter()
    model, weight = fit_classifier(X[in_fit], y[in_fit], max_iter, seed)
    fit_seconds = time.perf_counter() - fit_started
    log(f"fitted in {fit_seconds:.1f}s")
    # The validation slice (end of the training window, never fitted on) checks the thresholds.
    valid_scores = model.predict_proba(X[in_valid])[:, 1]

    onnx_bytes = to_onnx(model)
    X_test = X[in_test]
    sk_scores = model.predict_proba(X_test)[:, 1]
    onnx_scores = onnx_probabilities(onnx_bytes, X_test)
    parity = float(np.max(np.abs(sk_scores - onnx_scores))) if X_test.size else 0.0
    if parity > ONNX_TOLERANCE:
        raise SystemExit(f"ONNX and scikit-learn probabilities differ by {parity:.2e} > {ONNX_TOLERANCE}")
    log(f"ONNX parity: max |difference| {parity:.2e}")

    test_metrics = summarize(y[in_test], onnx_scores, days[in_test], thresholds, top_k)
    valid_metrics = summarize(y[in_valid], valid_scores, days[in_valid], thresholds, top_k)
    train_scores = model.predict_proba(X[in_fit])[:, 1]

    created = datetime.now(timezone.utc)
    sha = sha256_hex(onnx_bytes)
    version = version or f"{created.strftime('%Y%m%d-%H%M%S')}-{sha[:8]}"
    manifest = {
        "version": version,
        "created_at": created.isoformat(),
        "algorithm": "sklearn.HistGradientBoostingClassifier",
        "hyperparameters": {"max_iter": max_iter, "learning_rate": 0.1, "max_leaf_nodes": 31, "fraud_weight": weight},
        "data": data_info,
        "rows": {"total": total_rows, "train": int(in_fit.sum()), "validation": int(in_valid.sum()), "test": int(in_test.sum()),
                 "train_fraud": int(y[in_fit].sum()), "test_fraud": int(y[in_test].sum())},
        "feature_names": list(FEATURE_NAMES),
        "feature_schema_hash": FEATURE_SCHEMA_HASH,
        "thresholds": thresholds,
        "metrics": {
            "test": test_metrics,
            "validation": valid_metrics,
            "test_by_scenario": scenario_recall(y[in_test], onnx_scores, scenarios[in_test], thresholds),
            "onnx_max_abs_difference": parity,
        },
        "reference": {
            "features": {name: reference_histogram(X[in_fit][:, i]).to_dict() for i, name in enumerate(FEATURE_NAMES)},
            "score": score_histogram(train_scores).to_dict(),
            "alert_rate": float(np.mean(train_scores > thresholds["high"])),
        },
        "timings_seconds": {**timings, "fit": fit_seconds},
        "onnx_sha256": sha,
    }
    return ModelArtifact(onnx_bytes, manifest), onnx_scores


def train(args: argparse.Namespace) -> ModelArtifact:
    started = time.perf_counter()
    log(f"reading {args.data}")
    data: LabelledTransactions = read_labelled_csv(args.data, parse_column_map(args.map))
    if len(data) == 0:
        raise SystemExit("no valid rows in the data")
    if data.rejected:
        log(f"skipped invalid rows: {dict(data.rejected)}")
    times = data.times
    windows = choose_windows(times, args)
    log(f"replaying {len(data)} transactions through the feature engine")
    replay_started = time.perf_counter()
    merchants = None if args.no_merchant_risk else merchant_risk_replay(data, args.label_delay_days)
    X = replay(data.transactions, progress=lambda i: log(f"  replayed {i:,}"), merchants=merchants)
    replay_seconds = time.perf_counter() - replay_started
    y = data.labels
    scenarios = np.asarray(data.scenarios)

    in_train = (times >= windows.train_start) & (times < windows.train_end)
    in_test = (times >= windows.test_start) & (times < windows.test_end)
    train_times = times[in_train]
    valid_from = np.quantile(train_times, 0.85)
    in_fit = in_train & (times < valid_from)
    in_valid = in_train & (times >= valid_from)
    thresholds = dict(DEFAULT_THRESHOLDS)
    for key in ("high", "medium", "alert"):
        value = getattr(args, f"{key}_threshold")
        if value is not None:
            thresholds[key] = value
    data_info = {"source": str(args.data), "windows": windows.describe(), "label_delay_days": args.label_delay_days,
                 "merchant_risk": not args.no_merchant_risk, "skipped_rows": dict(data.rejected)}
    artifact, onnx_scores = fit_and_package(
        X, y, scenarios, np.floor(times / 86400.0), in_fit, in_valid, in_test, thresholds=thresholds,
        max_iter=args.max_iter, seed=args.seed, top_k=args.top_k, version=args.version, data_info=data_info,
        total_rows=len(data), timings={"replay": replay_seconds})
    manifest = artifact.manifest
    onnx_bytes = artifact.onnx_bytes
    manifest["timings_seconds"]["total"] = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(onnx_bytes)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    precision, recall, _ = precision_recall_curve(y[in_test], onnx_scores)
    (out / "pr_curve.svg").write_text(pr_curve_svg(precision, recall))
    write_report(out, manifest)
    if args.scores_out:
        ids = [t.transaction_id for t, keep in zip(data.transactions, in_test) if keep]
        with open(args.scores_out, "w") as handle:
            handle.write("transaction_id,score\n")
            handle.writelines(f"{i},{s:.6f}\n" for i, s in zip(ids, onnx_scores))
    log(f"wrote {out}/model.onnx, manifest.json, report.md in {time.perf_counter() - started:.1f}s")
    return artifact


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="CSV with the canonical columns and an is_fraud label")
    p.add_argument("--out", required=True, help="artifact folder to write")
    p.add_argument("--map", action="append", default=[], metavar="OLD=NEW", help="rename a CSV column")
    p.add_argument("--train-start"), p.add_argument("--train-end")
    p.add_argument("--test-start"), p.add_argument("--test-end")
    p.add_argument("--label-delay-days", type=float, default=7.0)
    p.add_argument("--max-iter", type=int, default=150)
    p.add_argument("--top-k", type=int, default=20, help="analyst queue size per day for precision@k")
    p.add_argument("--high-threshold", type=float), p.add_argument("--medium-threshold", type=float)
    p.add_argument("--alert-threshold", type=float, help="is_fraud threshold (default 0.7, as in the seed)")
    p.add_argument("--version", help="model version (default: time + sha)")
    p.add_argument("--scores-out", help="write transaction_id,score for the test rows")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-merchant-risk", action="store_true",
                   help="leave the merchant risk features at 'unknown' (to measure what they add)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    artifact = train(args)
    test = artifact.manifest["metrics"]["test"]
    print(json.dumps({"version": artifact.version, "roc_auc": test["roc_auc"], "average_precision": test["average_precision"],
                      "recall_at_1pct_fpr": test["recall_at_1pct_fpr"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
