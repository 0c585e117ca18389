"""The fraud-ML literature's evaluation protocol, on any scores file.

    python -m training.evaluate --scores scores.csv --data transactions.csv --out eval/

``scores.csv`` has ``transaction_id,score`` (what ``train.py --scores-out`` writes); the data
CSV gives customer_id, timestamp, transaction_amount, is_fraud and, optionally,
fraud_scenario and fraud_incident. Only the scored rows are evaluated.

What is measured (one JSON-serialisable dict, ``evaluate``):

* ranking: ROC AUC, average precision, recall at 1% FPR;
* the analysts' daily queue: transaction precision@k per day and *card* precision@k per day
  (Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection*; see
  ``shared.domain.metrics.card_precision_at_k``);
* calibration: a reliability table, the Brier score and the gaps in the decision bands
  (0.2-0.5, 0.5-0.8, 0.8-1.0) -- with 99% of scores near 0 a 10-bin ECE is ~0 for any
  model, so the band gaps are what to watch;
* recall per fraud scenario at the review and block thresholds;
* time to detection per fraud incident;
* a money view: fraud amount blocked / reviewed, false positives and their cost;
* confusion counts at each threshold.

Conventions
-----------
*Flagged* means ``score > threshold`` (strictly), as ``Thresholds.risk_level`` (``score >
medium`` is Medium, ``score > high`` is High) and ``metrics.threshold_report`` do. The review
threshold is the ``medium`` one (0.5), the block threshold the ``high`` one (0.8): a row is
*blocked* when ``score > block``, *reviewed* (sent to an analyst) when ``review < score <=
block``. The decision bands are half-open the same way: ``lower < score <= upper``.

Days are UTC days (``floor(epoch_seconds / 86400)``), as in ``train.py``.

matplotlib is imported only inside ``write_plots`` (training-time only; never deployed).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from shared.domain.metrics import (
    average_precision, card_precision_at_k, expected_calibration_error, precision_recall_curve, recall_at_fpr,
    reliability_bins, roc_auc, threshold_report, top_k_precision_per_day,
)
from shared.domain.model import DEFAULT_THRESHOLDS

REVIEW_THRESHOLD = DEFAULT_THRESHOLDS["medium"]  # 0.5
BLOCK_THRESHOLD = DEFAULT_THRESHOLDS["high"]  # 0.8
DECISION_BANDS: tuple[tuple[float, float], ...] = ((0.2, 0.5), (0.5, 0.8), (0.8, 1.0))
MIN_BAND_ROWS = 30  # a band's gap counts only with at least this many rows
INCIDENT_GAP_DAYS = 7.0  # without incident ids: a customer's fraud rows more than 7 days apart are two incidents
DAY_SECONDS = 86400.0
# Costs, in the transactions' currency (NGN for the simulator). Placeholders to be replaced by
# the bank's own numbers: an analyst's review of one alert (~10 minutes of a loaded analyst
# cost), and the friction of wrongly blocking a legitimate payment (a call-centre contact,
# a lost sale, some churn risk).
DEFAULT_COST_PER_ALERT = 1_000.0
DEFAULT_COST_PER_BLOCK = 5_000.0
MISSING_INCIDENT = frozenset({"", "-1", "nan", "none", "null"})


def _f(value: Any) -> float | None:
    """A plain float for JSON (None for None/NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _share(part: float, whole: float) -> float | None:
    return float(part / whole) if whole else None


# -- calibration --------------------------------------------------------------------------------

def calibration_report(y: np.ndarray, scores: np.ndarray, bins: int = 10,
                       bands: Sequence[tuple[float, float]] = DECISION_BANDS,
                       min_band_rows: int = MIN_BAND_ROWS) -> dict[str, Any]:
    """Reliability table, Brier score, ECE and the gaps in the decision bands.

    The bins and the ECE are ``shared.domain.metrics``' (equal-width on [0, 1]: ``[i/bins,
    (i+1)/bins)``, the last one closed), which the promotion gate uses too. Bands are
    ``lower < score <= upper`` (the risk levels' convention); a band's gap ``|mean score -
    observed fraud rate|`` *counts* when the band has at least ``min_band_rows`` rows, and
    ``max_band_gap`` is the largest counted one.
    """
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    n = y.size
    band_rows = []
    for lower, upper in bands:
        mask = (s > lower) & (s <= upper)
        rows = int(mask.sum())
        mean_score = float(s[mask].mean()) if rows else None
        rate = float(y[mask].mean()) if rows else None
        band_rows.append({"band": f"{lower:g}-{upper:g}", "lower": float(lower), "upper": float(upper), "rows": rows,
                          "mean_score": mean_score, "observed_rate": rate,
                          "abs_gap": abs(mean_score - rate) if rows else None, "counts": rows >= min_band_rows})
    counted = [b["abs_gap"] for b in band_rows if b["counts"]]
    return {
        "rows": int(n),
        "brier": float(np.mean((s - y) ** 2)) if n else None,
        "ece": expected_calibration_error(y, s, bins),
        "bins": reliability_bins(y, s, bins),
        "bands": band_rows,
        "min_band_rows": int(min_band_rows),
        "max_band_gap": max(counted) if counted else None,
    }


# -- per-scenario recall ------------------------------------------------------------------------

def scenario_recall(y: np.ndarray, scores: np.ndarray, scenarios: Sequence[str] | np.ndarray,
                    thresholds: Mapping[str, float] | None = None,
                    names: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Recall per fraud scenario: {scenario: {"fraud_rows", "recall_<threshold name>"...}}.

    ``thresholds`` defaults to {"review": 0.5, "block": 0.8}; flagged = ``score > threshold``.
    Scenarios are those seen on fraud rows (an empty tag is "unspecified"), plus ``names``
    (reported with 0 rows and recall None when absent).
    """
    thresholds = dict(thresholds or {"review": REVIEW_THRESHOLD, "block": BLOCK_THRESHOLD})
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    tags = np.asarray([str(t) if t not in (None, "") else "unspecified" for t in scenarios], dtype=object)
    seen = sorted(set(tags[y].tolist()) | set(names))
    table = {}
    for name in seen:
        mask = y & (tags == name)
        rows = int(mask.sum())
        table[name] = {"fraud_rows": rows,
                       **{f"recall_{k}": (float(np.mean(s[mask] > v)) if rows else None) for k, v in thresholds.items()}}
    return table


# -- time to detection --------------------------------------------------------------------------

def _incident_key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    return None if text.lower() in MISSING_INCIDENT else text


def fraud_incidents(customers: Sequence[str] | np.ndarray, times: np.ndarray, is_fraud: np.ndarray,
                    incidents: Sequence[Any] | np.ndarray | None = None,
                    gap_days: float = INCIDENT_GAP_DAYS) -> list[np.ndarray]:
    """The fraud rows grouped into incidents, each an array of row indices in time order.

    With incident ids: the fraud rows sharing an id *and a customer* (an incident spanning
    several customers, e.g. a breached merchant, is one incident per customer: detection is
    per card). Fraud rows without an id (None, "", -1, NaN) -- or all of them when
    ``incidents`` is None -- are grouped per customer: a new incident starts after a gap of
    more than ``gap_days`` between consecutive fraud rows.
    """
    customers = np.asarray(customers)
    times = np.asarray(times, dtype=np.float64)
    fraud_rows = np.flatnonzero(np.asarray(is_fraud).astype(bool))
    fraud_rows = fraud_rows[np.lexsort((fraud_rows, times[fraud_rows]))]
    groups: dict[tuple, list[int]] = {}
    last_seen: dict[Any, tuple[float, int]] = {}  # customer -> (time of its last id-less fraud row, incident n)
    for row in fraud_rows.tolist():
        customer = str(customers[row])
        key = _incident_key(incidents[row]) if incidents is not None else None
        if key is not None:
            group = ("id", key, customer)
        else:
            t = float(times[row])
            previous = last_seen.get(customer)
            n = previous[1] if previous and t - previous[0] <= gap_days * DAY_SECONDS else (previous[1] + 1 if previous else 0)
            last_seen[customer] = (t, n)
            group = ("gap", customer, n)
        groups.setdefault(group, []).append(row)
    out = [np.asarray(rows, dtype=np.int64) for rows in groups.values()]
    out.sort(key=lambda rows: (times[rows[0]], rows[0]))
    return out


def time_to_detection(incidents: Sequence[Any] | np.ndarray | None, customers: Sequence[str] | np.ndarray,
                      times: np.ndarray, scores: np.ndarray, flag_threshold: float,
                      is_fraud: np.ndarray, *, gap_days: float = INCIDENT_GAP_DAYS,
                      after_last_fraud_days: float = 0.0, scenarios: Sequence[str] | np.ndarray | None = None,
                      include_incidents: bool = True) -> dict[str, Any]:
    """Per fraud incident: minutes from its first fraud transaction to the customer's first
    *flagged* transaction (``score > flag_threshold``; any transaction of that customer, fraud
    or not) at or after it, and the number of the incident's fraud transactions that went
    through before that one (the detecting transaction itself is not counted: it was flagged).

    A flag counts up to the incident's last fraud transaction plus ``after_last_fraud_days``
    (0: only while the incident is going on; ``math.inf``: any later flag). An incident with no
    flag in that window is undetected, and all its fraud transactions went through.
    Incidents are grouped by ``fraud_incidents`` (ids per customer, or a 7-day gap rule).

    Summary: incidents, detected, undetected, detected share, median and p90 minutes and
    median frauds before detection (over the detected ones), frauds that went through in
    detected and in undetected incidents; per incident detail when ``include_incidents``.
    """
    customers = np.asarray(customers)
    times = np.asarray(times, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    n = times.size
    order = np.lexsort((np.arange(n), times))  # time order, ties by row
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    # each customer's rows in time order
    _, codes = np.unique(customers, return_inverse=True)
    by_customer = order[np.argsort(codes[order], kind="mergesort")]
    starts = np.searchsorted(codes[by_customer], np.arange(codes.max() + 1 if n else 0))
    ends = np.r_[starts[1:], by_customer.size] if n else starts
    flagged = s > flag_threshold
    tags = np.asarray(scenarios, dtype=object) if scenarios is not None else None

    detail = []
    for rows in fraud_incidents(customers, times, is_fraud, incidents, gap_days):
        first, last = int(rows[0]), int(rows[-1])
        code = codes[first]
        mine = by_customer[starts[code]:ends[code]]
        mine = mine[rank[mine] >= rank[first]]
        mine = mine[times[mine] <= times[last] + after_last_fraud_days * DAY_SECONDS]
        hits = mine[flagged[mine]]
        entry: dict[str, Any] = {
            "customer": str(customers[first]), "start": float(times[first]), "frauds": int(rows.size),
            "incident": _incident_key(incidents[first]) if incidents is not None else None,
        }
        if tags is not None:
            entry["scenario"] = str(tags[first]) if tags[first] not in (None, "") else "unspecified"
        if hits.size:
            hit = int(hits[0])
            entry.update(detected=True, minutes=float((times[hit] - times[first]) / 60.0),
                         frauds_before_detection=int(np.sum(rank[rows] < rank[hit])))
        else:
            entry.update(detected=False, minutes=None, frauds_before_detection=int(rows.size))
        detail.append(entry)

    detected = [d for d in detail if d["detected"]]
    minutes = np.asarray([d["minutes"] for d in detected], dtype=np.float64)
    before = np.asarray([d["frauds_before_detection"] for d in detected], dtype=np.float64)
    summary: dict[str, Any] = {
        "flag_threshold": float(flag_threshold),
        "flag_rule": "score > flag_threshold",
        "incidents": len(detail),
        "detected": len(detected),
        "undetected": len(detail) - len(detected),
        "detected_share": _share(len(detected), len(detail)),
        "median_minutes": float(np.median(minutes)) if minutes.size else None,
        "p90_minutes": float(np.percentile(minutes, 90)) if minutes.size else None,
        "median_frauds_before_detection": float(np.median(before)) if before.size else None,
        "frauds_before_detection": int(before.sum()),
        "frauds_in_undetected": int(sum(d["frauds"] for d in detail if not d["detected"])),
    }
    if tags is not None:
        by_scenario = {}
        for name in sorted({d["scenario"] for d in detail}):
            group = [d for d in detail if d["scenario"] == name]
            found = [d["minutes"] for d in group if d["detected"]]
            by_scenario[name] = {"incidents": len(group), "detected": len(found),
                                 "detected_share": _share(len(found), len(group)),
                                 "median_minutes": float(np.median(found)) if found else None}
        summary["by_scenario"] = by_scenario
    if include_incidents:
        summary["per_incident"] = detail
    return summary


# -- money --------------------------------------------------------------------------------------

def money_view(amounts: np.ndarray, y: np.ndarray, scores: np.ndarray, review_threshold: float = REVIEW_THRESHOLD,
               block_threshold: float = BLOCK_THRESHOLD, cost_per_alert: float = DEFAULT_COST_PER_ALERT,
               cost_per_block: float = DEFAULT_COST_PER_BLOCK) -> dict[str, Any]:
    """Fraud amount blocked / reviewed / missed, and what the false positives cost.

    Blocked: ``score > block_threshold``; reviewed (an analyst alert): ``review_threshold <
    score <= block_threshold``; missed: ``score <= review_threshold``. Money-weighted recall =
    share of the fraud amount blocked or reviewed. Costs: every alert costs ``cost_per_alert``
    (an analyst's time, whether the alert is fraud or not; the false ones are also reported
    apart), every legitimate transaction blocked costs ``cost_per_block`` (customer
    friction). ``DEFAULT_COST_PER_ALERT`` / ``DEFAULT_COST_PER_BLOCK`` are placeholders in the
    data's currency.
    """
    a = np.asarray(amounts, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    blocked = s > block_threshold
    reviewed = (s > review_threshold) & ~blocked
    fraud_amount = float(a[y].sum())
    fraud_blocked = float(a[y & blocked].sum())
    fraud_reviewed = float(a[y & reviewed].sum())
    alerts = int(reviewed.sum())
    false_reviews = int((reviewed & ~y).sum())
    false_blocks = int((blocked & ~y).sum())
    return {
        "review_threshold": float(review_threshold),
        "block_threshold": float(block_threshold),
        "fraud_amount": fraud_amount,
        "fraud_amount_blocked": fraud_blocked,
        "fraud_amount_reviewed": fraud_reviewed,
        "fraud_amount_missed": fraud_amount - fraud_blocked - fraud_reviewed,
        "share_fraud_amount_blocked": _share(fraud_blocked, fraud_amount),
        "share_fraud_amount_reviewed": _share(fraud_reviewed, fraud_amount),
        "money_weighted_recall": _share(fraud_blocked + fraud_reviewed, fraud_amount),
        "alerts": alerts,
        "blocks": int(blocked.sum()),
        "false_positive_reviews": false_reviews,
        "false_positive_blocks": false_blocks,
        "legit_amount_blocked": float(a[blocked & ~y].sum()),
        "cost_per_alert": float(cost_per_alert),
        "cost_per_block": float(cost_per_block),
        "review_cost": alerts * float(cost_per_alert),
        "false_positive_review_cost": false_reviews * float(cost_per_alert),
        "false_block_cost": false_blocks * float(cost_per_block),
        "total_cost": alerts * float(cost_per_alert) + false_blocks * float(cost_per_block),
    }


# -- everything ---------------------------------------------------------------------------------

def evaluate(y: np.ndarray, scores: np.ndarray, *, times: np.ndarray | None = None, days: np.ndarray | None = None,
             customers: Sequence[str] | np.ndarray | None = None, amounts: np.ndarray | None = None,
             scenarios: Sequence[str] | np.ndarray | None = None, incidents: Sequence[Any] | np.ndarray | None = None,
             review_threshold: float = REVIEW_THRESHOLD, block_threshold: float = BLOCK_THRESHOLD,
             thresholds: Mapping[str, float] | None = None, k: int = 100, known_compromised: Any = None,
             cost_per_alert: float = DEFAULT_COST_PER_ALERT, cost_per_block: float = DEFAULT_COST_PER_BLOCK,
             calibration_bins: int = 10, include_incidents: bool = False) -> dict[str, Any]:
    """The whole protocol in one JSON-serialisable dict.

    Only ``y`` and ``scores`` are required; a section needing a missing input is None (days
    come from ``times`` when not given: UTC days; time to detection needs times and customers;
    card precision needs days and customers; the money view needs amounts). ``thresholds``
    (name -> value) are reported with confusion counts; default {"review", "block"}.
    """
    y = np.asarray(y).astype(np.int8)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError("y and scores must be 1-d arrays of the same length")
    if times is not None:
        times = np.asarray(times, dtype=np.float64)
        if days is None:
            days = np.floor(times / DAY_SECONDS)
    if days is not None:
        days = np.asarray(days)
    if customers is not None:
        customers = np.asarray(customers)
    named = dict(thresholds or {"review": review_threshold, "block": block_threshold})
    both = {"review": review_threshold, "block": block_threshold}
    card = (card_precision_at_k(customers, days, s, y, k, known_compromised)
            if customers is not None and days is not None and y.size else None)
    result: dict[str, Any] = {
        "rows": int(y.size),
        "positives": int(y.sum()),
        "k": int(k),
        "thresholds": {name: float(v) for name, v in named.items()},
        "flag_rule": "score > threshold",
        "roc_auc": roc_auc(y, s),
        "average_precision": average_precision(y, s),
        "recall_at_1pct_fpr": recall_at_fpr(y, s, 0.01),
        f"precision_top{k}_per_day": top_k_precision_per_day(y, s, days, k) if days is not None else None,
        f"card_precision_top{k}_per_day": card.mean if card is not None else None,
        "card_precision": card.to_dict() if card is not None else None,
        "at_thresholds": {name: threshold_report(y, s, v) for name, v in named.items()},
        "calibration": calibration_report(y, s, calibration_bins),
        "by_scenario": scenario_recall(y, s, scenarios, both) if scenarios is not None else None,
        "time_to_detection": (time_to_detection(incidents, customers, times, s, review_threshold, y, scenarios=scenarios,
                                                include_incidents=include_incidents)
                              if customers is not None and times is not None else None),
        "money": (money_view(amounts, y, s, review_threshold, block_threshold, cost_per_alert, cost_per_block)
                  if amounts is not None else None),
    }
    return result


def headline(result: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers worth printing."""
    k = result["k"]
    ttd = result.get("time_to_detection") or {}
    money = result.get("money") or {}
    calibration = result.get("calibration") or {}
    return {
        "rows": result["rows"], "positives": result["positives"], "roc_auc": result["roc_auc"],
        "average_precision": result["average_precision"], "recall_at_1pct_fpr": result["recall_at_1pct_fpr"],
        f"precision_top{k}_per_day": result.get(f"precision_top{k}_per_day"),
        f"card_precision_top{k}_per_day": result.get(f"card_precision_top{k}_per_day"),
        "brier": calibration.get("brier"), "max_band_gap": calibration.get("max_band_gap"),
        "incidents_detected_share": ttd.get("detected_share"), "median_minutes_to_detection": ttd.get("median_minutes"),
        "money_weighted_recall": money.get("money_weighted_recall"), "total_cost": money.get("total_cost"),
    }


# -- plots --------------------------------------------------------------------------------------

def _as_curves(curves: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for name, pair in curves.items():
        y, s = pair
        out[name] = (np.asarray(y).astype(np.int8), np.asarray(s, dtype=np.float64))
    return out


def write_plots(folder: str | Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray]], bins: int = 10) -> list[str]:
    """PNG plots of several named score sets ({name: (y, scores)}) into ``folder``:
    precision-recall curves, the reliability diagram (with the diagonal) and the score
    distributions by class (log-scale counts). Returns the file names written."""
    # The Agg canvas on plain Figures: no pyplot, no global backend switch, nothing left open.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def new(figsize: tuple[float, float], rows: int = 1) -> tuple[Any, Any]:
        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)
        return fig, fig.subplots(rows, 1, squeeze=False)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    curves = _as_curves(curves)
    written = []

    fig, axes = new((6, 4.5))
    ax = axes[0, 0]
    for name, (y, s) in curves.items():
        if not y.sum():
            continue
        precision, recall, _ = precision_recall_curve(y, s)
        step = max(1, precision.size // 2000)
        ap = average_precision(y, s)
        ax.plot(np.r_[0.0, recall[::step], recall[-1]], np.r_[precision[0], precision[::step], precision[-1]],
                label=f"{name} (AP {ap:.3f})", drawstyle="steps-post")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "pr_curves.png", dpi=110)
    written.append("pr_curves.png")

    fig, axes = new((5, 5))
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, (y, s) in curves.items():
        table = calibration_report(y, s, bins)["bins"]
        pts = [(b["mean_score"], b["observed_rate"]) for b in table if b["rows"]]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=name)
    ax.set(xlabel="mean score in bin", ylabel="observed fraud rate", xlim=(0, 1), ylim=(0, 1),
           title=f"Reliability ({bins} bins)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "reliability.png", dpi=110)
    written.append("reliability.png")

    fig, axes = new((6, 2.6 * max(len(curves), 1)), max(len(curves), 1))
    edges = np.linspace(0.0, 1.0, 51)
    for ax, (name, (y, s)) in zip(axes[:, 0], curves.items()):
        ax.hist(s[y == 0], bins=edges, alpha=0.6, label="legitimate", color="#2e86c1")
        ax.hist(s[y == 1], bins=edges, alpha=0.6, label="fraud", color="#c0392b")
        ax.set_yscale("log")
        ax.set(xlabel="score", ylabel="transactions (log)", title=f"Score distribution: {name}", xlim=(0, 1))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "score_distributions.png", dpi=110)
    written.append("score_distributions.png")
    return written


# -- markdown -----------------------------------------------------------------------------------

def fmt(value: Any, digits: int = 4) -> str:
    """A number for a markdown table (n/a, yes/no, thousands separators, 4 decimals)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:  # amounts and costs
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(fmt(v) if not isinstance(v, str) else v for v in row) + " |" for row in rows]
    return lines


def _get(result: Mapping[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(result, Mapping):
            return None
        result = result.get(key)
    return result


def render_markdown(results: Mapping[str, Any], plots: Sequence[str] = (), title: str = "Evaluation",
                    level: int = 2) -> str:
    """A markdown section (tables + image links) for one result (``evaluate``'s dict) or several
    named ones ({"model": r1, "logistic_regression": r2}) side by side. ``level`` is the
    heading level of the title, so the section embeds in a larger report.md."""
    named: dict[str, Mapping[str, Any]] = {"model": results} if "rows" in results else dict(results)
    names = list(named)
    h, hh = "#" * level, "#" * (level + 1)
    first = named[names[0]]
    k = first["k"]
    lines = [f"{h} {title}", ""]

    lines += [f"{hh} Ranking and the daily queue", ""]
    keys = ("rows", "positives", "roc_auc", "average_precision", "recall_at_1pct_fpr", f"precision_top{k}_per_day",
            f"card_precision_top{k}_per_day")
    lines += _table(["metric", *names], [[key, *[named[n].get(key) for n in names]] for key in keys])
    lines += ["", f"Card precision@{k}: each customer's highest score of the day, customers already known compromised "
                  "(fraud on an earlier day) removed, top k customers per day; mean over days.", ""]

    lines += [f"{hh} At the thresholds (flagged = score > threshold)", ""]
    rows = []
    for n in names:
        for tname, r in named[n]["at_thresholds"].items():
            rows.append([n, tname, r["threshold"], r["tp"], r["fp"], r["precision"], r["recall"], r["false_positive_rate"]])
    lines += _table(["model", "threshold", "value", "TP", "FP", "precision", "recall", "FPR"], rows) + [""]

    lines += [f"{hh} Calibration", ""]
    lines += _table(["metric", *names], [
        ["Brier score", *[_get(named[n], "calibration", "brier") for n in names]],
        ["ECE (10 bins; ~0 when most scores are ~0)", *[_get(named[n], "calibration", "ece") for n in names]],
        ["max decision-band gap", *[_get(named[n], "calibration", "max_band_gap") for n in names]],
    ]) + [""]
    rows = []
    for n in names:
        for b in _get(named[n], "calibration", "bands") or []:
            rows.append([n, b["band"], b["rows"], b["mean_score"], b["observed_rate"], b["abs_gap"],
                         "yes" if b["counts"] else f"no (< {named[n]['calibration']['min_band_rows']} rows)"])
    lines += _table(["model", "band (lower < score <= upper)", "rows", "mean score", "observed rate", "\\|gap\\|", "counts"],
                    rows) + [""]
    lines += [f"Reliability table ({names[0]}):", ""]
    lines += _table(["bin", "rows", "mean score", "observed rate"],
                    [[f"{b['lower']:.1f}-{b['upper']:.1f}", b["rows"], b["mean_score"], b["observed_rate"]]
                     for b in _get(first, "calibration", "bins") or []]) + [""]

    if any(named[n].get("by_scenario") for n in names):
        lines += [f"{hh} Recall per fraud scenario", ""]
        scenarios = sorted({s for n in names for s in (named[n].get("by_scenario") or {})})
        header = ["scenario", "fraud rows"]
        for n in names:
            header += [f"{n} recall (review)", f"{n} recall (block)"]
        rows = []
        for sc in scenarios:
            fraud_rows = next((named[n]["by_scenario"][sc]["fraud_rows"] for n in names
                               if sc in (named[n].get("by_scenario") or {})), None)
            row: list[Any] = [sc, fraud_rows]
            for n in names:
                r = (named[n].get("by_scenario") or {}).get(sc) or {}
                row += [r.get("recall_review"), r.get("recall_block")]
            rows.append(row)
        lines += _table(header, rows) + [""]

    if any(named[n].get("time_to_detection") for n in names):
        lines += [f"{hh} Time to detection (per fraud incident, flagged = score > review threshold)", ""]
        keys = ("incidents", "detected", "undetected", "detected_share", "median_minutes", "p90_minutes",
                "median_frauds_before_detection", "frauds_before_detection", "frauds_in_undetected")
        lines += _table(["metric", *names], [[key, *[_get(named[n], "time_to_detection", key) for n in names]]
                                            for key in keys]) + [""]

    if any(named[n].get("money") for n in names):
        lines += [f"{hh} Money view", ""]
        keys = ("fraud_amount", "share_fraud_amount_blocked", "share_fraud_amount_reviewed", "money_weighted_recall",
                "fraud_amount_missed", "alerts", "false_positive_reviews", "false_positive_blocks", "review_cost",
                "false_block_cost", "total_cost")
        lines += _table(["metric", *names], [[key, *[_get(named[n], "money", key) for n in names]] for key in keys])
        money = _get(first, "money") or {}
        lines += ["", f"Costs: {fmt(money.get('cost_per_alert'))} per alert (analyst time), "
                      f"{fmt(money.get('cost_per_block'))} per legitimate transaction blocked (customer friction).", ""]

    if plots:
        lines += [f"{hh} Plots", ""]
        lines += [f"![{Path(p).stem.replace('_', ' ')}]({p})" for p in plots] + [""]
    return "\n".join(lines)


# -- CLI ----------------------------------------------------------------------------------------

def read_scores(path: str | Path) -> dict[str, float]:
    """``transaction_id,score`` -> {id: score}; duplicates and bad scores are errors."""
    scores: dict[str, float] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"transaction_id", "score"} <= set(reader.fieldnames):
            raise SystemExit(f"{path}: expected the columns transaction_id,score, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            tid = row["transaction_id"]
            if tid in scores:
                raise SystemExit(f"{path}:{line}: transaction_id {tid!r} appears twice")
            try:
                scores[tid] = float(row["score"])
            except (TypeError, ValueError):
                raise SystemExit(f"{path}:{line}: score {row['score']!r} is not a number") from None
    if not scores:
        raise SystemExit(f"{path}: no scores")
    return scores


def _incident_column(path: str | Path, column: str = "fraud_incident") -> dict[str, str] | None:
    """{transaction_id: incident} from the data CSV, or None when it has no such column."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if column not in (reader.fieldnames or []):
            return None
        return {row["transaction_id"]: row[column] for row in reader}


def load_inputs(data_path: str | Path, score_files: Mapping[str, str | Path]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The data's columns for the scored rows, and each score file's scores aligned to them.

    The rows are those of the first score file; every score file must score exactly those
    transactions, and every scored id must be in the data (else SystemExit with examples).
    """
    from training.dataset import read_labelled_csv

    data = read_labelled_csv(data_path)
    position = {t.transaction_id: i for i, t in enumerate(data.transactions)}
    loaded = {name: read_scores(path) for name, path in score_files.items()}
    first_name = next(iter(loaded))
    missing = [tid for tid in loaded[first_name] if tid not in position]
    if missing:
        hint = f" ({sum(data.rejected.values())} data rows were invalid and skipped: {dict(data.rejected)})" if data.rejected else ""
        raise SystemExit(f"{len(missing)} of {len(loaded[first_name])} scored transaction ids are not in {data_path}{hint}; "
                         f"first: {missing[:5]}")
    rows = np.asarray(sorted(position[tid] for tid in loaded[first_name]), dtype=np.int64)
    ids = [data.transactions[i].transaction_id for i in rows]
    aligned = {}
    for name, scores in loaded.items():
        absent = [tid for tid in ids if tid not in scores]
        extra = len(scores) - (len(ids) - len(absent))
        if absent or extra:
            raise SystemExit(f"scores {name!r} ({score_files[name]}) do not cover the same transactions as "
                             f"{first_name!r}: {len(absent)} missing, {extra} extra; first missing: {absent[:5]}")
        aligned[name] = np.fromiter((scores[tid] for tid in ids), dtype=np.float64, count=len(ids))
    txns = [data.transactions[i] for i in rows]
    incidents = getattr(data, "incidents", None)  # a parallel change adds this field
    if incidents is not None and len(incidents) == len(data):
        incident_values = [incidents[i] for i in rows]
    else:
        column = _incident_column(data_path)
        incident_values = [column.get(tid) for tid in ids] if column is not None else None
    inputs = {
        "y": np.asarray(data.labels)[rows],
        "times": np.fromiter((t.epoch_seconds for t in txns), dtype=np.float64, count=len(txns)),
        "customers": np.asarray([t.customer_id for t in txns]),
        "amounts": np.fromiter((t.transaction_amount for t in txns), dtype=np.float64, count=len(txns)),
        "scenarios": [data.scenarios[i] for i in rows],
        "incidents": incident_values,
    }
    return inputs, aligned


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--scores", required=True, help="CSV transaction_id,score (train.py --scores-out)")
    p.add_argument("--data", required=True, help="the labelled transactions CSV the scores are for")
    p.add_argument("--compare", action="append", default=[], metavar="NAME=SCORES_CSV",
                   help="another model's scores on the same transactions, reported side by side")
    p.add_argument("--name", default="model", help="the name of --scores in the report")
    p.add_argument("--out", help="folder for evaluation.json, report.md and the PNG plots")
    p.add_argument("--k", type=int, default=100, help="daily queue size for precision@k and card precision@k")
    p.add_argument("--review-threshold", type=float, default=REVIEW_THRESHOLD)
    p.add_argument("--block-threshold", type=float, default=BLOCK_THRESHOLD)
    p.add_argument("--cost-per-alert", type=float, default=DEFAULT_COST_PER_ALERT)
    p.add_argument("--cost-per-block", type=float, default=DEFAULT_COST_PER_BLOCK)
    p.add_argument("--title", default="Evaluation")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    score_files = {args.name: args.scores}
    for pair in args.compare:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--compare takes NAME=SCORES_CSV, got {pair!r}")
        if name in score_files:
            raise SystemExit(f"--compare: the name {name!r} is used twice")
        score_files[name] = path
    if not 0 <= args.review_threshold <= args.block_threshold <= 1:
        raise SystemExit("thresholds must satisfy 0 <= review <= block <= 1")
    inputs, aligned = load_inputs(args.data, score_files)
    results = {
        name: evaluate(inputs["y"], scores, times=inputs["times"], customers=inputs["customers"],
                       amounts=inputs["amounts"], scenarios=inputs["scenarios"], incidents=inputs["incidents"],
                       review_threshold=args.review_threshold, block_threshold=args.block_threshold, k=args.k,
                       cost_per_alert=args.cost_per_alert, cost_per_block=args.cost_per_block)
        for name, scores in aligned.items()
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plots = write_plots(out, {name: (inputs["y"], scores) for name, scores in aligned.items()})
        (out / "evaluation.json").write_text(json.dumps(results, indent=1))
        (out / "report.md").write_text(render_markdown(results, plots, title=args.title, level=1) + "\n")
    print(json.dumps({name: headline(r) for name, r in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
