"""Thresholds chosen from calibrated validation scores: review within the analysts' daily
budget, block at a precision target, alert = review, explicit overrides winning."""
import json

import numpy as np
import pytest

from shared.domain.decision import Thresholds
from training.thresholds import DEFAULT_REVIEW_FRAUD_MULTIPLE, DEFAULT_REVIEW_SHARE_FLOOR, choose_thresholds

DAYS = 10


@pytest.fixture(scope="module")
def validation():
    """Calibrated-looking scores over 10 days: score = true probability, labels ~ Bernoulli."""
    rng = np.random.default_rng(7)
    n = 60_000
    p = np.where(rng.random(n) < 0.02, rng.beta(2, 2, n), rng.beta(0.5, 200, n))
    y = (rng.random(n) < p).astype(int)
    days = np.sort(rng.integers(0, DAYS, n)) + 20_000  # day numbers like floor(epoch / 86400)
    return np.round(p, 4), y, days  # rounded: ties, as isotonic plateaus give


def per_day(scores, t):
    return np.sum(scores > t) / DAYS


def test_review_threshold_is_the_lowest_within_the_daily_budget(validation):
    scores, y, days = validation
    choice = choose_thresholds(scores, y, days, review_budget_per_day=40)
    medium = choice.thresholds["medium"]
    assert per_day(scores, medium) <= 40
    lower = scores[scores < medium].max()  # one step down: the next lower distinct score
    assert per_day(scores, lower) > 40
    detail = choice.details["medium"]
    assert detail["source"] == "chosen" and detail["alerts_per_day"] == pytest.approx(per_day(scores, medium))
    assert choice.validation["days"] == DAYS


def test_block_threshold_meets_the_precision_target_with_support(validation):
    scores, y, days = validation
    choice = choose_thresholds(scores, y, days, review_budget_per_day=40, block_precision=0.85, min_block_support=20)
    high = choice.thresholds["high"]
    flagged = scores > high
    assert y[flagged].mean() >= 0.85 and y[flagged].sum() >= 20
    assert choice.details["high"]["precision"] == pytest.approx(y[flagged].mean())
    # the lowest such threshold: no lower distinct score qualifies
    for t in np.unique(scores[scores < high]):
        mask = scores > t
        assert not (y[mask].mean() >= 0.85 and y[mask].sum() >= 20)
    assert choice.thresholds["medium"] <= high <= 1


def test_alert_equals_review_and_the_result_satisfies_the_serving_invariant(validation):
    scores, y, days = validation
    choice = choose_thresholds(scores, y, days, review_budget_per_day=40)
    assert choice.thresholds["alert"] == choice.thresholds["medium"]
    assert Thresholds.resolve(choice.thresholds, {}).as_dict() == choice.thresholds
    doc = json.loads(json.dumps(choice.to_dict()))  # goes into the manifest as is
    assert set(doc["details"]) == {"high", "medium", "alert"}
    for detail in doc["details"].values():
        assert {"threshold", "source", "reason", "alerts_per_day", "precision", "recall"} <= set(detail)


def test_overrides_win_and_are_marked(validation):
    scores, y, days = validation
    choice = choose_thresholds(scores, y, days, review_budget_per_day=40,
                               overrides={"medium": 0.5, "high": 0.8, "alert": 0.7})
    assert choice.thresholds == {"high": 0.8, "medium": 0.5, "alert": 0.7}
    assert all(d["source"] == "override" for d in choice.details.values())
    partial = choose_thresholds(scores, y, days, review_budget_per_day=40, overrides={"alert": 0.9, "high": None})
    assert partial.thresholds["alert"] == 0.9 and partial.details["alert"]["source"] == "override"
    assert partial.details["medium"]["source"] == "chosen" and partial.details["high"]["source"] != "override"


def test_a_chosen_review_threshold_yields_to_a_lower_high_override(validation):
    scores, y, days = validation
    choice = choose_thresholds(scores, y, days, review_budget_per_day=1, overrides={"high": 0.3})
    assert choice.thresholds["medium"] == 0.3 == choice.thresholds["high"]
    assert any("lowered" in note for note in choice.notes)


def test_inconsistent_overrides_are_refused(validation):
    scores, y, days = validation
    with pytest.raises(ValueError, match="medium <= high"):
        choose_thresholds(scores, y, days, review_budget_per_day=40, overrides={"medium": 0.9, "high": 0.5})


def test_unreachable_precision_blocks_nothing_and_says_so():
    rng = np.random.default_rng(3)
    scores = rng.random(20_000)
    y = (rng.random(20_000) < 0.01).astype(int)  # scores carry no information
    choice = choose_thresholds(scores, y, rng.integers(0, 5, 20_000), review_budget_per_day=30)
    assert choice.thresholds["high"] == 1.0
    assert choice.details["high"]["source"] == "fallback" and choice.details["high"]["alerts_per_day"] == 0
    assert any("nothing is auto-blocked" in note for note in choice.notes)


def test_without_a_budget_twice_the_daily_fraud_is_reviewed_at_most(validation):
    scores, y, days = validation
    choice = choose_thresholds(scores, y, days, review_budget_per_day=None)
    budget = DEFAULT_REVIEW_FRAUD_MULTIPLE * y.sum() / DAYS
    assert choice.validation["review_budget_per_day"] == pytest.approx(budget)
    assert per_day(scores, choice.thresholds["medium"]) <= budget
    assert any("no review budget given" in note for note in choice.notes)
    no_fraud = choose_thresholds(scores, np.zeros_like(y), days, review_budget_per_day=None)
    assert no_fraud.validation["review_budget_per_day"] == pytest.approx(DEFAULT_REVIEW_SHARE_FLOOR * scores.size / DAYS)


def test_elapsed_days_can_be_given_instead_of_counting_distinct_days(validation):
    scores, y, days = validation
    choice = choose_thresholds(scores, y, days, review_budget_per_day=40, n_days=5.0)
    assert np.sum(scores > choice.thresholds["medium"]) / 5.0 <= 40
    assert choice.validation["days"] == 5.0


def test_a_generous_budget_reviews_everything_above_zero():
    scores = np.array([0.0, 0.0, 0.1, 0.2, 0.9])
    y = np.array([0, 0, 0, 1, 1])
    choice = choose_thresholds(scores, y, np.zeros(5), review_budget_per_day=100, min_block_support=1)
    assert choice.thresholds["medium"] == 0.0 and choice.details["medium"]["flagged"] == 3
    assert choice.thresholds["high"] == 0.1  # 0.2 and 0.9 flagged: precision 1.0


def test_weights_undo_a_down_sampling_of_legitimate_rows(validation):
    """Keeping one legitimate row in four with weight 4 chooses what the rows it stands for would:
    the same thresholds as four copies of each kept row, and the full data's reviews per day."""
    scores, y, days = validation
    keep = np.flatnonzero((y == 1) | (np.arange(y.size) % 4 == 0))
    weights = np.where(y[keep] == 1, 1.0, 4.0)
    weighted = choose_thresholds(scores[keep], y[keep], days[keep], review_budget_per_day=40, sample_weight=weights)
    copies = np.r_[keep, *[keep[y[keep] == 0]] * 3]
    repeated = choose_thresholds(scores[copies], y[copies], days[copies], review_budget_per_day=40)
    assert weighted.thresholds == repeated.thresholds
    for name, detail in weighted.details.items():
        assert detail["alerts_per_day"] == pytest.approx(repeated.details[name]["alerts_per_day"])
        assert detail["precision"] == pytest.approx(repeated.details[name]["precision"])
    unweighted = choose_thresholds(scores[keep], y[keep], days[keep], review_budget_per_day=40)
    assert unweighted.thresholds["medium"] < weighted.thresholds["medium"]  # the sample alone looks 4x quieter
    assert per_day(scores, weighted.thresholds["medium"]) == pytest.approx(
        weighted.details["medium"]["alerts_per_day"], rel=0.1)
    assert weighted.validation["weighted"] and weighted.validation["weighted_rows"] == pytest.approx(weights.sum())


@pytest.mark.parametrize("kwargs, message", [
    ({"scores": [0.1, 1.2]}, "in \\[0, 1\\]"),
    ({"overrides": {"low": 0.1}}, "unknown threshold"),
    ({"overrides": {"medium": 1.5}}, "outside"),
    ({"y": [0]}, "differ in length"),
    ({"sample_weight": [1.0, 0.0]}, "positive"),
])
def test_bad_input_is_a_value_error(kwargs, message):
    args = {"scores": [0.1, 0.2], "y": [0, 1], "days": [1, 1], "review_budget_per_day": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        choose_thresholds(args.pop("scores"), args.pop("y"), args.pop("days"), **args)
