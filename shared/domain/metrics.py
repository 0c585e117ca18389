"""Classification metrics in numpy only (no scikit-learn on the serving side).

Used by training's evaluation and by the timer's live-performance report, so both
report the same numbers the same way. Tests check them against scikit-learn.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _sorted_counts(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true/false positives at each distinct score threshold (descending)."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    y = y_true[order].astype(np.float64)
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[ends]
    fps = (ends + 1) - tps
    return tps, fps, s[ends]


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(y_true.sum())
    negatives = y_true.size - positives
    if positives == 0 or negatives == 0:
        return None
    tps, fps, _ = _sorted_counts(y_true, scores)
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / negatives]
    return float(np.trapezoid(tpr, fpr))


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    y_true = np.asarray(y_true)
    positives = int(y_true.sum())
    if positives == 0:
        return None
    tps, fps, _ = _sorted_counts(y_true, np.asarray(scores, dtype=np.float64))
    precision = tps / (tps + fps)
    recall = tps / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_recall_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    positives = max(int(y_true.sum()), 1)
    tps, fps, thresholds = _sorted_counts(y_true, np.asarray(scores, dtype=np.float64))
    return tps / (tps + fps), tps / positives, thresholds


def recall_at_fpr(y_true: np.ndarray, scores: np.ndarray, max_fpr: float = 0.01) -> float | None:
    y_true = np.asarray(y_true)
    positives = int(y_true.sum())
    negatives = y_true.size - positives
    if positives == 0 or negatives == 0:
        return None
    tps, fps, _ = _sorted_counts(y_true, np.asarray(scores, dtype=np.float64))
    ok = fps / negatives <= max_fpr
    return float(tps[ok].max() / positives) if ok.any() else 0.0


def threshold_report(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Confusion counts and rates for 'score > threshold' = flagged."""
    y = np.asarray(y_true).astype(bool)
    flagged = np.asarray(scores) > threshold
    tp = int(np.sum(flagged & y))
    fp = int(np.sum(flagged & ~y))
    fn = int(np.sum(~flagged & y))
    tn = int(np.sum(~flagged & ~y))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if precision is not None and recall is not None else None)
    return {
        "threshold": threshold,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_positive_rate": fp / (fp + tn) if fp + tn else None,
        "false_negative_rate": fn / (fn + tp) if fn + tp else None,
    }


def top_k_precision_per_day(y_true: np.ndarray, scores: np.ndarray, days: np.ndarray, k: int) -> float | None:
    """Mean over days of the precision of that day's k highest scores (an analyst's daily queue)."""
    y_true = np.asarray(y_true)
    scores = np.asarray(scores)
    days = np.asarray(days)
    if y_true.size == 0:
        return None
    precisions = []
    for day in np.unique(days):
        mask = days == day
        day_scores = scores[mask]
        take = min(k, day_scores.size)
        top = np.argsort(-day_scores, kind="mergesort")[:take]
        precisions.append(float(y_true[mask][top].mean()))
    return float(np.mean(precisions))


def percentiles(values: Sequence[float] | np.ndarray, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float | None]:
    """Linear-interpolation percentiles (numpy's default) as {"p50": …}; None for no values.
    The one implementation: monitoring, the dashboard, make run and the benchmarks use it."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {f"p{int(q)}": None for q in qs}
    return {f"p{int(q)}": float(np.percentile(values, q)) for q in qs}


def summarize(y_true: np.ndarray, scores: np.ndarray, days: np.ndarray, thresholds: dict[str, float], k: int) -> dict[str, Any]:
    """The standard evaluation block used in manifests and monitoring reports."""
    return {
        "rows": int(np.asarray(y_true).size),
        "positives": int(np.asarray(y_true).sum()),
        "roc_auc": roc_auc(y_true, scores),
        "average_precision": average_precision(y_true, scores),
        "recall_at_1pct_fpr": recall_at_fpr(y_true, scores, 0.01),
        f"precision_top{k}_per_day": top_k_precision_per_day(y_true, scores, days, k),
        "at_thresholds": {name: threshold_report(y_true, scores, value) for name, value in thresholds.items()},
    }
