"""Train the fraud model and write a versioned ONNX artifact with its report.

    python -m training.train --data data/transactions.csv --out artifacts/model

The protocol of the fraud-ML literature, in time order (never a random split):

* history before the training window only warms the customer profiles and merchant histories;
* the training window is cut by time into four slices: *fit* (60%), *search* (15%: early
  stopping and a small, time-budgeted hyperparameter search), *calibrate* (13%: an isotonic
  map from the classifier's score to a probability) and *choose* (12%: thresholds from the
  analysts' daily budget and the block precision target); the final classifier is refitted
  on fit + search with the chosen hyperparameters and number of iterations;
* the test window starts ``--label-delay-days`` after the training window ends (labels
  arrive late) and is scored once, by the model and by a logistic regression on the same
  features, both calibrated the same way, with ``training.evaluate``'s protocol.

The manifest records the windows (``"windows"``: the training window every fitted, calibrated
or threshold-choosing row lies in, and the test window), so a retrain's promotion gate can
check that its holdout starts after this model's training data (``shared.domain.promotion``).

The classifier is scikit-learn's HistGradientBoostingClassifier with fraud up-weighted by a
sample weight (recorded), converted with skl2onnx; the run fails if onnxruntime and
scikit-learn disagree by more than 1e-5. Serving applies the calibration stored in the
manifest to the ONNX score (``shared.domain.calibration``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from shared.domain.drift import calendar_strata, reference_histogram, score_histogram
from shared.domain.features import FEATURE_INPUTS, FEATURE_NAMES, FEATURE_SCHEMA_HASH, feature_index, replay
from shared.domain.metrics import average_precision
from shared.domain.model import ModelArtifact, sha256_hex
from shared.domain.promotion import TimeWindows
from training.calibrate import fit_calibration
from training.dataset import LabelledTransactions, merchant_risk_replay, parse_column_map, read_labelled_csv
from training.evaluate import (
    DEFAULT_COST_PER_ALERT, DEFAULT_COST_PER_BLOCK, evaluate, fmt, render_markdown, write_plots,
)
from training.progress import progress_bar
from training.thresholds import choose_thresholds

ONNX_TOLERANCE = 1e-5
DAY = 86400.0
SLICES = (0.60, 0.75, 0.88)  # fit | search | calibrate | choose, as quantiles of the training window's time
MAX_FRAUD_WEIGHT = 10.0


def log(message: str) -> None:
    print(f"[train {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _day(text: str) -> float:
    return datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc).timestamp()


def choose_windows(times: np.ndarray, args: argparse.Namespace) -> TimeWindows:
    """Explicit dates win; otherwise: 7 days warm-up, last 14 days test, label delay gap."""
    first, last = float(times.min()), float(times.max())
    delay = args.label_delay_days * DAY
    test_end = _day(args.test_end) if args.test_end else last + 1
    test_start = _day(args.test_start) if args.test_start else max(first, test_end - 14 * DAY)
    train_end = _day(args.train_end) if args.train_end else test_start - delay
    train_start = _day(args.train_start) if args.train_start else first + 7 * DAY
    if not (train_start < train_end <= test_start < test_end):
        raise SystemExit(
            f"time windows do not fit the data: train {train_start}-{train_end}, test {test_start}-{test_end}; "
            "pass --train-start/--train-end/--test-start/--test-end"
        )
    return TimeWindows(train_start, train_end, test_start, test_end)


@dataclass(frozen=True)
class TrainingSlices:
    """Boolean masks over the rows: the training window cut by time, and the test window; and
    the windows themselves (the manifest records them)."""

    fit: np.ndarray
    search: np.ndarray
    calibrate: np.ndarray
    choose: np.ndarray
    test: np.ndarray
    windows: TimeWindows

    @classmethod
    def of(cls, times: np.ndarray, windows: TimeWindows, cuts: Sequence[float] = SLICES) -> "TrainingSlices":
        in_train = (times >= windows.train_start) & (times < windows.train_end)
        in_test = (times >= windows.test_start) & (times < windows.test_end)
        if not in_train.any():
            raise SystemExit("the training window holds no rows")
        a, b, c = np.quantile(times[in_train], cuts)
        return cls(in_train & (times < a), in_train & (times >= a) & (times < b),
                   in_train & (times >= b) & (times < c), in_train & (times >= c), in_test, windows)

    def rows(self) -> dict[str, int]:
        return {name: int(getattr(self, name).sum()) for name in ("fit", "search", "calibrate", "choose", "test")}


@dataclass
class TrainingSet:
    """Feature rows and what the evaluation needs about each (times in epoch seconds)."""

    X: np.ndarray
    y: np.ndarray
    times: np.ndarray
    scenarios: np.ndarray
    customers: np.ndarray | None = None
    incidents: np.ndarray | None = None
    ids: list[str] | None = None
    # sample weight of each row: 1 / the rate its kind was kept at when the rows were
    # down-sampled (a retrain's cap), so fitting, calibration and thresholds see the full
    # data's proportions; None: every row weighs 1
    weights: np.ndarray | None = None

    @classmethod
    def concat(cls, parts: Sequence["TrainingSet"]) -> "TrainingSet":
        """The rows of every part, in time order (the customers kept when every part has them;
        the weights when any part has them, 1 for the rows of a part without)."""
        if not parts:
            return cls(np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0, np.int8), np.zeros(0),
                       np.zeros(0, dtype=object), np.zeros(0, dtype=object))
        times = np.concatenate([p.times for p in parts])
        order = np.argsort(times, kind="mergesort")
        customers = (None if any(p.customers is None for p in parts) else
                     np.concatenate([np.asarray(p.customers, dtype=object) for p in parts])[order])
        weights = (None if all(p.weights is None for p in parts) else
                   np.concatenate([np.ones(p.y.size) if p.weights is None else p.weights for p in parts])[order])
        return cls(np.vstack([p.X for p in parts])[order], np.concatenate([p.y for p in parts])[order], times[order],
                   np.concatenate([np.asarray(p.scenarios, dtype=object) for p in parts])[order], customers,
                   weights=weights)

    def take(self, rows: np.ndarray, weights: np.ndarray | None = None) -> "TrainingSet":
        """These rows only (positions), with these sample weights (incidents and ids dropped)."""
        return TrainingSet(self.X[rows], self.y[rows], self.times[rows], self.scenarios[rows],
                           None if self.customers is None else self.customers[rows], weights=weights)

    @property
    def amounts(self) -> np.ndarray:
        return self.X[:, FEATURE_NAMES.index("amount")].astype(np.float64)

    @property
    def days(self) -> np.ndarray:
        return np.floor(self.times / DAY)


# Candidates, in the order they are tried; the first is a safe default, always tried.
SEARCH_SPACE: tuple[dict[str, float], ...] = (
    {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 40, "l2_regularization": 1.0},
    {"learning_rate": 0.05, "max_leaf_nodes": 31, "min_samples_leaf": 100, "l2_regularization": 1.0},
    {"learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 20, "l2_regularization": 0.0},
    {"learning_rate": 0.05, "max_leaf_nodes": 63, "min_samples_leaf": 50, "l2_regularization": 2.0},
    {"learning_rate": 0.1, "max_leaf_nodes": 63, "min_samples_leaf": 200, "l2_regularization": 1.0},
    {"learning_rate": 0.2, "max_leaf_nodes": 15, "min_samples_leaf": 100, "l2_regularization": 1.0},
    {"learning_rate": 0.03, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 0.5},
)


@dataclass(frozen=True)
class TrainingOptions:
    max_iter: int = 400
    seed: int = 7
    search_seconds: float = 60.0
    search_candidates: int = len(SEARCH_SPACE)  # at most this many (a time budget alone is not reproducible)
    fraud_weight: float | None = None  # None: legitimate/fraud ratio, capped at MAX_FRAUD_WEIGHT
    calibration: str = "isotonic"
    review_budget_per_day: float | None = None
    block_precision: float = 0.9
    overrides: Mapping[str, float | None] = field(default_factory=dict)
    top_k: int = 100
    cost_per_alert: float = DEFAULT_COST_PER_ALERT
    cost_per_block: float = DEFAULT_COST_PER_BLOCK
    baseline: bool = True
    label_delay_days: float = 7.0


def fraud_weight_of(y: np.ndarray, fraud_weight: float | None, row_weights: np.ndarray | None = None) -> float:
    """The sample weight of a fraud row (legitimate rows weigh 1): ``fraud_weight``, or the
    class ratio of ``y`` (counted with ``row_weights`` when the rows were down-sampled)
    capped at MAX_FRAUD_WEIGHT."""
    counts = np.ones(y.size) if row_weights is None else np.asarray(row_weights, dtype=np.float64)
    positives = max(float(counts[y == 1].sum()), 1.0)
    legitimate = float(counts[y != 1].sum())
    weight = float(fraud_weight) if fraud_weight is not None else min(legitimate / positives, MAX_FRAUD_WEIGHT)
    return max(weight, 1.0)


def _classifier(params: Mapping[str, float], max_iter: int, seed: int, early_stopping: bool):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=params["learning_rate"], max_leaf_nodes=int(params["max_leaf_nodes"]),
        min_samples_leaf=int(params["min_samples_leaf"]), l2_regularization=params["l2_regularization"],
        early_stopping=early_stopping, n_iter_no_change=15, scoring="loss", random_state=seed)


def search_hyperparameters(data: TrainingSet, slices: TrainingSlices, weights: np.ndarray,
                           options: TrainingOptions) -> tuple[dict[str, float], int, list[dict[str, Any]]]:
    """Fit each candidate on the fit slice with early stopping on the (later) search slice,
    until the time budget is spent; the best average precision on the search slice wins."""
    X, y = data.X, data.y
    fit, search = slices.fit, slices.search
    trials: list[dict[str, Any]] = []
    started = time.perf_counter()
    with progress_bar(len(SEARCH_SPACE), "hyperparameter search") as advance:
        for params in SEARCH_SPACE:
            if trials and (time.perf_counter() - started > options.search_seconds
                           or len(trials) >= options.search_candidates):
                break
            t0 = time.perf_counter()
            model = _classifier(params, options.max_iter, options.seed, early_stopping=True)
            model.fit(X[fit], y[fit], sample_weight=weights[fit], X_val=X[search], y_val=y[search],
                      sample_weight_val=weights[search])
            ap = average_precision(y[search], model.predict_proba(X[search])[:, 1])
            trials.append({"params": dict(params), "iterations": int(model.n_iter_), "search_ap": ap,
                           "seconds": round(time.perf_counter() - t0, 2)})
            advance(1)
    best = max(trials, key=lambda t: (t["search_ap"] or 0.0))
    return best["params"], max(best["iterations"], 10), trials


def fit_classifier(X: np.ndarray, y: np.ndarray, max_iter: int, seed: int,
                   params: Mapping[str, float] = SEARCH_SPACE[0], sample_weight: np.ndarray | None = None):
    """The classifier with fixed hyperparameters and iterations (no early stopping)."""
    model = _classifier(params, max_iter, seed, early_stopping=False)
    model.fit(X, y, sample_weight=sample_weight)
    return model


def _signed_log(X: np.ndarray) -> np.ndarray:
    return np.sign(X) * np.log1p(np.abs(X))


def fit_baseline(data: TrainingSet, rows: np.ndarray, weights: np.ndarray, seed: int):
    """The textbook comparison: a logistic regression on the same features (signed log, standardised)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    model = make_pipeline(FunctionTransformer(_signed_log), StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    model.fit(data.X[rows].astype(np.float64), data.y[rows], logisticregression__sample_weight=weights[rows])
    return model


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


def unavailable_features(transactions: Sequence[Any]) -> dict[str, list[str]]:
    """Input columns absent from every row, and the features that are constant without them."""
    missing = {}
    for column, names in FEATURE_INPUTS.items():
        if not any(getattr(t, column) for t in transactions):
            missing[column] = list(names)
    return missing


def _evaluation(data: TrainingSet, rows: np.ndarray, scores: np.ndarray, thresholds: Mapping[str, float],
                options: TrainingOptions, include_incidents: bool = False) -> dict[str, Any]:
    return evaluate(
        data.y[rows], scores, times=data.times[rows],
        customers=data.customers[rows] if data.customers is not None else None, amounts=data.amounts[rows],
        scenarios=data.scenarios[rows], incidents=data.incidents[rows] if data.incidents is not None else None,
        review_threshold=thresholds["medium"], block_threshold=thresholds["high"],
        thresholds={"review": thresholds["medium"], "block": thresholds["high"], "alert": thresholds["alert"]},
        k=options.top_k, cost_per_alert=options.cost_per_alert, cost_per_block=options.cost_per_block,
        include_incidents=include_incidents)


@dataclass
class TrainedModel:
    artifact: ModelArtifact
    test_scores: np.ndarray  # calibrated, as served
    baseline_test_scores: np.ndarray | None
    raw_test_scores: np.ndarray


def fit_and_package(data: TrainingSet, slices: TrainingSlices, options: TrainingOptions, *, version: str | None,
                    data_info: dict[str, Any], timings: dict[str, float]) -> TrainedModel:
    """Search, fit, convert to ONNX (refusing a parity gap), calibrate, choose thresholds,
    evaluate against the logistic regression, and build the manifest.

    Shared by the CLI and the retraining function."""
    X, y = data.X, data.y
    log(f"rows: {slices.rows()}; fraud in fit {int(y[slices.fit].sum())}, test {int(y[slices.test].sum())}")
    for name in ("fit", "search", "calibrate", "choose", "test"):
        if y[getattr(slices, name)].sum() == 0:
            raise SystemExit(f"the {name} slice has no fraud rows; widen the windows")
    row_weights = data.weights  # None unless the rows were down-sampled
    fit_rows = slices.fit | slices.search
    fraud_weight = fraud_weight_of(y[fit_rows], options.fraud_weight,
                                   None if row_weights is None else row_weights[fit_rows])
    all_weights = np.where(y == 1, fraud_weight, 1.0) * (1.0 if row_weights is None else row_weights)

    search_started = time.perf_counter()
    params, iterations, trials = search_hyperparameters(data, slices, all_weights, options)
    search_seconds = time.perf_counter() - search_started
    log(f"search: {len(trials)} candidates in {search_seconds:.1f}s; best {params}, {iterations} iterations")

    in_window = fit_rows | slices.calibrate | slices.choose
    fit_started = time.perf_counter()
    model = fit_classifier(X[fit_rows], y[fit_rows], iterations, options.seed, params, all_weights[fit_rows])
    fit_seconds = time.perf_counter() - fit_started
    log(f"fitted on {int(fit_rows.sum())} rows in {fit_seconds:.1f}s")

    onnx_bytes = to_onnx(model)
    raw = np.zeros(y.size, dtype=np.float32)
    in_reference = (data.times >= slices.windows.test_end - REFERENCE_DAYS * DAY) & (data.times < slices.windows.test_end)
    scored = in_window | slices.test | in_reference
    raw[scored] = onnx_probabilities(onnx_bytes, X[scored])
    X_test = X[slices.test]
    parity = float(np.max(np.abs(model.predict_proba(X_test)[:, 1] - raw[slices.test]))) if X_test.size else 0.0
    if parity > ONNX_TOLERANCE:
        raise SystemExit(f"ONNX and scikit-learn probabilities differ by {parity:.2e} > {ONNX_TOLERANCE}")
    log(f"ONNX parity: max |difference| {parity:.2e}")

    calibration = fit_calibration(raw[slices.calibrate], y[slices.calibrate], options.calibration,
                                  None if row_weights is None else row_weights[slices.calibrate])
    calibrated = calibration.apply(raw)
    choice = choose_thresholds(calibrated[slices.choose], y[slices.choose], data.days[slices.choose],
                               review_budget_per_day=options.review_budget_per_day,
                               block_precision=options.block_precision, overrides=options.overrides,
                               sample_weight=None if row_weights is None else row_weights[slices.choose])
    thresholds = choice.thresholds
    log(f"thresholds {thresholds}" + (f"; {'; '.join(choice.notes)}" if choice.notes else ""))

    test_eval = _evaluation(data, slices.test, calibrated[slices.test], thresholds, options)
    choose_eval = _evaluation(data, slices.choose, calibrated[slices.choose], thresholds, options)
    baseline_scores, baseline_eval, baseline_calibration = None, None, None
    if options.baseline:
        baseline = fit_baseline(data, fit_rows, all_weights, options.seed)
        baseline_raw = baseline.predict_proba(X.astype(np.float64))[:, 1]
        baseline_calibration = fit_calibration(baseline_raw[slices.calibrate], y[slices.calibrate], options.calibration)
        baseline_scores = baseline_calibration.apply(baseline_raw[slices.test])
        baseline_eval = _evaluation(data, slices.test, baseline_scores, thresholds, options)
        log(f"test AP: model {test_eval['average_precision']:.3f}, logistic regression "
            f"{baseline_eval['average_precision']:.3f}")

    created = datetime.now(timezone.utc)
    sha = sha256_hex(onnx_bytes)
    version = version or f"{created.strftime('%Y%m%d-%H%M%S')}-{sha[:8]}"
    manifest = {
        "version": version,
        "created_at": created.isoformat(),
        "algorithm": "sklearn.HistGradientBoostingClassifier",
        "hyperparameters": {**params, "max_iter": iterations, "early_stopping": "on the search slice, then refitted",
                            "fraud_weight": fraud_weight,
                            "weighting": ("sample_weight: fraud rows x fraud_weight" if row_weights is None else
                                          "sample_weight: fraud rows x fraud_weight, every row x 1/its keep rate "
                                          "(also in calibration and the threshold choice)"),
                            "search": trials},
        "data": data_info,
        # every row the model, its calibration and its thresholds saw lies in [train_start, train_end);
        # a promotion gate checks that a holdout starts after train_end
        "windows": slices.windows.to_dict(),
        "rows": {"total": int(y.size), **slices.rows(), "train": int(fit_rows.sum()),
                 "train_fraud": int(y[fit_rows].sum()), "test_fraud": int(y[slices.test].sum())},
        "feature_names": list(FEATURE_NAMES),
        "feature_schema_hash": FEATURE_SCHEMA_HASH,
        "unavailable_features": data_info.get("unavailable_features", {}),
        "merchant_label_delay_days": options.label_delay_days,
        "calibration": calibration.to_dict(),
        "thresholds": thresholds,
        "threshold_choice": choice.to_dict(),
        "metrics": {
            "test": test_eval,
            "validation": choose_eval,
            "baseline_test": baseline_eval,
            "baseline": ({"algorithm": "sklearn.LogisticRegression on signed-log standardised features",
                          "calibration": baseline_calibration.method} if baseline_calibration else None),
            "onnx_max_abs_difference": parity,
        },
        "reference": drift_reference(X[in_reference], calibrated[in_reference], thresholds, data.times[in_reference]),
        "timings_seconds": {**timings, "search": search_seconds, "fit": fit_seconds},
        "onnx_sha256": sha,
    }
    return TrainedModel(ModelArtifact(onnx_bytes, manifest), calibrated[slices.test], baseline_scores,
                        raw[slices.test])


REFERENCE_DAYS = 28


def drift_reference(X: np.ndarray, scores: np.ndarray, thresholds: dict[str, float], times: np.ndarray) -> dict[str, Any]:
    """What monitoring compares live traffic with: the newest ``REFERENCE_DAYS`` of the data,
    up to the end of the test window (a month: paydays and month ends included; the newest
    data, past most of the history's warm-up), per feature and for the score, with counts per
    calendar stratum so a day's window can be compared with the same hours and weekdays, and
    each feature's natural day-to-day PSI."""
    strata = calendar_strata(X[:, feature_index("hour_of_day")], X[:, feature_index("is_weekend")])
    days = (np.asarray(times) // DAY).astype(np.int64)
    return {
        "window": f"the newest {REFERENCE_DAYS} days up to the end of the test window",
        "rows": int(scores.size),
        "features": {name: reference_histogram(X[:, i], strata=strata, days=days).to_dict()
                     for i, name in enumerate(FEATURE_NAMES)},
        "score": score_histogram(scores, strata=strata).to_dict(),
        "alert_rate": float(np.mean(scores > thresholds["high"])),
    }


def write_report(folder: Path, manifest: dict[str, Any], plots: Sequence[str]) -> None:
    m = manifest["metrics"]
    results = {"model": m["test"]}
    if m.get("baseline_test"):
        results["logistic_regression"] = m["baseline_test"]
    choice = manifest["threshold_choice"]
    lines = [
        f"# Fraud model {manifest['version']}",
        "",
        f"Created {manifest['created_at']}; feature schema `{manifest['feature_schema_hash']}`; "
        f"rows {manifest['rows']}.",
        "",
        f"Hyperparameters: `{ {k: v for k, v in manifest['hyperparameters'].items() if k != 'search'} }`; "
        f"{len(manifest['hyperparameters']['search'])} search candidates tried.",
        f"Calibration: {manifest['calibration']['method']} ({len(manifest['calibration']['xs'])} breakpoints).",
        "",
        "## Thresholds (chosen on the last validation slice, calibrated scores)",
        "",
        "| threshold | value | source | alerts/day | precision | recall | reason |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, d in choice["details"].items():
        lines.append(f"| {name} | {d['threshold']:.4f} | {d['source']} | {fmt(d.get('alerts_per_day'))} | "
                     f"{fmt(d.get('precision'))} | {fmt(d.get('recall'))} | {d.get('reason', '')} |")
    lines += [f"- {note}" for note in choice.get("notes", [])]
    unavailable = manifest.get("unavailable_features") or {}
    if unavailable:
        lines += ["", "Unavailable (their input column is absent from the data): "
                  + "; ".join(f"{col}: {len(names)} features" for col, names in unavailable.items())]
    lines += ["", render_markdown(results, plots, title="Test window: the model beside a logistic regression", level=2)]
    (folder / "report.md").write_text("\n".join(lines))


def training_set(data: LabelledTransactions, X: np.ndarray) -> TrainingSet:
    incidents = getattr(data, "incidents", None)
    return TrainingSet(X, data.labels, data.times, np.asarray(data.scenarios, dtype=object),
                       np.asarray([t.customer_id for t in data.transactions], dtype=object),
                       np.asarray(incidents, dtype=object) if incidents else None,
                       [t.transaction_id for t in data.transactions])


def options_from_args(args: argparse.Namespace) -> TrainingOptions:
    overrides = {key: getattr(args, f"{key}_threshold") for key in ("high", "medium", "alert")}
    return TrainingOptions(
        max_iter=args.max_iter, seed=args.seed, search_seconds=args.search_seconds,
        search_candidates=args.search_candidates, fraud_weight=args.fraud_weight,
        calibration=args.calibration, review_budget_per_day=args.review_budget_per_day,
        block_precision=args.block_precision, overrides={k: v for k, v in overrides.items() if v is not None},
        top_k=args.top_k, cost_per_alert=args.cost_per_alert, cost_per_block=args.cost_per_block,
        baseline=not args.no_baseline, label_delay_days=args.label_delay_days)


def train(args: argparse.Namespace) -> ModelArtifact:
    started = time.perf_counter()
    log(f"reading {args.data}")
    data: LabelledTransactions = read_labelled_csv(args.data, parse_column_map(args.map), assume_offset=args.utc_offset)
    if len(data) == 0:
        raise SystemExit("no valid rows in the data")
    if data.rejected:
        log(f"skipped invalid rows: {dict(data.rejected)}")
    unavailable = unavailable_features(data.transactions)
    usable = len(FEATURE_NAMES) - len({n for names in unavailable.values() for n in names})
    log(f"features: {usable} of {len(FEATURE_NAMES)} available"
        + (f"; no {', '.join(unavailable)} column, so {len(FEATURE_NAMES) - usable} are unavailable" if unavailable else ""))
    times = data.times
    windows = choose_windows(times, args)
    replay_started = time.perf_counter()
    merchants = None if args.no_merchant_risk else merchant_risk_replay(data, args.label_delay_days)
    with progress_bar(len(data), "replaying transactions") as advance:
        done = [0]

        def step(i: int) -> None:
            advance(i - done[0])
            done[0] = i
        X = replay(data.transactions, progress=step, merchants=merchants)
        advance(len(data) - done[0])
    replay_seconds = time.perf_counter() - replay_started
    log(f"replayed {len(data):,} transactions in {replay_seconds:.1f}s")

    slices = TrainingSlices.of(times, windows)
    options = options_from_args(args)
    data_info = {"source": str(args.data), "windows": windows.describe(), "label_delay_days": args.label_delay_days,
                 "merchant_risk": not args.no_merchant_risk, "skipped_rows": dict(data.rejected),
                 "utc_offset_assumed": args.utc_offset, "unavailable_features": unavailable}
    dataset = training_set(data, X)
    trained = fit_and_package(dataset, slices, options, version=args.version, data_info=data_info,
                              timings={"replay": replay_seconds})
    artifact = trained.artifact
    manifest = artifact.manifest
    manifest["timings_seconds"]["total"] = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(artifact.onnx_bytes)
    curves = {"model": (dataset.y[slices.test], trained.test_scores)}
    if trained.baseline_test_scores is not None:
        curves["logistic_regression"] = (dataset.y[slices.test], trained.baseline_test_scores)
    plots = [] if args.no_plots else write_plots(out, curves)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    write_report(out, manifest, plots)
    if args.scores_out:
        ids = [i for i, keep in zip(dataset.ids or [], slices.test) if keep]
        with open(args.scores_out, "w") as handle:
            handle.write("transaction_id,score\n")
            handle.writelines(f"{i},{s:.6f}\n" for i, s in zip(ids, trained.test_scores))
    log(f"wrote {out}/model.onnx, manifest.json, report.md in {time.perf_counter() - started:.1f}s")
    return artifact


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="CSV with customer_id, merchant_id, transaction_amount, timestamp "
                   "and an is_fraud label at least (the other canonical columns are optional)")
    p.add_argument("--out", required=True, help="artifact folder to write")
    p.add_argument("--map", action="append", default=[], metavar="OLD=NEW", help="rename a CSV column")
    p.add_argument("--utc-offset", "--assume-utc", nargs="?", const="+00:00", default=None, metavar="+HH:MM",
                   help="offset for timestamps written without one (--assume-utc alone means +00:00); "
                        "without it such rows are rejected")
    p.add_argument("--train-start"), p.add_argument("--train-end")
    p.add_argument("--test-start"), p.add_argument("--test-end")
    p.add_argument("--label-delay-days", type=float, default=7.0,
                   help="gap between training and test windows, and the shift of the merchant fraud-rate windows")
    p.add_argument("--max-iter", type=int, default=400, help="upper bound on boosting iterations (early stopping picks)")
    p.add_argument("--search-seconds", type=float, default=60.0, help="time budget of the hyperparameter search")
    p.add_argument("--search-candidates", type=int, default=len(SEARCH_SPACE),
                   help="try at most this many candidates (with --search-seconds: whichever ends first)")
    p.add_argument("--fraud-weight", type=float, help="sample weight of a fraud row (default: class ratio, at most 10)")
    p.add_argument("--calibration", choices=("isotonic", "platt"), default="isotonic")
    p.add_argument("--review-budget-per-day", type=float,
                   help="analyst capacity: alerts a day the review threshold may send (default: twice the daily fraud)")
    p.add_argument("--block-precision", type=float, default=0.9, help="validation precision the block threshold must reach")
    p.add_argument("--top-k", type=int, default=100, help="analyst queue size per day for (card) precision@k")
    p.add_argument("--high-threshold", type=float, help="override: block above this (the seed's 0.8)")
    p.add_argument("--medium-threshold", type=float, help="override: review above this (the seed's 0.5)")
    p.add_argument("--alert-threshold", type=float, help="override: is_fraud above this (the seed's 0.7)")
    p.add_argument("--cost-per-alert", type=float, default=DEFAULT_COST_PER_ALERT, help="cost of one analyst review")
    p.add_argument("--cost-per-block", type=float, default=DEFAULT_COST_PER_BLOCK, help="cost of blocking a legitimate payment")
    p.add_argument("--version", help="model version (default: time + sha)")
    p.add_argument("--scores-out", help="write transaction_id,score (calibrated) for the test rows")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-baseline", action="store_true", help="skip the logistic regression comparison")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    p.add_argument("--no-merchant-risk", action="store_true",
                   help="leave the merchant risk features at 'unknown' (to measure what they add)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    artifact = train(args)
    metrics = artifact.manifest["metrics"]
    summary = {"version": artifact.version}
    for name, key in (("model", "test"), ("logistic_regression", "baseline_test")):
        m = metrics.get(key)
        if m:
            summary[name] = {"roc_auc": m["roc_auc"], "average_precision": m["average_precision"],
                             f"card_precision_top{m['k']}_per_day": m.get(f"card_precision_top{m['k']}_per_day"),
                             "max_band_gap": (m.get("calibration") or {}).get("max_band_gap")}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
