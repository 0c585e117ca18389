"""The champion/challenger gate, pure: both models' evidence on the same labelled rows in, a
decision (promote or not, with every figure and every check) out.

The evidence is a ``Holdout`` (each row's label, UTC day and customer) and, per model, a
``Contender``: its calibrated scores on those rows and its *own* thresholds (its manifest's
``medium`` sends to review, ``high`` blocks). Two callers:

* a retrain (``training/retrain.py``): the newest matured period, scored by the freshly fitted
  challenger and by the serving champion; its ``HoldoutPlacement`` says where that period lies
  in time against both models' training data, and ``check_windows`` judges it;
* shadow evidence: matured audit rows on which the champion and a shadow model both scored
  live. Those scores were served before any label existed, so there is no training window to
  check: ``judge`` without a placement.

Measured per model (``PromotionGate.measure``): average precision, card precision@k per day
(``k`` customers a day, the analysts' queue), ECE (``metrics.expected_calibration_error``)
and, at its review and block thresholds, alerts per day, precision and recall.

Promotion needs every check to pass:

* ``challenger_training_before_holdout``: the holdout starts at least one label delay after
  the challenger's training data ends (fit, search, calibration, threshold choice: all of it),
  so no label the challenger learned from was still maturing in the holdout;
* ``holdout_after_champion_training``: the holdout starts no earlier than the champion's
  training data ends (when unknown, the check fails: see ``champion_training_end``);
* ``average_precision_gain``: AP gains at least ``min_ap_gain``;
* ``card_precision_not_worse``: card precision@k does not fall;
* ``calibration_not_worse``: ECE rises by at most ``max_ece_increase``;
* ``alert_budget``: the challenger's review alerts per day are at most ``max_alerts_per_day``
  when that is set (the analysts' capacity: the budget, whatever the champion sends); otherwise
  at most the champion's x ``max_alert_ratio`` (workload must not jump without anyone saying
  the analysts can take it). A champion that sends no review on the holdout gives no relative
  budget (the check passes and says so).

Without a compatible champion only the challenger's window and the absolute alert budget are
checked (the result says so). The result is a JSON-able dict: ``promoted``, ``reason`` (one
line), ``reasons`` (each failed check), ``checks``, both models' figures, the holdout, the
windows and the policy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import numpy as np

from shared.domain.metrics import (
    average_precision, card_precision_at_k_per_day, expected_calibration_error, threshold_report,
)

DAY = 86400.0
WINDOW_NAMES = ("train_start", "train_end", "test_start", "test_end")
_SLACK_SECONDS = 1e-3  # float rounding of day arithmetic, never a real overlap


def iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat()


def epoch(text: str) -> float:
    """Epoch seconds of an ISO 8601 time (UTC when it carries no offset)."""
    moment = datetime.fromisoformat(str(text))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


@dataclass(frozen=True)
class TimeWindows:
    """A model's time windows in epoch seconds: every row it was fitted on, calibrated on or had
    its thresholds chosen on lies in [train_start, train_end); it was tested on [test_start,
    test_end). A manifest records them under ``"windows"`` (``to_dict``)."""

    train_start: float
    train_end: float  # exclusive
    test_start: float
    test_end: float  # exclusive

    def describe(self) -> dict[str, str]:
        return {name: iso(getattr(self, name)) for name in WINDOW_NAMES}

    def to_dict(self) -> dict[str, Any]:
        return {**self.describe(), "gap_days": (self.test_start - self.train_end) / DAY}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> "TimeWindows":
        return cls(*(epoch(document[name]) for name in WINDOW_NAMES))


def champion_training_end(manifest: Mapping[str, Any]) -> tuple[float | None, str]:
    """When a model's training data ends, and how that is known.

    From its manifest's ``windows``; a manifest written before windows were recorded falls back
    to its ``created_at`` (a model cannot have learned from rows after it was built, so the
    holdout then starts after it: conservative, never a leak); with neither, None, and the
    window check refuses promotion."""
    try:
        return TimeWindows.from_dict(manifest["windows"]).train_end, "windows"
    except (KeyError, TypeError, ValueError):
        pass
    try:
        return epoch(manifest["created_at"]), "created_at (the manifest records no training windows)"
    except (KeyError, TypeError, ValueError):
        return None, "unknown: the manifest records neither training windows nor created_at"


@dataclass(frozen=True)
class Holdout:
    """The labelled rows both models are judged on: fraud or not, UTC day number, customer;
    and, when the rows are a sample (a retrain's rows from the training sample), each row's
    sample weight: average precision, ECE and alerts per day are then the weighted figures,
    those of the traffic the rows stand for (card precision@k ranks the sampled rows as they are)."""

    y: np.ndarray
    days: np.ndarray
    customers: np.ndarray
    weights: np.ndarray | None = None  # how many decisions each row stands for (binned evidence); None: 1 each

    def __post_init__(self) -> None:
        if not (np.shape(self.y) == np.shape(self.days) == np.shape(self.customers)):
            raise ValueError("y, days and customers must have one entry per holdout row")
        if self.weights is not None and np.shape(self.weights) != np.shape(self.y):
            raise ValueError("weights must have one entry per holdout row")

    @property
    def n_days(self) -> int:
        return max(int(np.unique(self.days).size), 1)

    def describe(self) -> dict[str, Any]:
        known = [c for c in np.asarray(self.customers, dtype=object).tolist() if c is not None]
        described = {"rows": int(np.size(self.y)), "fraud": int(np.sum(self.y)), "days": self.n_days,
                     "customers": len(set(known)) if known else None}  # None: binned rows carry no customer
        if self.weights is not None:  # each row stands for that many decisions
            w = np.asarray(self.weights, dtype=np.float64)
            described.update(weighted_rows=float(w.sum()), weighted_fraud=float(w[np.asarray(self.y) == 1].sum()))
        return described


@dataclass(frozen=True)
class Contender:
    """One model's evidence: its calibrated scores on the holdout rows and its own thresholds
    (a manifest's ``thresholds``: score > ``medium`` is reviewed, score > ``high`` blocked)."""

    version: str | None
    scores: np.ndarray
    thresholds: Mapping[str, float]
    rows: "Holdout | None" = None  # the rows ``scores`` are on, when not the judged holdout's (each model's own bins)
    card_precision_of: Callable[[int], float | None] | None = None  # card precision@k when the rows carry no customers


@dataclass(frozen=True)
class HoldoutPlacement:
    """Where a retrain's holdout lies in time (epoch seconds) against both models' training data."""

    holdout_start: float
    holdout_end: float  # exclusive
    challenger_training_end: float  # exclusive: the challenger saw rows before it only
    champion_training_end: float | None  # None: unknown
    champion_training_end_source: str
    label_delay_days: float

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        for name in ("holdout_start", "holdout_end", "challenger_training_end", "champion_training_end"):
            record[name] = iso(record[name]) if record[name] is not None else None
        record["gap_days"] = (self.holdout_start - self.challenger_training_end) / DAY
        return record


def _check(passed: bool, detail: str, **figures: Any) -> dict[str, Any]:
    return {"passed": bool(passed), "detail": detail, **figures}


def check_windows(placement: HoldoutPlacement, with_champion: bool = True) -> dict[str, dict[str, Any]]:
    """The time checks of a retrain's holdout (see the module docstring); ``with_champion``
    False leaves out the champion's (there is none to compare with)."""
    p = placement
    delay = p.label_delay_days
    gap = p.holdout_start - p.challenger_training_end
    if gap < -_SLACK_SECONDS:
        detail = (f"the holdout (from {iso(p.holdout_start)}) overlaps the challenger's training data "
                  f"(until {iso(p.challenger_training_end)})")
    elif gap < delay * DAY - _SLACK_SECONDS:
        detail = (f"the holdout starts {gap / DAY:.2f} days after the challenger's training data ends, "
                  f"within the label delay of {delay:g} days")
    else:
        detail = (f"the holdout starts {gap / DAY:.2f} days after the challenger's training data ends "
                  f"(label delay {delay:g} days)")
    checks = {"challenger_training_before_holdout": _check(
        gap >= delay * DAY - _SLACK_SECONDS, detail, gap_days=gap / DAY, label_delay_days=delay)}
    if with_champion:
        end = p.champion_training_end
        if end is None:
            checks["holdout_after_champion_training"] = _check(
                False, f"the champion's training end is {p.champion_training_end_source}: the holdout cannot be "
                       "shown to lie after its training data", source=p.champion_training_end_source)
        else:
            after = p.holdout_start >= end - _SLACK_SECONDS
            checks["holdout_after_champion_training"] = _check(
                after, f"the holdout starts {'at or after' if after else 'before'} the champion's training end "
                       f"({iso(p.holdout_start)} vs {iso(end)}, from its {p.champion_training_end_source})",
                margin_days=(p.holdout_start - end) / DAY, source=p.champion_training_end_source)
    return checks


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class PromotionGate:
    """The promotion policy (see the module docstring)."""

    min_ap_gain: float = 0.005
    max_alert_ratio: float | None = 1.25  # None: no budget relative to the champion
    max_alerts_per_day: float | None = None  # the analysts' capacity; when set, it is the budget
    max_ece_increase: float = 0.01
    k: int = 100  # card precision@k: customers an analyst queue takes a day
    ece_bins: int = 10

    def measure(self, holdout: Holdout, model: Contender) -> dict[str, Any]:
        """Every figure of one model on the holdout, at its own thresholds."""
        rows = model.rows if model.rows is not None else holdout
        y, scores, w = np.asarray(rows.y), np.asarray(model.scores, dtype=np.float64), rows.weights
        if scores.shape != y.shape:
            raise ValueError(f"model {model.version}: {scores.size} scores for {y.size} holdout rows")

        def at(threshold: float) -> dict[str, Any]:
            report = threshold_report(y, scores, threshold, w)
            flagged = report["tp"] + report["fp"]
            return {"threshold": float(threshold), "alerts_per_day": flagged / rows.n_days, "flagged": flagged,
                    "precision": report["precision"], "recall": report["recall"]}

        card = (model.card_precision_of(self.k) if model.card_precision_of is not None else
                card_precision_at_k_per_day(rows.customers, rows.days, scores, y, self.k))
        return {"version": model.version,
                "average_precision": average_precision(y, scores, w),
                "card_precision_at_k": card,
                "ece": expected_calibration_error(y, scores, self.ece_bins, w),
                "review": at(model.thresholds["medium"]), "block": at(model.thresholds["high"])}

    def judge(self, holdout: Holdout, challenger: Contender, champion: Contender | None = None,
              placement: HoldoutPlacement | None = None) -> dict[str, Any]:
        """Promote ``challenger`` over ``champion`` (None: no compatible champion)? ``placement``
        None: no time-window checks (shadow evidence, scored live before any label)."""
        new = self.measure(holdout, challenger)
        old = self.measure(holdout, champion) if champion is not None else None
        checks = check_windows(placement, with_champion=old is not None) if placement is not None else {}
        if old is not None:
            checks.update(self._ranking_and_calibration(new, old))
        checks["alert_budget"] = self._alert_budget(new, old)
        failed = [name for name, check in checks.items() if not check["passed"]]
        reasons = [checks[name]["detail"] for name in failed]
        if failed:
            reason = "not promoted: " + "; ".join(reasons)
        elif old is None:
            reason = (f"no compatible champion; promoted on a valid holdout: average precision "
                      f"{_num(new['average_precision'])}, review alerts/day {new['review']['alerts_per_day']:.1f}")
        else:
            reason = "promoted: " + "; ".join(checks[name]["detail"] for name in checks
                                              if name not in ("challenger_training_before_holdout",
                                                              "holdout_after_champion_training"))
        return {"promoted": not failed, "reason": reason, "reasons": reasons, "failed": failed, "checks": checks,
                "challenger": new, "champion": old, "holdout": holdout.describe(),
                "windows": placement.to_dict() if placement is not None else None, "policy": asdict(self)}

    def _ranking_and_calibration(self, new: dict[str, Any], old: dict[str, Any]) -> dict[str, dict[str, Any]]:
        ap_new, ap_old = new["average_precision"], old["average_precision"]
        gain = ap_new - ap_old if ap_new is not None and ap_old is not None else None
        gained = gain is not None and gain >= self.min_ap_gain
        card_new, card_old = new["card_precision_at_k"], old["card_precision_at_k"]
        card_ok = card_new is not None and card_old is not None and card_new >= card_old
        ece_new, ece_old = new["ece"], old["ece"]
        ece_ok = ece_new is not None and ece_old is not None and ece_new <= ece_old + self.max_ece_increase
        return {
            "average_precision_gain": _check(
                gained, f"average precision {'n/a' if gain is None else f'{gain:+.4f}'} ({_num(ap_new)} vs "
                        f"{_num(ap_old)}; {'at least' if gained else 'below'} the required {self.min_ap_gain:g})",
                challenger=ap_new, champion=ap_old, gain=gain, required=self.min_ap_gain),
            "card_precision_not_worse": _check(
                card_ok, f"card precision@{self.k} {_num(card_new, 3)} vs {_num(card_old, 3)}"
                         + ("" if card_ok else " (worse)"),
                challenger=card_new, champion=card_old, k=self.k),
            "calibration_not_worse": _check(
                ece_ok, f"ECE {_num(ece_new)} vs {_num(ece_old)}"
                        + ("" if ece_ok else f" (worse by more than {self.max_ece_increase:g})"),
                challenger=ece_new, champion=ece_old, max_increase=self.max_ece_increase),
        }

    def _alert_budget(self, new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        alerts = new["review"]["alerts_per_day"]
        budget, source = None, "no budget applies"
        if self.max_alerts_per_day is not None:
            budget, source = self.max_alerts_per_day, "the configured analysts' capacity"
        elif old is not None and self.max_alert_ratio is not None:
            base = old["review"]["alerts_per_day"]
            if base > 0:
                budget, source = base * self.max_alert_ratio, f"{self.max_alert_ratio:g} x the champion's {base:.1f}"
            else:
                source = "the champion sends no reviews on the holdout, so no budget relative to it"
        within = budget is None or alerts <= budget
        detail = (f"review alerts/day {alerts:.1f}"
                  + (f" vs the champion's {old['review']['alerts_per_day']:.1f}" if old is not None else "")
                  + (f"; {source}" if budget is None else
                     f", {'within' if within else 'above'} the budget of {budget:.1f} ({source})"))
        return _check(within, detail, challenger=alerts, champion=old["review"]["alerts_per_day"] if old else None,
                      budget=budget, budget_source=source)
