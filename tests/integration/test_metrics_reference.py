"""The numpy metrics of the scoring and monitoring path equal scikit-learn's (the reference)."""
import numpy as np
import pytest
from sklearn import metrics as skm

from shared.domain import metrics


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
