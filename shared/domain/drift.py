"""Drift statistics over plain arrays (numpy only).

Training stores a ``ReferenceHistogram`` per feature and for the score in the model
manifest; monitoring bins recent served values with the same edges and compares.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class ReferenceHistogram:
    """Bin edges (inner edges only; the outer bins are open) and reference proportions."""

    edges: tuple[float, ...]
    proportions: tuple[float, ...]
    kind: str  # "continuous" | "binary"

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "proportions": list(self.proportions), "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ReferenceHistogram":
        return cls(tuple(d["edges"]), tuple(d["proportions"]), d["kind"])

    def counts(self, values: np.ndarray) -> np.ndarray:
        return bin_counts(values, self.edges)


def bin_counts(values: np.ndarray, edges: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Counts in len(edges)+1 bins: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), np.asarray(values, dtype=np.float64), side="left")
    return np.bincount(idx, minlength=len(edges) + 1)


def reference_histogram(values: np.ndarray, bins: int = 10) -> ReferenceHistogram:
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
    return ReferenceHistogram(tuple(float(e) for e in edges), tuple(float(p) for p in proportions), kind)


SCORE_BINS = 20  # the score histogram's bins, everywhere: training's reference, the report, the dashboard


def score_distribution(scores: Sequence[float] | np.ndarray) -> dict[str, list]:
    """Counts of scores in SCORE_BINS equal bins of [0, 1] ({"edges", "counts"}): the score
    chart of the monitoring report and of the dashboard's fallback."""
    counts, edges = np.histogram(np.asarray(scores, dtype=np.float64), bins=SCORE_BINS, range=(0.0, 1.0))
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}


def score_histogram(scores: np.ndarray, bins: int = SCORE_BINS) -> ReferenceHistogram:
    edges = np.linspace(0, 1, bins + 1)[1:-1]
    counts = bin_counts(scores, edges)
    return ReferenceHistogram(tuple(float(e) for e in edges), tuple(float(p) for p in counts / max(len(scores), 1)), "continuous")


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


@dataclass
class DriftAccumulator:
    """Streams served values into each reference histogram's bins (no rows kept)."""

    references: dict[str, ReferenceHistogram]
    n_reference: int

    def __post_init__(self) -> None:
        self.counts = {name: np.zeros(len(h.proportions), dtype=np.int64) for name, h in self.references.items()}

    def add(self, name: str, values: np.ndarray) -> None:
        self.counts[name] += bin_counts(values, self.references[name].edges)

    def report(self, warn: float, alert: float, p_alert: float = 1e-3) -> dict[str, dict[str, Any]]:
        out = {}
        for name, ref in self.references.items():
            counts = self.counts[name]
            n = int(counts.sum())
            expected = np.asarray(ref.proportions)
            psi = population_stability_index(expected, counts / n) if n else 0.0
            if ref.kind == "binary":
                test, (stat, p) = "chi_square", chi_square_binary(expected, counts)
            else:
                test, (stat, p) = "kolmogorov_smirnov", ks_from_counts(expected, counts, self.n_reference)
            status = "alert" if psi >= alert else "warn" if psi >= warn else "ok"
            out[name] = {"psi": round(psi, 6), "test": test, "statistic": round(stat, 6), "p_value": p,
                         "status": status, "test_significant": bool(n and p < p_alert), "n": n}
        return out
