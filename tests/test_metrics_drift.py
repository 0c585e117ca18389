"""numpy metrics equal scikit-learn's; drift statistics equal hand-computed values."""
import numpy as np
import pytest
from sklearn import metrics as skm

from shared.domain import metrics
from shared.domain.drift import bin_counts, population_stability_index, reference_histogram


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.05).astype(int)
    scores = np.clip(rng.normal(0.2 + 0.5 * y, 0.2), 0, 1).round(3)  # ties on purpose
    return y, scores


def test_roc_auc_and_average_precision_match_scikit_learn(sample):
    y, s = sample
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert metrics.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


def test_threshold_report_matches_confusion_matrix(sample):
    y, s = sample
    r = metrics.threshold_report(y, s, 0.5)
    tn, fp, fn, tp = skm.confusion_matrix(y, s > 0.5).ravel()
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (tp, fp, fn, tn)
    assert r["precision"] == pytest.approx(skm.precision_score(y, s > 0.5))
    assert r["recall"] == pytest.approx(skm.recall_score(y, s > 0.5))
    assert r["f1"] == pytest.approx(skm.f1_score(y, s > 0.5))


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
