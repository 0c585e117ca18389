"""Retraining with an unbiased champion/challenger gate (run by the blob-triggered function).

1. Rows: the base data files in the ``training-data`` container (replayed through the feature
   engine, labels as the files give them) plus the training sample's decisions of the last
   ``FRAUD_RETRAIN_LOOKBACK_DAYS`` with their feature vectors *as served* (point-in-time
   correct), streamed from its hourly blobs by ``training.sample_reader`` into a buffer of at
   most ``FRAUD_RETRAIN_MAX_ROWS`` rows (a hash threshold tightens when it would overflow), so
   memory stays bounded whatever the traffic. A sampled decision enters once its outcome is
   known: older than ``FRAUD_LABEL_MATURITY_DAYS`` at the retrain's time, with its label (the
   sample's labels stream), or legitimate when still unlabelled. Fresher decisions are left
   out, labelled or not: their labels are mostly the champion's own alerts, investigated
   first, while the fraud it missed is not labelled yet, so they would flatter the model that
   raised them. Each sampled row weighs 1 / the probability it is among the rows kept (every
   labelled fraud is in the sample: weight 1; a legitimate or unlabelled row 1 / (its
   sampling rate x the reader's further keep rate)), so the weighted rows are the traffic's.
2. Split by time (``split_for_promotion``):

   * holdout: the newest ``holdout_share`` of the rows, moved later when needed so that it
     starts at or after the champion's training end (its manifest's ``windows``; a manifest
     without them: its ``created_at``; neither: the gate refuses promotion; see
     ``shared.domain.promotion.champion_training_end``).
     Never down-sampled by the split; its sampled rows carry their sample weights, and the gate
     weighs each holdout row by them, so its figures are the traffic's (uncapped when the
     lookback's sample fits the reader's buffer; thinned by the same hash threshold otherwise).
   * training: every row more than ``FRAUD_LABEL_DELAY_DAYS`` before the holdout starts. Fit,
     hyperparameter search, calibration and the threshold choice all happen there; the rows in
     the gap between are unused.
   * the row cap ``FRAUD_RETRAIN_MAX_ROWS`` applies to the training rows only: every fraud row
     is kept, legitimate rows are sampled uniformly, and each kept legitimate row weighs
     1 / keep rate in the fit, the calibration and the threshold choice (``TrainingSet.weights``),
     so the challenger's probabilities and alert volumes are those of the full data.

3. The challenger is fitted by ``training.train.fit_and_package`` (ONNX, parity checked,
   calibrated, thresholds chosen; its manifest records its ``windows``); it and the serving
   champion score the holdout.
4. ``shared.domain.promotion.PromotionGate`` judges them, each at its own thresholds, on
   average precision, card precision@k per day, ECE and review alerts per day. Promotion needs
   an AP gain of ``FRAUD_PROMOTION_MIN_AP_GAIN`` with card precision@k not lower, ECE at most
   ``FRAUD_PROMOTION_MAX_ECE_INCREASE`` worse, review alerts per day within the analysts'
   capacity ``FRAUD_PROMOTION_MAX_ALERTS_PER_DAY`` when set, else within
   ``FRAUD_PROMOTION_MAX_ALERT_RATIO`` x the champion's, and the holdout placed as above. Without a compatible champion the challenger is promoted when its holdout is valid
   and within the capacity.

The candidate is published either way: its manifest's ``promotion`` holds every figure of both
models, every check and why it was or was not promoted; ``data`` holds the sample's counts (read, kept, thresholds)
and the split. Promotion moves the ``current`` pointer with the ETag read at the start, so of
two concurrent retrains only one can win.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
import resource
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from shared.config import FraudConfig
from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH, replay
from shared.domain.model import FraudModel, ModelRejected, load_model
from shared.domain.promotion import (
    DAY, Contender, Holdout, HoldoutPlacement, PromotionGate, TimeWindows, champion_training_end, iso,
)
from shared.service.model_release import release
from training.dataset import merchant_risk_replay, read_labelled_csv
from training.sample_reader import read_sample
from training.train import TrainingOptions, TrainingSet, TrainingSlices, fit_and_package, training_set

log = logging.getLogger("fraud.retrain")


@dataclass(frozen=True)
class RetrainConfig:
    max_rows: int = 300_000  # training rows after the split; the holdout is never capped
    lookback_days: float = 30.0
    label_delay_days: float = 7.0
    label_maturity_days: float | None = None  # None: the label delay
    max_iter: int = 300
    search_seconds: float = 60.0
    search_candidates: int = 3
    holdout_share: float = 0.2
    gate: PromotionGate = field(default_factory=lambda: PromotionGate(k=20))  # its k is training's top_k too
    training_max_age_days: float = 730.0  # base rows older than this before the retrain are refused
    auto_promote: bool = False  # True: a challenger the gate passes is signed and promoted; else a candidate

    @property
    def maturity_days(self) -> float:
        return self.label_delay_days if self.label_maturity_days is None else self.label_maturity_days

    @classmethod
    def from_settings(cls, settings: FraudConfig, gate: PromotionGate) -> "RetrainConfig":
        return cls(max_rows=settings.retrain_max_rows, lookback_days=settings.retrain_lookback_days,
                   label_delay_days=settings.label_delay_days, label_maturity_days=settings.label_maturity_days,
                   search_candidates=settings.retrain_search_candidates, gate=gate,
                   training_max_age_days=settings.training_max_age_days, auto_promote=settings.auto_promote)


def _base_rows(blob_service: Any, container: str, config: RetrainConfig,
               now: datetime | None = None) -> tuple[list[str], list[TrainingSet], dict[str, int]]:
    """Feature rows from the base data files, replayed in time order; rows dated after ``now`` or
    more than ``training_max_age_days`` before it are refused (counted in the third value, by field)."""
    client = blob_service.get_container_client(container)
    names = sorted(b.name for b in client.list_blobs() if b.name.endswith(".csv"))
    parts = []
    refused: dict[str, int] = {}
    for name in names:
        with tempfile.NamedTemporaryFile(suffix=".csv") as handle:
            handle.write(client.download_blob(name).readall())
            handle.flush()
            oldest = None if now is None else now - timedelta(days=config.training_max_age_days)
            data = read_labelled_csv(handle.name, now=now, oldest=oldest)
        for field_name, count in data.rejected.items():
            refused[field_name] = refused.get(field_name, 0) + count
        if len(data) == 0:
            continue
        X = replay(data.transactions, merchants=merchant_risk_replay(data, config.label_delay_days))
        parts.append(training_set(data, X))
    return names, parts, refused


def _sample_rows(sample: Any, now: datetime, config: RetrainConfig) -> tuple[TrainingSet, dict[str, Any]]:
    """The lookback's sampled decisions whose outcome is known, bounded and weighted, with what
    was read, kept and left out (see the module docstring)."""
    matured_before = now - timedelta(days=config.maturity_days)
    rows, counts = read_sample(sample, now - timedelta(days=config.lookback_days), matured_before, config.max_rows)
    return rows, {**counts, "maturity_days": config.maturity_days}


def sample_legitimate(y: np.ndarray, max_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Positions of ``y`` to keep within ``max_rows`` (in their order), each kept row's sample
    weight, and the legitimate keep rate: every fraud row kept (weight 1), legitimate rows
    sampled uniformly (not the newest: that would bias their distribution), each weighing
    1 / keep rate, so weighted counts are the full rows' counts."""
    if y.size <= max_rows:
        return np.arange(y.size), np.ones(y.size), 1.0
    fraud, legit = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    take = min(max(max_rows - fraud.size, 0), legit.size)
    rate = take / legit.size if legit.size else 1.0
    keep = np.sort(np.r_[fraud, np.random.default_rng(seed).choice(legit, size=take, replace=False)])
    return keep, np.where(y[keep] == 1, 1.0, 1.0 / rate if rate else 1.0), rate


class NothingToJudge(Exception):
    """The rows allow no honest comparison (no holdout after the champion, no training rows, no fraud)."""


@dataclass(frozen=True)
class PromotionSplit:
    windows: TimeWindows  # the challenger's: training [first row, holdout start - label delay); test: the holdout
    rows: np.ndarray  # positions kept, in time order: the (capped) training rows, then every holdout row
    weights: np.ndarray  # per kept row: 1 / keep rate for sampled legitimate training rows, else 1
    summary: dict[str, Any]


def split_for_promotion(y: np.ndarray, times: np.ndarray, champion_end: float | None, config: RetrainConfig,
                        seed: int = 0, decisions: np.ndarray | None = None) -> PromotionSplit:
    """Holdout, label-delay gap and (capped, weighted) training rows of time-ordered rows; see
    the module docstring. Raises NothingToJudge when the rows allow no honest comparison.

    ``decisions`` marks the rows that are the app's own decisions (the training sample). When
    any is marked, the holdout is chosen from them alone: it starts at their newest share (by
    time) and holds only them, so no dropped file's dates or rows can pick or fill the test set;
    base rows from the training end on are unused. Without decisions (a first retrain before the
    app has decided anything) every row counts, as the summary's ``holdout_from`` says."""
    if times.size == 0:
        raise NothingToJudge("no rows to train or judge on")
    if np.any(np.diff(times) < 0):
        raise ValueError("rows must be in time order")
    judged = np.ones(times.size, bool) if decisions is None or not decisions.any() else decisions.astype(bool)
    judged_times = times[judged]
    newest_share_start = float(np.quantile(judged_times, 1 - config.holdout_share))
    holdout_start = newest_share_start if champion_end is None else max(newest_share_start, champion_end)
    holdout_end = float(judged_times[-1]) + 1.0  # exclusive: one second after the newest judged row
    if holdout_start >= holdout_end:
        raise NothingToJudge(f"no matured rows after the champion's training end ({iso(holdout_start)}): "
                             "nothing it has not learned from to judge it on")
    train_end = holdout_start - config.label_delay_days * DAY
    training = np.flatnonzero(times < train_end)
    holdout = np.flatnonzero((times >= holdout_start) & judged)
    if not y[training].any():
        raise NothingToJudge(f"no fraud in the rows more than {config.label_delay_days:g} days before the holdout "
                             f"({iso(holdout_start)})")
    if not y[holdout].any():
        raise NothingToJudge(f"no fraud in the holdout from {iso(holdout_start)}")
    keep, weights, rate = sample_legitimate(y[training], config.max_rows, seed)
    windows = TimeWindows(float(times[0]), train_end, holdout_start, holdout_end)
    summary = {"holdout_share": config.holdout_share, "label_delay_days": config.label_delay_days,
               "holdout_moved_to_champion_training_end": holdout_start > newest_share_start,
               "training_rows_before_cap": int(training.size), "training_rows": int(keep.size),
               "training_fraud": int(y[training].sum()), "max_rows": config.max_rows,
               "legitimate_keep_rate": rate, "legitimate_weight": 1.0 / rate if rate else 1.0,
               "gap_rows_unused": int(times.size - training.size - holdout.size),
               "holdout_rows": int(holdout.size), "holdout_fraud": int(y[holdout].sum()),
               "holdout_base_rate": float(y[holdout].mean()), "holdout_down_sampled": False,
               "holdout_from": "all rows (no decisions of the app yet)" if judged.all() else "the app's decisions"}
    return PromotionSplit(windows, np.r_[training[keep], holdout], np.r_[weights, np.ones(holdout.size)], summary)


def _champion(registry: Any, version: str | None) -> FraudModel | None:
    if not version:
        return None
    try:
        return load_model(registry.load(version))
    except ModelRejected as exc:
        log.warning("champion %s cannot score this feature schema: %s", version, exc)
        return None


def retrain(registry: Any, blob_service: Any, sample: Any, trigger: str, config: RetrainConfig = RetrainConfig(),
            now: datetime | None = None, training_container: str = "training-data", signer: Any = None) -> dict[str, Any]:
    """Fit a challenger on base data + matured sampled decisions; when it beats the champion on
    a holdout neither has learned from it becomes a candidate, or (``config.auto_promote``, with
    the release key's ``signer``) is signed and promoted.

    ``registry`` is the model registry, ``blob_service`` reads the base training files,
    ``sample`` is the training sample's store (``TrainingSampleStorePort``)."""
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    pointer = registry.current()  # the champion we judge against, and the ETag promotion needs
    champion = _champion(registry, pointer.version)

    names, base, refused = _base_rows(blob_service, training_container, config, now)
    if refused:
        log.warning(json.dumps({"event": "retrain_rows_refused", "by_field": refused}))
    served, served_counts = _sample_rows(sample, now, config)
    rows = TrainingSet.concat(base + [served])
    # which rows are the app's decisions, in concat's (stable, by time) order
    sources = np.concatenate([np.zeros(p.times.size, bool) for p in base] + [np.ones(served.times.size, bool)])
    decisions = sources[np.argsort(np.concatenate([p.times for p in base + [served]]), kind="mergesort")]
    champion_end, champion_end_source = (champion_training_end(champion.manifest) if champion is not None
                                         else (None, "no compatible champion"))
    try:
        split = split_for_promotion(rows.y, rows.times, champion_end, config, decisions=decisions)
        sampled = np.ones(split.rows.size) if rows.weights is None else rows.weights[split.rows]
        data = rows.take(split.rows, split.weights * sampled)
        slices = TrainingSlices.of(data.times, split.windows)
        data_info = {"source": f"retrain ({trigger})", "base_files": names, "base_rows_refused": refused,
                     "sample": served_counts,
                     "split": {**split.summary, "holdout_sample_weighted": rows.weights is not None}}
        options = TrainingOptions(max_iter=config.max_iter, search_seconds=config.search_seconds,
                                  search_candidates=config.search_candidates, baseline=False,
                                  label_delay_days=config.label_delay_days, top_k=config.gate.k)
        trained = fit_and_package(data, slices, options, version=None, data_info=data_info, timings={})
    except (NothingToJudge, SystemExit) as exc:  # SystemExit: training's refusal (a slice without fraud, ...)
        log.warning(json.dumps({"event": "retrain_skipped", "trigger": trigger, "reason": str(exc)}))
        return {"trigger": trigger, "outcome": "skipped", "reason": str(exc), "sample": served_counts}
    artifact = trained.artifact
    in_holdout = slices.test
    holdout = Holdout(data.y[in_holdout], data.days[in_holdout], data.customers[in_holdout],
                      None if data.weights is None else data.weights[in_holdout])
    challenger = Contender(artifact.version, trained.test_scores, artifact.manifest["thresholds"])
    incumbent = (Contender(champion.version, champion.predict(data.X[in_holdout]), champion.thresholds)
                 if champion is not None else None)
    placement = HoldoutPlacement(split.windows.test_start, split.windows.test_end, split.windows.train_end,
                                 champion_end, champion_end_source, config.label_delay_days)
    gate = config.gate.judge(holdout, challenger, incumbent, placement)
    # the process's peak resident memory (tracemalloc would tell Python's share only, and slows
    # every allocation several times over: a replay took 8x as long under it)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    decision = {"trigger": trigger, "decided_at": now.isoformat(), **gate,
                "seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": round(peak_mb, 1),
                "rows": int(data.y.size)}
    # the manifest records why, promoted or not; a passing challenger waits for approval unless auto-promotion
    outcome = release(registry, artifact, pointer, decision, signer=signer, auto_promote=config.auto_promote)
    log.info(json.dumps({"event": "retrain", "version": artifact.version, "outcome": outcome,
                         "promoted": decision["promoted"], "reason": decision["reason"]}))
    return {"version": artifact.version, "outcome": outcome, **decision, "feature_schema_hash": FEATURE_SCHEMA_HASH}
