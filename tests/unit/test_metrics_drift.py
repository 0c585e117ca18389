"""Metrics and drift statistics equal hand-computed values (tests/integration/test_metrics_reference.py
compares the metrics with scikit-learn's)."""
import numpy as np
import pytest

from shared.domain import metrics
from shared.domain.drift import bin_counts, population_stability_index, reference_histogram


def test_recall_at_fpr_and_top_k_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    assert metrics.recall_at_fpr(y, s, 0.0) == pytest.approx(1 / 3)
    assert metrics.recall_at_fpr(y, s, 1 / 7) == pytest.approx(2 / 3)
    days = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    # day 0 top-2: 0.9 (fraud), 0.8 (legit) -> 0.5; day 1 top-2: two 0.1 legit -> 0.0
    assert metrics.top_k_precision_per_day(y, s, days, 2) == pytest.approx(0.25)


def test_psi_by_hand():
    expected = np.array([0.25, 0.25, 0.5])
    actual = np.array([0.5, 0.25, 0.25])
    by_hand = (0.5 - 0.25) * np.log(0.5 / 0.25) + 0 + (0.25 - 0.5) * np.log(0.25 / 0.5)
    assert population_stability_index(expected, actual) == pytest.approx(by_hand)
    assert population_stability_index(expected, expected) == 0.0


def test_reference_histogram_bins_and_binary_features():
    values = np.arange(100, dtype=float)
    hist = reference_histogram(values, bins=4)
    assert hist.kind == "continuous" and len(hist.edges) == 3
    assert sum(hist.proportions) == pytest.approx(1.0)
    assert list(bin_counts([-5, 24.75, 1000], hist.edges)) == [2, 0, 0, 1]
    flags = reference_histogram(np.array([0, 0, 0, 1.0]))
    assert flags.kind == "binary" and flags.proportions == (0.75, 0.25)
