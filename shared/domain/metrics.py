"""Classification metrics in numpy only (no scikit-learn on the serving side).

Used by training's evaluation and by the timer's live-performance report, so both
report the same numbers the same way. Tests check them against scikit-learn.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np


def _sorted_counts(y_true: np.ndarray, scores: np.ndarray,
                   sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true/false positives (weighted counts when ``sample_weight`` is given) at each
    distinct score threshold (descending)."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    y = y_true[order].astype(np.float64)
    distinct = np.where(np.diff(s))[0]
    ends = np.r_[distinct, y.size - 1]
    if sample_weight is None:
        tps = np.cumsum(y)[ends]
        return tps, (ends + 1) - tps, s[ends]
    w = np.asarray(sample_weight, dtype=np.float64)[order]
    tps = np.cumsum(y * w)[ends]
    return tps, np.cumsum(w)[ends] - tps, s[ends]


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


def average_precision(y_true: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None) -> float | None:
    """Average precision; with ``sample_weight``, of the population the weighted rows stand for."""
    y_true = np.asarray(y_true)
    if int(y_true.sum()) == 0:
        return None
    positives = float(y_true.sum()) if sample_weight is None else float(np.sum(np.asarray(sample_weight) * y_true))
    tps, fps, _ = _sorted_counts(y_true, np.asarray(scores, dtype=np.float64), sample_weight)
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


def threshold_report(y_true: np.ndarray, scores: np.ndarray, threshold: float,
                     sample_weight: np.ndarray | None = None) -> dict[str, Any]:
    """Confusion counts and rates for 'score > threshold' = flagged (weighted counts, floats,
    when ``sample_weight`` is given)."""
    y = np.asarray(y_true).astype(bool)
    flagged = np.asarray(scores) > threshold
    if sample_weight is None:
        tp, fp = int(np.sum(flagged & y)), int(np.sum(flagged & ~y))
        fn, tn = int(np.sum(~flagged & y)), int(np.sum(~flagged & ~y))
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        tp, fp = float(w[flagged & y].sum()), float(w[flagged & ~y].sum())
        fn, tn = float(w[~flagged & y].sum()), float(w[~flagged & ~y].sum())
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


@dataclass(frozen=True)
class CardPrecisionDay:
    """One day of card precision@k: the customers ranked, the compromised ones among the top k."""

    day: float
    customers: int  # customers with a transaction that day
    excluded: int  # of those, already known compromised (removed before ranking)
    ranked: int  # customers left to rank
    taken: int  # min(k, ranked)
    compromised: int  # ranked customers with a fraud transaction that day
    compromised_in_top_k: int
    precision: float | None  # compromised_in_top_k / taken; None when no customer is left

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "customers": self.customers, "excluded": self.excluded, "ranked": self.ranked,
                "taken": self.taken, "compromised": self.compromised, "compromised_in_top_k": self.compromised_in_top_k,
                "precision": self.precision}


@dataclass(frozen=True)
class CardPrecisionAtK:
    k: int
    mean: float | None  # mean of the per-day precisions over the days with a customer left to rank
    per_day: tuple[CardPrecisionDay, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "mean": self.mean, "days": len(self.per_day),
                "days_scored": sum(d.precision is not None for d in self.per_day),
                "per_day": [d.to_dict() for d in self.per_day]}


CARD_EXCLUSIONS = ("fraud", "detected", "none")


def card_precision_at_k(customers: Sequence[Any] | np.ndarray, days: np.ndarray, scores: np.ndarray, y_true: np.ndarray,
                        k: int, known_compromised: Any = None, *, exclude: str = "fraud") -> CardPrecisionAtK:
    """Card precision@k per day (Le Borgne et al., *Reproducible Machine Learning for Credit Card
    Fraud Detection*), with the per-day detail.

    Each day: a customer's score is their highest transaction score that day; customers already
    known compromised are removed; the rest are ranked by score and the top k taken; precision =
    share of the taken customers with at least one fraud transaction that day. The mean is over
    the days with at least one customer left (days with none are skipped).

    Removed as already compromised on day d:
      - ``exclude="fraud"`` (default): customers with a fraud transaction on a day before d within
        the evaluated data (the fraud was found earlier);
        ``exclude="detected"``: only those that were in an earlier day's top k with a fraud
        transaction that day (the handbook's code: cards the queue itself caught);
        ``exclude="none"``: no removal from the data itself;
      - and ``known_compromised``: a set (or other iterable) of customer ids, removed on every
        day, or a mapping customer -> day (same unit as ``days``) from which it is known,
        removed on days >= that day.

    Ties in score are broken by customer id (ascending), so the result is deterministic. When
    fewer than k customers are left, precision is over the ones there are (as in
    ``top_k_precision_per_day``), not divided by k.
    """
    if exclude not in CARD_EXCLUSIONS:
        raise ValueError(f"exclude must be one of {CARD_EXCLUSIONS}, got {exclude!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    customers = np.asarray(customers)
    days = np.asarray(days)
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y_true).astype(bool)
    if not (customers.shape == days.shape == scores.shape == y.shape) or customers.ndim != 1:
        raise ValueError("customers, days, scores and y_true must be 1-d arrays of the same length")
    if customers.size == 0:
        return CardPrecisionAtK(k, None, ())
    ids, codes = np.unique(customers, return_inverse=True)
    n_customers = ids.size
    # the day from which each customer counts as compromised (+inf: never)
    known_from = np.full(n_customers, np.inf)
    if known_compromised is not None:
        position = {key: i for i, key in enumerate(ids.tolist())}
        if isinstance(known_compromised, Mapping):
            for customer, since in known_compromised.items():
                i = position.get(customer)
                if i is not None:
                    known_from[i] = min(known_from[i], float(since))
        else:
            for customer in known_compromised:
                i = position.get(customer)
                if i is not None:
                    known_from[i] = -np.inf
    # "fraud": compromised from the day after its first fraud day (removed on later days only)
    first_fraud_day = np.full(n_customers, np.inf)
    if exclude == "fraud" and y.any():
        np.minimum.at(first_fraud_day, codes[y], days[y].astype(np.float64))
    detected_on = np.full(n_customers, np.inf)  # "detected": first day caught in the top k

    per_day = []
    for day in np.unique(days):
        d = float(day)
        mask = days == day
        day_codes, inverse = np.unique(codes[mask], return_inverse=True)
        best = np.full(day_codes.size, -np.inf)
        np.maximum.at(best, inverse, scores[mask])
        fraud = np.bincount(inverse, weights=y[mask].astype(np.float64), minlength=day_codes.size) > 0
        out = (known_from[day_codes] <= d) | (first_fraud_day[day_codes] < d) | (detected_on[day_codes] < d)
        keep = ~out
        left_codes, left_best, left_fraud = day_codes[keep], best[keep], fraud[keep]
        taken = min(k, left_codes.size)
        top = np.argsort(-left_best, kind="mergesort")[:taken]  # day_codes ascend = customer id order
        hits = int(left_fraud[top].sum())
        if exclude == "detected":
            caught = left_codes[top][left_fraud[top]]
            detected_on[caught] = np.minimum(detected_on[caught], d)
        per_day.append(CardPrecisionDay(
            day=d, customers=int(day_codes.size), excluded=int(out.sum()), ranked=int(left_codes.size), taken=taken,
            compromised=int(left_fraud.sum()), compromised_in_top_k=hits, precision=(hits / taken) if taken else None))
    scored = [p.precision for p in per_day if p.precision is not None]
    return CardPrecisionAtK(k, float(np.mean(scored)) if scored else None, tuple(per_day))


def card_precision_at_k_per_day(customers: Sequence[Any] | np.ndarray, days: np.ndarray, scores: np.ndarray,
                                y_true: np.ndarray, k: int, known_compromised: Any = None, *,
                                exclude: str = "fraud") -> float | None:
    """The mean over days of card precision@k (see ``card_precision_at_k`` for the definition and
    the per-day detail); None when no day has a customer to rank."""
    return card_precision_at_k(customers, days, scores, y_true, k, known_compromised, exclude=exclude).mean


def reliability_bins(y_true: np.ndarray, scores: np.ndarray, bins: int = 10,
                     sample_weight: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The reliability table: equal-width bins on [0, 1], ``[i/bins, (i+1)/bins)`` (the last one
    closed), each with its rows, mean score, observed fraud rate and their gap (rows, means and
    rates weighted when ``sample_weight`` is given)."""
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, bins - 1)
    table = []
    for i in range(bins):
        mask = index == i
        rows = int(mask.sum()) if sample_weight is None else float(w[mask].sum())
        mean_score = float(np.average(s[mask], weights=w[mask])) if rows else None
        rate = float(np.average(y[mask], weights=w[mask])) if rows else None
        table.append({"lower": float(edges[i]), "upper": float(edges[i + 1]), "rows": rows, "mean_score": mean_score,
                      "observed_rate": rate, "gap": abs(mean_score - rate) if rows else None})
    return table


def expected_calibration_error(y_true: np.ndarray, scores: np.ndarray, bins: int = 10,
                               sample_weight: np.ndarray | None = None) -> float | None:
    """ECE: the gap between mean score and observed fraud rate in each of ``reliability_bins``,
    weighted by the bin's share of the rows; None for no rows. With most fraud scores near 0
    it is small for any model: compare two models' ECE on the same rows, not against 0."""
    table = reliability_bins(y_true, scores, bins, sample_weight)
    n = sum(b["rows"] for b in table)
    return float(sum(b["rows"] / n * b["gap"] for b in table if b["rows"])) if n else None


def percentiles(values: Sequence[float] | np.ndarray, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float | None]:
    """Linear-interpolation percentiles (numpy's default) as {"p50": …}; None for no values.
    The one implementation: monitoring, the dashboard, make run and the benchmarks use it."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {f"p{int(q)}": None for q in qs}
    return {f"p{int(q)}": float(np.percentile(values, q)) for q in qs}


def summarize(y_true: np.ndarray, scores: np.ndarray, days: np.ndarray, thresholds: dict[str, float], k: int,
              customers: Sequence[Any] | np.ndarray | None = None, known_compromised: Any = None) -> dict[str, Any]:
    """The standard evaluation block used in manifests and monitoring reports.

    ``card_precision_top{k}_per_day`` needs the customer of each row; it is None without them.
    """
    return {
        "rows": int(np.asarray(y_true).size),
        "positives": int(np.asarray(y_true).sum()),
        "roc_auc": roc_auc(y_true, scores),
        "average_precision": average_precision(y_true, scores),
        "recall_at_1pct_fpr": recall_at_fpr(y_true, scores, 0.01),
        f"precision_top{k}_per_day": top_k_precision_per_day(y_true, scores, days, k),
        f"card_precision_top{k}_per_day": (None if customers is None else
                                           card_precision_at_k_per_day(customers, days, scores, y_true, k, known_compromised)),
        "at_thresholds": {name: threshold_report(y_true, scores, value) for name, value in thresholds.items()},
    }

