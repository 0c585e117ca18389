"""Drift statistics over plain arrays (numpy only).

Training stores a ``ReferenceHistogram`` per feature and for the score in the model
manifest; monitoring bins recent served values with the same edges and compares.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

PSI_EPSILON = 1e-4


CALENDAR_STRATA = 48  # hour of the day (local, as the features see it) x weekday/weekend
STRATUM_PRIOR_ROWS = 10.0  # a sparse stratum's histogram leans on a coarser one, as if it had this many rows of it


def calendar_strata(hour_of_day: np.ndarray, is_weekend: np.ndarray) -> np.ndarray:
    """Each row's calendar stratum, from the served features themselves (so training and
    monitoring cannot disagree on time zones): ``hour * 2 + weekend``."""
    hours = np.clip(np.asarray(hour_of_day, dtype=np.float64), 0, 23).astype(np.int64)
    return hours * 2 + (np.asarray(is_weekend, dtype=np.float64) > 0.5)


@dataclass(frozen=True)
class ReferenceHistogram:
    """Bin edges (inner edges only; the outer bins are open), reference proportions, and
    (optionally) the reference's bin counts per calendar stratum, so a window can be
    compared with a reference holding the same mix of hours and weekdays."""

    edges: tuple[float, ...]
    proportions: tuple[float, ...]
    kind: str  # "continuous" | "binary"
    strata: tuple[tuple[int, ...], ...] | None = None  # CALENDAR_STRATA rows of bin counts
    natural_psi: float | None = None  # the largest PSI of one reference day against the other days

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"edges": list(self.edges), "proportions": list(self.proportions), "kind": self.kind}
        if self.strata is not None:
            d["strata"] = [list(row) for row in self.strata]
        if self.natural_psi is not None:
            d["natural_psi"] = self.natural_psi
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ReferenceHistogram":
        strata = d.get("strata")
        return cls(tuple(d["edges"]), tuple(d["proportions"]), d["kind"],
                   tuple(tuple(int(c) for c in row) for row in strata) if strata else None, d.get("natural_psi"))

    def counts(self, values: np.ndarray) -> np.ndarray:
        return bin_counts(values, self.edges)

    def expected(self, stratum_rows: np.ndarray | None) -> np.ndarray:
        """The reference's proportions reweighted to a window's rows per calendar stratum;
        a sparse stratum's histogram leans on its day type's (weekday or weekend, all hours),
        which leans on the overall one. The plain proportions without strata."""
        overall = np.asarray(self.proportions, dtype=np.float64)
        if self.strata is None or stratum_rows is None or not np.sum(stratum_rows):
            return overall
        counts = np.asarray(self.strata, dtype=np.float64)
        day_types = np.stack([counts[weekend::2].sum(axis=0) for weekend in (0, 1)])
        day_types = _shrink(day_types, overall)
        per_stratum = _shrink(counts, day_types[np.arange(CALENDAR_STRATA) % 2])
        weights = np.asarray(stratum_rows, dtype=np.float64)
        return (weights / weights.sum()) @ per_stratum


def _shrink(counts: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Rows of bin counts as proportions, each pulled towards its ``prior`` row as if it had
    STRATUM_PRIOR_ROWS more rows drawn from it."""
    return (counts + STRATUM_PRIOR_ROWS * prior) / (counts.sum(axis=1, keepdims=True) + STRATUM_PRIOR_ROWS)

def bin_counts(values: np.ndarray, edges: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Counts in len(edges)+1 bins: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), np.asarray(values, dtype=np.float64), side="left")
    return np.bincount(idx, minlength=len(edges) + 1)


def _strata_table(values: np.ndarray, edges: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Bin counts per calendar stratum: CALENDAR_STRATA rows, len(edges) + 1 columns."""
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), np.asarray(values, dtype=np.float64), side="left")
    table = np.zeros((CALENDAR_STRATA, len(edges) + 1), dtype=np.int64)
    np.add.at(table, (np.asarray(strata, dtype=np.int64), idx), 1)
    return table


def _as_rows(table: np.ndarray) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(c) for c in row) for row in table)


def _strata_counts(values: np.ndarray, edges: np.ndarray, strata: np.ndarray | None) -> tuple | None:
    return None if strata is None else _as_rows(_strata_table(values, edges, strata))


def reference_histogram(values: np.ndarray, bins: int = 10, strata: np.ndarray | None = None,
                        days: np.ndarray | None = None, min_expected_per_bin: float = 20.0) -> ReferenceHistogram:
    """Decile bins of ``values`` (two bins for a binary feature); with ``strata`` (see
    ``calendar_strata``) also the counts per calendar stratum, and with ``days`` as well
    the feature's natural day-to-day PSI (see ``natural_psi``)."""
    values = np.asarray(values, dtype=np.float64)
    distinct = np.unique(values)
    if distinct.size <= 2:
        edges = distinct[:-1] if distinct.size == 2 else np.asarray([], dtype=np.float64)
        kind = "binary"
    else:
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        kind = "continuous"
    counts = bin_counts(values, edges)
    proportions = counts / max(values.size, 1)
    histogram = ReferenceHistogram(tuple(float(e) for e in edges), tuple(float(p) for p in proportions), kind,
                                   _strata_counts(values, np.asarray(edges, dtype=np.float64), strata))
    if strata is None or days is None:
        return histogram
    return replace(histogram, natural_psi=natural_psi(histogram, values, strata, days, min_expected_per_bin))


def natural_psi(reference: ReferenceHistogram, values: np.ndarray, strata: np.ndarray, days: np.ndarray,
                min_expected_per_bin: float = 20.0) -> float | None:
    """How far one ordinary day moves from the rest: the largest PSI of a reference day
    against the reference without that day (calendar-matched, sparse bins merged). Rows
    that share a value (a merchant's aggregates, a burst of fraud) make a feature's daily
    PSI large without any change in the population; monitoring alarms above this level."""
    assert reference.strata is not None
    days, values, strata = np.asarray(days), np.asarray(values), np.asarray(strata)
    table = np.asarray(reference.strata, dtype=np.int64)
    largest = None
    for day in np.unique(days):
        on_day = days == day
        day_table = _strata_table(values[on_day], reference.edges, strata[on_day])
        rest = table - day_table
        if rest.sum() == 0:
            continue
        others = ReferenceHistogram(reference.edges, tuple(rest.sum(axis=0) / rest.sum()), reference.kind, _as_rows(rest))
        counts = day_table.sum(axis=0)
        psi = merged_psi(others.expected(day_table.sum(axis=1)), counts, min_expected_per_bin)[3]
        if psi is not None:
            largest = psi if largest is None else max(largest, psi)
    return None if largest is None else round(float(largest), 6)


SCORE_BINS = 20  # the score histogram's bins, everywhere: training's reference, the report, the dashboard


def score_distribution(scores: Sequence[float] | np.ndarray) -> dict[str, list]:
    """Counts of scores in SCORE_BINS equal right-closed bins of [0, 1] (the first closed; like
    ``bin_counts``) ({"edges", "counts"}): the score chart of the monitoring report and of the
    dashboard's fallback."""
    edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    index = np.clip(np.searchsorted(edges[1:-1], np.asarray(scores, dtype=np.float64), side="left"), 0, SCORE_BINS - 1)
    counts = np.bincount(index, minlength=SCORE_BINS)
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def score_histogram(scores: np.ndarray, bins: int = SCORE_BINS, strata: np.ndarray | None = None) -> ReferenceHistogram:
    edges = np.linspace(0, 1, bins + 1)[1:-1]
    counts = bin_counts(scores, edges)
    return ReferenceHistogram(tuple(float(e) for e in edges), tuple(float(p) for p in counts / max(len(scores), 1)),
                              "continuous", _strata_counts(np.asarray(scores, dtype=np.float64), edges, strata))


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI between two proportion vectors over the same bins (small epsilon for empty bins)."""
    e = np.clip(np.asarray(expected, dtype=np.float64), PSI_EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), PSI_EPSILON, None)
    e = e / e.sum()
    a = a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def ks_from_counts(expected_proportions: np.ndarray, actual_counts: np.ndarray, n_reference: int) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic on binned CDFs, with its asymptotic p-value.

    Binning makes the statistic a lower bound of the exact one; with decile bins it still
    detects shifts of location and scale, which is what drift monitoring needs.
    """
    actual = np.asarray(actual_counts, dtype=np.float64)
    n = actual.sum()
    if n == 0 or n_reference == 0:
        return 0.0, 1.0
    d = float(np.max(np.abs(np.cumsum(expected_proportions) - np.cumsum(actual / n))))
    effective = n * n_reference / (n + n_reference)
    lam = (math.sqrt(effective) + 0.12 + 0.11 / math.sqrt(effective)) * d
    if lam < 1e-3:
        return d, 1.0
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, float(min(max(p, 0.0), 1.0))


def chi_square_binary(expected_proportions: np.ndarray, actual_counts: np.ndarray) -> tuple[float, float]:
    """Goodness-of-fit chi-square of observed counts against reference proportions (df = bins-1).

    p-value exact for df = 1 (binary features) via erfc; for more bins, Wilson-Hilferty.
    """
    observed = np.asarray(actual_counts, dtype=np.float64)
    n = observed.sum()
    if n == 0:
        return 0.0, 1.0
    expected = np.clip(np.asarray(expected_proportions, dtype=np.float64), PSI_EPSILON, None)
    expected = expected / expected.sum() * n
    stat = float(np.sum((observed - expected) ** 2 / expected))
    df = max(len(observed) - 1, 1)
    if df == 1:
        return stat, float(math.erfc(math.sqrt(stat / 2)))
    z = ((stat / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return stat, float(0.5 * math.erfc(z / math.sqrt(2)))


def merge_sparse_bins(expected: np.ndarray, observed: np.ndarray, min_expected: float) -> list[list[int]]:
    """Groups of adjacent bins, left to right, each expecting at least ``min_expected`` rows
    (a short remainder joins the last group): a PSI or test over bins expected to hold a
    handful of rows measures noise."""
    groups: list[list[int]] = []
    current: list[int] = []
    mass = 0.0
    for i, e in enumerate(np.asarray(expected, dtype=np.float64)):
        current.append(i)
        mass += e
        if mass >= min_expected:
            groups.append(current)
            current, mass = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def merged_psi(expected: np.ndarray, counts: np.ndarray, min_expected: float
               ) -> tuple[list[list[int]], np.ndarray, np.ndarray, float | None]:
    """PSI of ``counts`` against ``expected`` proportions over bins merged until each expects
    ``min_expected`` rows: (groups, reference shares, current counts, PSI or None when fewer
    than two bins are left)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    groups = merge_sparse_bins(expected * n, counts, min_expected)
    ref = np.asarray([expected[g].sum() for g in groups])
    cur = np.asarray([counts[g].sum() for g in groups])
    psi = population_stability_index(ref, cur / n) if n and len(groups) >= 2 else None
    return groups, ref, cur, psi


def _interval(edges: tuple[float, ...], group: list[int]) -> str:
    low = "-inf" if group[0] == 0 else f"{edges[group[0] - 1]:.4g}"
    high = "inf" if group[-1] >= len(edges) else f"{edges[group[-1]]:.4g}"
    return f"({low}, {high}]"


@dataclass(frozen=True)
class DriftRule:
    """When a feature's window counts as drifted."""

    psi_warn: float = 0.1
    psi_alert: float = 0.2
    min_expected_per_bin: float = 20.0
    p_alert: float = 1e-3
    excluded: dict[str, str] | None = None  # feature -> why it is reported but never alarms

    natural_margins: tuple[float, float] = (2.0, 3.0)  # warn, alert above these multiples of the natural PSI

    def limits(self, natural: float | None) -> tuple[float, float]:
        """(warn, alert) PSI for a feature whose ordinary days differ by ``natural``."""
        natural = natural or 0.0
        return (max(self.psi_warn, self.natural_margins[0] * natural),
                max(self.psi_alert, self.natural_margins[1] * natural))

    def status(self, name: str, psi: float | None, natural: float | None = None) -> str:
        if psi is None:
            return "insufficient"
        if self.excluded and name in self.excluded:
            return "excluded"
        warn, alert = self.limits(natural)
        return "alert" if psi >= alert else "warn" if psi >= warn else "ok"


def compare(name: str, reference: ReferenceHistogram, counts: np.ndarray, stratum_rows: np.ndarray | None,
            n_reference: int, rule: DriftRule) -> dict[str, Any]:
    """One feature's window ``counts`` against its reference reweighted to the window's
    calendar mix: PSI and a test over bins merged to ``rule.min_expected_per_bin``, and the
    two histograms (what moved)."""
    counts = np.asarray(counts, dtype=np.float64)
    n = int(counts.sum())
    groups, ref, cur, psi = merged_psi(reference.expected(stratum_rows), counts, rule.min_expected_per_bin)
    out: dict[str, Any] = {"n": n, "bins": len(groups), "calendar_matched": stratum_rows is not None
                           and reference.strata is not None}
    stat, p, test = None, None, None
    if psi is None:
        out["reason"] = (f"{n} rows: fewer than two bins expect {rule.min_expected_per_bin:g}+ rows"
                         if n else "no rows in the window")
    else:
        if reference.kind == "binary" or len(groups) == 2:
            test, (stat, p) = "chi_square", chi_square_binary(ref, cur)
        else:
            test, (stat, p) = "kolmogorov_smirnov", ks_from_counts(ref, cur, n_reference)
    status = rule.status(name, psi, reference.natural_psi)
    warn_at, alert_at = rule.limits(reference.natural_psi)
    out.update({"warn_at": round(warn_at, 4), "alert_at": round(alert_at, 4), "natural_psi": reference.natural_psi})
    if status == "excluded":
        out["reason"] = rule.excluded[name]  # type: ignore[index]
    shares = cur / n if n else cur
    moved = int(np.argmax(np.abs(shares - ref))) if n else 0
    out.update({
        "psi": None if psi is None else round(psi, 6), "test": test,
        "statistic": None if stat is None else round(stat, 6), "p_value": p, "status": status,
        "test_significant": bool(p is not None and p < rule.p_alert),
        "histogram": {"bins": [_interval(reference.edges, g) for g in groups],
                      "reference": [round(float(v), 4) for v in ref], "current": [round(float(v), 4) for v in shares]},
    })
    if n:
        out["moved"] = (f"{_interval(reference.edges, groups[moved])}: {ref[moved]:.1%} of the reference, "
                        f"{shares[moved]:.1%} of the window")
    return out


@dataclass
class DriftAccumulator:
    """Streams served values into each reference histogram's bins, and the rows' calendar
    strata, so the window is compared with a reference of the same hours and weekdays."""

    references: dict[str, ReferenceHistogram]
    n_reference: int

    def __post_init__(self) -> None:
        self.counts = {name: np.zeros(len(h.proportions), dtype=np.int64) for name, h in self.references.items()}
        self.stratum_rows = np.zeros(CALENDAR_STRATA, dtype=np.int64)

    def add(self, columns: dict[str, np.ndarray], strata: np.ndarray | None) -> None:
        """``columns``: values per reference name (rows aligned); ``strata``: their calendar strata."""
        for name, values in columns.items():
            self.counts[name] += bin_counts(values, self.references[name].edges)
        if strata is not None:
            self.stratum_rows += np.bincount(np.asarray(strata, dtype=np.int64), minlength=CALENDAR_STRATA)

    def report(self, rule: DriftRule) -> dict[str, dict[str, Any]]:
        weights = self.stratum_rows if self.stratum_rows.sum() else None
        return {name: compare(name, ref, self.counts[name], weights, self.n_reference, rule)
                for name, ref in self.references.items()}
