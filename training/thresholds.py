"""Choose the decision thresholds from data: calibrated validation scores, labels, days.

Conventions (the serving side's, ``shared.domain.decision.Thresholds``): a row is flagged
by a threshold t when ``score > t``; ``medium`` sends rows to review, ``high`` blocks,
``alert`` sets ``is_fraud``; 0 <= medium <= high <= 1.

- review (``medium``): the lowest t whose expected reviews per day, #(score > t) / days,
  stay within ``review_budget_per_day`` (the analysts' capacity). Only the distinct score
  values matter: lowering t to the next lower distinct score would exceed the budget.
  With no budget given: twice the validation's fraud rows per day
  (``DEFAULT_REVIEW_FRAUD_MULTIPLE``), and at least ``DEFAULT_REVIEW_SHARE_FLOOR`` (0.5%)
  of its rows per day. A queue twice the day's fraud can hold all of it at 50% precision,
  it scales with the data instead of assuming one bank's team size, and the floor keeps a
  queue when the slice has little fraud. Pass the real capacity when it is known.
- block (``high``): the lowest t at which the precision of ``score > t`` reaches
  ``block_precision`` with at least ``min_block_support`` fraud rows flagged (fewer
  would make the precision a guess). If no t reaches it, high = 1.0: nothing is
  auto-blocked (a note says so). Never below the review threshold.
- alert (``is_fraud``): the review threshold. Anything an analyst should look at is
  flagged as fraud, so the alert queue is the review queue and the budget bounds both.
- explicit overrides (``{"medium": 0.5, "high": 0.8, "alert": 0.7}``, e.g. the seed's
  constants from ``--medium-threshold`` ...) win and are marked ``"source": "override"``.
  A chosen value is moved to keep medium <= high next to an override (with a note);
  overrides that break the invariant themselves are a ValueError.

``days`` is each validation row's day (e.g. ``floor(epoch_seconds / 86400)``, as
``training.train`` computes it); the number of days is the number of distinct days,
unless the caller passes ``n_days`` (e.g. elapsed validation time in days, when the
slice starts or ends mid-day).

``sample_weight`` (optional, one per row) undoes a down-sampling: a retrain that keeps one
legitimate row in ten weighs each kept one 10, so every count above (reviews per day,
flagged fraud, precision, the default budget) is the count the full data would give.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

DEFAULT_REVIEW_FRAUD_MULTIPLE = 2.0
DEFAULT_REVIEW_SHARE_FLOOR = 0.005
DEFAULT_BLOCK_PRECISION = 0.9
DEFAULT_MIN_BLOCK_SUPPORT = 20
NAMES = ("medium", "high", "alert")


@dataclass
class ThresholdChoice:
    thresholds: dict[str, float]  # {"high", "medium", "alert"}: what the manifest's "thresholds" holds
    details: dict[str, dict[str, Any]]  # per threshold: source, reason, alerts_per_day, precision, recall, ...
    notes: list[str] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)  # rows, positives, days, review budget used

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds": dict(self.thresholds), "details": {k: dict(v) for k, v in self.details.items()},
                "notes": list(self.notes), "validation": dict(self.validation)}


def choose_thresholds(scores: np.ndarray, y: np.ndarray, days: np.ndarray, *,
                      review_budget_per_day: float | None = None,
                      block_precision: float = DEFAULT_BLOCK_PRECISION,
                      min_block_support: int = DEFAULT_MIN_BLOCK_SUPPORT,
                      overrides: Mapping[str, float | None] | None = None,
                      n_days: float | None = None, sample_weight: np.ndarray | None = None) -> ThresholdChoice:
    """Thresholds for calibrated validation ``scores`` (see the module docstring)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(y).astype(int).ravel()
    days = np.asarray(days).ravel()
    weight = np.ones(scores.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    if not (scores.size == y.size == days.size == weight.size):
        raise ValueError(f"scores, y, days and sample_weight differ in length "
                         f"({scores.size}, {y.size}, {days.size}, {weight.size})")
    if np.any(weight <= 0) or not np.all(np.isfinite(weight)):
        raise ValueError("sample weights must be positive and finite")
    if scores.size == 0:
        raise ValueError("no validation rows to choose thresholds on")
    if not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1:
        raise ValueError("scores must be finite and in [0, 1] (calibrated probabilities)")
    if not 0 < block_precision <= 1:
        raise ValueError("block_precision must be in (0, 1]")
    given = {k: float(v) for k, v in (overrides or {}).items() if v is not None}
    unknown = set(given) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown threshold overrides {sorted(unknown)}")
    for name, value in given.items():
        if not 0 <= value <= 1:
            raise ValueError(f"override {name}={value} is outside [0, 1]")
    if "medium" in given and "high" in given and given["medium"] > given["high"]:
        raise ValueError(f"overrides must satisfy medium <= high, got medium={given['medium']} high={given['high']}")

    day_count = float(n_days) if n_days is not None else float(np.unique(days).size)
    if not day_count > 0:
        raise ValueError("n_days must be positive")
    notes: list[str] = []
    rows, fraud_rows = float(weight.sum()), float(weight[y == 1].sum())  # as the full data would count them
    if review_budget_per_day is None:
        fraud_budget = DEFAULT_REVIEW_FRAUD_MULTIPLE * fraud_rows / day_count
        floor = DEFAULT_REVIEW_SHARE_FLOOR * rows / day_count
        budget = max(fraud_budget, floor)
        budget_source = (f"default: {DEFAULT_REVIEW_FRAUD_MULTIPLE:g} x {fraud_rows / day_count:.1f} validation fraud rows/day"
                         if fraud_budget >= floor else
                         f"default: {DEFAULT_REVIEW_SHARE_FLOOR:.1%} of {rows / day_count:.1f} validation rows/day")
        notes.append(f"no review budget given: used {budget:.1f} reviews/day ({budget_source})")
    else:
        if review_budget_per_day < 0:
            raise ValueError("review_budget_per_day must be >= 0")
        budget, budget_source = float(review_budget_per_day), "given"

    # Distinct scores ascending, and how many rows / fraud rows (weighted) lie strictly above each.
    values, index = np.unique(scores, return_inverse=True)
    above = _strictly_above(np.bincount(index, weights=weight, minlength=values.size))  # rows with score > values[k]
    fraud_above = _strictly_above(np.bincount(index, weights=weight * (y == 1), minlength=values.size))
    candidates, flagged, tp = values, above, fraud_above
    if values[0] > 0:  # t = 0 is a candidate too: it flags every row
        candidates, flagged, tp = np.r_[0.0, values], np.r_[rows, above], np.r_[fraud_rows, fraud_above]

    sources: dict[str, tuple[str, str]] = {}
    # review
    if "medium" in given:
        medium = given["medium"]
        sources["medium"] = ("override", "explicit override")
    else:
        fits = np.flatnonzero(flagged / day_count <= budget)  # flagged is non-increasing: fits is a suffix
        k = int(fits[0])
        medium = float(candidates[k])
        sources["medium"] = ("chosen", f"lowest threshold with at most {budget:.1f} reviews/day ({budget_source}); "
                                       f"{flagged[k] / day_count:.2f}/day on validation"
                                       + (f", the next lower score would give {flagged[k - 1] / day_count:.2f}/day" if k > 0 else ""))
    # block
    if "high" in given:
        high = given["high"]
        sources["high"] = ("override", "explicit override")
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(flagged > 0, tp / np.maximum(flagged, 1), 0.0)
        ok = np.flatnonzero((precision >= block_precision) & (tp >= min_block_support))
        if ok.size:
            k = int(ok[0])
            high = float(candidates[k])
            sources["high"] = ("chosen", f"lowest threshold with validation precision >= {block_precision} "
                                         f"({precision[k]:.3f}) on at least {min_block_support} fraud rows ({tp[k]:g})")
        else:
            high = 1.0
            sources["high"] = ("fallback", f"precision {block_precision} with {min_block_support} fraud rows is never reached")
            notes.append(f"block threshold 1.0: no threshold reaches precision {block_precision} with at least "
                         f"{min_block_support} flagged fraud rows on validation, so nothing is auto-blocked")
        if high < medium:
            notes.append(f"block threshold raised from {high:.6g} to the review threshold {medium:.6g} (never below review)")
            high = medium
    if medium > high:  # only when high is an override and medium was chosen
        notes.append(f"review threshold lowered from {medium:.6g} to the high override {high:.6g} (medium <= high)")
        medium = high
    # alert
    if "alert" in given:
        alert = given["alert"]
        sources["alert"] = ("override", "explicit override")
    else:
        alert = medium
        sources["alert"] = ("chosen", "equal to the review threshold: anything an analyst should look at is flagged is_fraud")

    thresholds = {"high": high, "medium": medium, "alert": alert}
    details = {}
    for name, value in thresholds.items():
        hit = scores > value
        flagged_rows, true_positives = _count(weight[hit]), _count(weight[hit & (y == 1)])
        source, reason = sources[name]
        details[name] = {"threshold": value, "source": source, "reason": reason,
                         "alerts_per_day": flagged_rows / day_count, "flagged": flagged_rows,
                         "true_positives": true_positives,
                         "precision": true_positives / flagged_rows if flagged_rows else None,
                         "recall": true_positives / fraud_rows if fraud_rows else None}
    validation = {"rows": int(scores.size), "positives": int(y.sum()), "days": day_count,
                  "weighted": sample_weight is not None, "weighted_rows": rows, "weighted_positives": fraud_rows,
                  "review_budget_per_day": budget, "review_budget_source": budget_source,
                  "block_precision": block_precision, "min_block_support": min_block_support}
    return ThresholdChoice(thresholds, details, notes, validation)


def _strictly_above(counts: np.ndarray) -> np.ndarray:
    """For counts per ascending distinct score, the total strictly above each score (a reverse
    cumulative sum: exactly 0 above the top score, with or without weights)."""
    return np.r_[np.cumsum(counts[::-1])[::-1][1:], 0.0]


def _count(weights: np.ndarray) -> int | float:
    """A weighted count: an int when every weight is 1 (the unweighted case reads as before)."""
    total = float(weights.sum())
    return int(total) if np.all(weights == 1) else total
