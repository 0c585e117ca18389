"""Drift statistics over plain arrays (numpy only).

Training stores a ``ReferenceHistogram`` per feature and for the score in the model
manifest; monitoring bins recent served values with the same edges and compares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def score_histogram(scores: np.ndarray, bins: int = 20) -> ReferenceHistogram:
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
