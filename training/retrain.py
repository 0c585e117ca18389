"""Retraining with a champion/challenger gate (run by the blob-triggered function).

1. Training set: the base data files in the ``training-data`` container (replayed through
   the feature engine) plus the labelled decisions of the audit log over the last
   ``FRAUD_RETRAIN_LOOKBACK_DAYS``, with their feature vectors *as served* (point-in-time
   correct: no recomputation skew). Capped at ``FRAUD_RETRAIN_MAX_ROWS``: every fraud row
   is kept and legitimate rows are sampled to fit a Function instance's memory and time.
2. Time-ordered split: the most recent 20% is the holdout both models are judged on.
3. The challenger is fitted, converted to ONNX (parity checked) and evaluated; the
   serving champion scores the same holdout rows.
4. Promotion only if average precision improves by ``FRAUD_PROMOTION_MIN_AP_GAIN`` and
   recall at the alert threshold does not fall (or there is no compatible champion). The
   candidate is published either way, its manifest recording the decision; promotion
   moves the ``current`` pointer with the ETag read at the start, so of two concurrent
   retrains only one can win.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
import resource
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from shared.domain.decision_record import unpack_features
from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH, replay
from shared.domain.model import ModelRejected, load_model
from shared.domain.promotion import PromotionGate
from shared.service.model_release import release
from training.dataset import merchant_risk_replay, read_labelled_csv
from training.train import TrainingOptions, TrainingSet, TrainingSlices, fit_and_package

log = logging.getLogger("fraud.retrain")


@dataclass(frozen=True)
class RetrainConfig:
    max_rows: int = 300_000
    lookback_days: float = 30.0
    min_ap_gain: float = 0.005
    label_delay_days: float = 7.0
    max_iter: int = 300
    search_seconds: float = 60.0
    search_candidates: int = 3
    holdout_share: float = 0.2


def _base_rows(blob_service: Any, container: str, config: RetrainConfig):
    """Feature rows from the base data files, replayed in time order."""
    client = blob_service.get_container_client(container)
    names = sorted(b.name for b in client.list_blobs() if b.name.endswith(".csv"))
    Xs, ys, ts, scenarios = [], [], [], []
    for name in names:
        with tempfile.NamedTemporaryFile(suffix=".csv") as handle:
            handle.write(client.download_blob(name).readall())
            handle.flush()
            data = read_labelled_csv(handle.name)
        if len(data) == 0:
            continue
        Xs.append(replay(data.transactions, merchants=merchant_risk_replay(data, config.label_delay_days)))
        ys.append(data.labels.astype(np.int8))
        ts.append(data.times)
        scenarios.append(np.asarray(data.scenarios))
    return names, Xs, ys, ts, scenarios


def _served_rows(audit: Any, now: datetime, config: RetrainConfig):
    """Labelled decisions with the feature vectors exactly as they were served."""
    X, y, t = [], [], []
    start = now - timedelta(days=config.lookback_days)
    for row in audit.read(start, now, select=["features", "label", "event_time"]):
        label = row.get("label")
        if label in (None, ""):
            continue
        vector = unpack_features(row["features"])
        if len(vector) != len(FEATURE_NAMES):
            continue  # served under another feature schema
        X.append(vector)
        y.append(int(label))
        t.append(row["event_time"].timestamp())
    return (np.asarray(X, dtype=np.float32).reshape(-1, len(FEATURE_NAMES)), np.asarray(y, dtype=np.int8),
            np.asarray(t, dtype=np.float64))


def cap_rows(y: np.ndarray, times: np.ndarray, max_rows: int, seed: int = 0) -> np.ndarray:
    """Indices to keep: all fraud, then legitimate rows sampled (newest preferred is not
    used, to keep the legitimate distribution unbiased), in time order."""
    if y.size <= max_rows:
        return np.argsort(times, kind="mergesort")
    fraud = np.flatnonzero(y == 1)
    legit = np.flatnonzero(y == 0)
    room = max(max_rows - fraud.size, 0)
    picked = np.random.default_rng(seed).choice(legit, size=min(room, legit.size), replace=False)
    keep = np.r_[fraud, picked]
    return keep[np.argsort(times[keep], kind="mergesort")]


def retrain(registry: Any, blob_service: Any, audit: Any, trigger: str, config: RetrainConfig = RetrainConfig(),
            now: datetime | None = None, training_container: str = "training-data") -> dict[str, Any]:
    """Fit a challenger on base data + labelled served decisions; promote it if it beats the champion.

    ``registry`` is the model registry, ``blob_service`` reads the base training files,
    ``audit`` supplies the labelled served decisions."""
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    pointer = registry.current()  # the champion we judge against, and the ETag promotion needs

    names, Xs, ys, ts, scenarios = _base_rows(blob_service, training_container, config)
    X_served, y_served, t_served = _served_rows(audit, now, config)
    X = np.vstack(Xs + [X_served]) if Xs or X_served.size else np.zeros((0, len(FEATURE_NAMES)), np.float32)
    y = np.concatenate(ys + [y_served]) if ys or y_served.size else np.zeros(0, np.int8)
    times = np.concatenate(ts + [t_served]) if ts or t_served.size else np.zeros(0)
    scen = np.concatenate(scenarios + [np.full(y_served.size, "", dtype=object)]) if y.size else np.zeros(0, dtype=object)
    rows_before_cap = int(y.size)
    keep = cap_rows(y, times, config.max_rows)
    X, y, times, scen = X[keep], y[keep], times[keep], np.asarray(scen)[keep]
    if y.size == 0 or y.sum() == 0:
        return {"trigger": trigger, "outcome": "skipped", "reason": "no labelled fraud to learn from"}

    holdout_from = np.quantile(times, 1 - config.holdout_share)
    in_test = times >= holdout_from
    slices = TrainingSlices.of(times, ~in_test, in_test)
    data_info = {"source": f"retrain ({trigger})", "base_files": names, "served_labelled_rows": int(y_served.size),
                 "rows_before_cap": rows_before_cap, "max_rows": config.max_rows,
                 "holdout_from": datetime.fromtimestamp(float(holdout_from), timezone.utc).isoformat()}
    champion = None
    if pointer.version:
        try:
            champion = load_model(registry.load(pointer.version))
        except ModelRejected as exc:
            log.warning("champion %s cannot score this feature schema: %s", pointer.version, exc)
    options = TrainingOptions(max_iter=config.max_iter, search_seconds=config.search_seconds,
                              search_candidates=config.search_candidates, baseline=False,
                              label_delay_days=config.label_delay_days, top_k=20)
    trained = fit_and_package(TrainingSet(X, y, times, np.asarray(scen, dtype=object)), slices, options,
                              version=None, data_info=data_info, timings={})
    artifact, challenger_scores = trained.artifact, trained.test_scores
    thresholds = champion.thresholds if champion is not None else artifact.manifest["thresholds"]
    y_test = y[in_test]
    gate = PromotionGate(config.min_ap_gain).judge(
        y_test, challenger_scores, champion.predict(X[in_test]) if champion is not None else None,
        thresholds["alert"], champion.version if champion is not None else None)
    # the process's peak resident memory (tracemalloc would tell Python's share only, and slows
    # every allocation several times over: a replay took 8x as long under it)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    decision = {"trigger": trigger, "decided_at": now.isoformat(), "holdout_rows": int(in_test.sum()),
                "holdout_fraud": int(y_test.sum()), **gate, "seconds": round(time.perf_counter() - started, 2),
                "peak_rss_mb": round(peak_mb, 1), "rows": int(y.size)}
    outcome = release(registry, artifact, pointer, decision)  # the manifest records why, promoted or not
    log.info(json.dumps({"event": "retrain", "version": artifact.version, "outcome": outcome, **decision}))
    return {"version": artifact.version, "outcome": outcome, **decision, "feature_schema_hash": FEATURE_SCHEMA_HASH}

