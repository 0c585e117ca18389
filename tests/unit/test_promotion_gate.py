"""The champion/challenger gate, pure: refusals for a misplaced holdout, a doubled alert volume,
worse calibration and no ranking gain; a genuine winner promoted; every figure recorded."""
import json

import numpy as np
import pytest

from shared.domain import metrics
from shared.domain.promotion import (
    DAY, Contender, Holdout, HoldoutPlacement, PromotionGate, TimeWindows, champion_training_end,
)

DAYS = 10
GATE = PromotionGate(min_ap_gain=0.005, max_alert_ratio=1.25, max_ece_increase=0.01, k=20)


@pytest.fixture(scope="module")
def evidence():
    """A holdout whose true fraud probability the challenger knows (calibrated, sharp) and the
    champion only through noise (less sharp)."""
    rng = np.random.default_rng(0)
    n = 20_000
    z = rng.normal(size=n)
    truth = 1 / (1 + np.exp(5 - 2 * z))
    y = (rng.random(n) < truth).astype(int)
    days = np.sort(rng.integers(0, DAYS, n)) + 20_000
    customers = rng.integers(0, 300, n).astype(str)
    blurred = 1 / (1 + np.exp(5.5 - 1.4 * (z + rng.normal(size=n))))
    return Holdout(y, days, customers), truth, blurred


def review_threshold(scores, alerts_per_day):
    """The threshold that sends this many reviews a day on the holdout (score > threshold)."""
    return float(np.sort(scores)[::-1][int(alerts_per_day * DAYS)])


def contenders(evidence, challenger_alerts=40.0, champion_alerts=40.0, transform=lambda s: s):
    holdout, truth, blurred = evidence
    new_scores = transform(truth)
    challenger = Contender("new", new_scores, {"medium": review_threshold(new_scores, challenger_alerts),
                                               "high": float(transform(np.array(0.9)))})
    champion = Contender("old", blurred, {"medium": review_threshold(blurred, champion_alerts), "high": 0.9})
    return holdout, challenger, champion


def placement(holdout_start_day, challenger_end_day, champion_end_day, delay=7.0):
    return HoldoutPlacement(holdout_start_day * DAY, (holdout_start_day + DAYS) * DAY, challenger_end_day * DAY,
                            None if champion_end_day is None else champion_end_day * DAY, "windows", delay)


def test_a_genuine_winner_is_promoted_with_every_figure_recorded(evidence):
    holdout, challenger, champion = contenders(evidence)
    decision = GATE.judge(holdout, challenger, champion, placement(100, 93, 95))
    assert decision["promoted"] and decision["failed"] == [] and decision["reason"].startswith("promoted: average precision +")
    json.dumps(decision)  # JSON-able as it is, for the manifest
    for side, model in (("challenger", challenger), ("champion", champion)):
        figures = decision[side]
        assert figures["version"] == model.version
        assert figures["average_precision"] == pytest.approx(metrics.average_precision(holdout.y, model.scores))
        assert figures["card_precision_at_k"] == pytest.approx(
            metrics.card_precision_at_k_per_day(holdout.customers, holdout.days, model.scores, holdout.y, 20))
        assert figures["ece"] == pytest.approx(metrics.expected_calibration_error(holdout.y, model.scores))
        assert figures["review"]["alerts_per_day"] == pytest.approx(40.0)
        assert figures["review"]["threshold"] == model.thresholds["medium"]
        assert figures["block"]["threshold"] == model.thresholds["high"]
        assert {"precision", "recall", "flagged"} <= set(figures["review"]) and "recall" in figures["block"]
    assert set(decision["checks"]) == {"challenger_training_before_holdout", "holdout_after_champion_training",
                                       "average_precision_gain", "card_precision_not_worse", "calibration_not_worse",
                                       "alert_budget"}
    ap = decision["checks"]["average_precision_gain"]
    assert ap["gain"] == pytest.approx(decision["challenger"]["average_precision"] - decision["champion"]["average_precision"])
    assert decision["checks"]["alert_budget"]["budget"] == pytest.approx(50.0)
    assert decision["checks"]["challenger_training_before_holdout"]["gap_days"] == pytest.approx(7.0)
    assert decision["holdout"] == {"rows": holdout.y.size, "fraud": int(holdout.y.sum()), "days": DAYS, "customers": 300}
    assert decision["windows"]["gap_days"] == pytest.approx(7.0) and decision["policy"]["k"] == 20


@pytest.mark.parametrize("challenger_end_day, why", [
    (102, "overlaps the challenger's training data"),
    (100.5, "overlaps the challenger's training data"),
    (96, "within the label delay of 7 days"),
])
def test_a_holdout_overlapping_or_within_a_label_delay_of_the_challengers_training_is_refused(evidence,
                                                                                             challenger_end_day, why):
    holdout, challenger, champion = contenders(evidence)
    decision = GATE.judge(holdout, challenger, champion, placement(100, challenger_end_day, 90))
    assert not decision["promoted"] and decision["failed"] == ["challenger_training_before_holdout"]
    assert why in decision["reason"]
    # the comparison itself is still recorded in full
    assert decision["checks"]["average_precision_gain"]["passed"] and decision["champion"]["average_precision"]


def test_a_holdout_starting_before_the_champions_training_end_is_refused(evidence):
    holdout, challenger, champion = contenders(evidence)
    decision = GATE.judge(holdout, challenger, champion, placement(100, 93, 101))
    assert not decision["promoted"] and decision["failed"] == ["holdout_after_champion_training"]
    assert "before the champion's training end" in decision["reason"]
    assert decision["checks"]["holdout_after_champion_training"]["margin_days"] == pytest.approx(-1.0)


def test_an_unknown_champion_training_end_is_refused_and_said(evidence):
    holdout, challenger, champion = contenders(evidence)
    unknown = HoldoutPlacement(100 * DAY, 110 * DAY, 93 * DAY, None, "unknown: no windows", 7.0)
    decision = GATE.judge(holdout, challenger, champion, unknown)
    assert decision["failed"] == ["holdout_after_champion_training"] and "unknown: no windows" in decision["reason"]


def test_a_challenger_that_wins_on_ap_but_doubles_alerts_per_day_is_refused(evidence):
    holdout, challenger, champion = contenders(evidence, challenger_alerts=80.0)
    decision = GATE.judge(holdout, challenger, champion, placement(100, 93, 95))
    assert decision["checks"]["average_precision_gain"]["passed"]  # it does rank better
    assert not decision["promoted"] and decision["failed"] == ["alert_budget"]
    budget = decision["checks"]["alert_budget"]
    assert budget["challenger"] == pytest.approx(80.0) and budget["champion"] == pytest.approx(40.0)
    assert "above the budget of 50.0" in decision["reason"]


def test_a_configured_capacity_is_the_budget_with_or_without_a_champion(evidence):
    holdout, challenger, champion = contenders(evidence, challenger_alerts=80.0)
    capacity = PromotionGate(k=20, max_alerts_per_day=100.0)
    assert capacity.judge(holdout, challenger, champion)["promoted"]  # twice the champion's, within capacity
    tight = PromotionGate(k=20, max_alerts_per_day=30.0)
    assert tight.judge(holdout, challenger, champion)["failed"] == ["alert_budget"]
    alone = tight.judge(holdout, challenger, None, placement(100, 93, None))
    assert not alone["promoted"] and "above the budget of 30.0 (the configured analysts' capacity)" in alone["reason"]


def test_a_champion_sending_no_reviews_gives_no_relative_budget(evidence):
    holdout, challenger, champion = contenders(evidence)
    silent = Contender("silent", champion.scores, {"medium": 1.0, "high": 1.0})
    budget = GATE.judge(holdout, challenger, silent)["checks"]["alert_budget"]
    assert budget["passed"] and budget["budget"] is None and "no budget relative to it" in budget["detail"]


def test_worse_calibration_is_refused_even_with_the_same_ranking_gain(evidence):
    # the square root keeps the challenger's ranking (and alerts, thresholds moved alike) but
    # overstates every probability
    holdout, challenger, champion = contenders(evidence, transform=np.sqrt)
    decision = GATE.judge(holdout, challenger, champion, placement(100, 93, 95))
    assert decision["checks"]["average_precision_gain"]["passed"] and decision["checks"]["alert_budget"]["passed"]
    assert not decision["promoted"] and decision["failed"] == ["calibration_not_worse"]
    assert decision["challenger"]["ece"] > decision["champion"]["ece"] + 0.01


def test_no_ranking_gain_is_refused(evidence):
    holdout, _, champion = contenders(evidence)
    same = Contender("same", champion.scores, champion.thresholds)
    decision = GATE.judge(holdout, same, champion)
    assert not decision["promoted"] and decision["failed"] == ["average_precision_gain"]
    assert "average precision +0.0000" in decision["reason"] and "below the required 0.005" in decision["reason"]
    worse = GATE.judge(holdout, champion, Contender("better", evidence[1], {"medium": 0.2, "high": 0.9}))
    assert {"average_precision_gain", "card_precision_not_worse"} <= set(worse["failed"])


def test_shadow_evidence_is_judged_without_windows(evidence):
    holdout, challenger, champion = contenders(evidence)
    decision = GATE.judge(holdout, challenger, champion)
    assert decision["promoted"] and decision["windows"] is None
    assert "challenger_training_before_holdout" not in decision["checks"]


def test_without_a_champion_a_valid_holdout_promotes_and_says_why(evidence):
    holdout, challenger, _ = contenders(evidence)
    decision = GATE.judge(holdout, challenger, None, placement(100, 93, None))
    assert decision["promoted"] and decision["champion"] is None
    assert decision["reason"].startswith("no compatible champion; promoted on a valid holdout")
    assert set(decision["checks"]) == {"challenger_training_before_holdout", "alert_budget"}
    assert not GATE.judge(holdout, challenger, None, placement(100, 95, None))["promoted"]


def test_the_champions_training_end_comes_from_its_windows_else_its_creation():
    windows = TimeWindows(0.0, 10 * DAY, 17 * DAY, 20 * DAY)
    assert windows.to_dict()["gap_days"] == 7.0 and TimeWindows.from_dict(windows.to_dict()) == windows
    assert champion_training_end({"windows": windows.to_dict(), "created_at": "2030-01-01T00:00:00+00:00"}) == (
        10 * DAY, "windows")
    end, source = champion_training_end({"created_at": "1970-01-02T00:00:00+00:00"})
    assert end == DAY and source.startswith("created_at")
    assert champion_training_end({"version": "old"})[0] is None


def test_ece_is_the_row_weighted_gap_of_the_reliability_bins():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    s = np.array([0.1, 0.1, 0.3, 0.3, 0.6, 0.6, 0.9, 0.9])
    assert metrics.expected_calibration_error(y, s) == pytest.approx((2 * 0.1 + 2 * 0.2 + 2 * 0.1 + 2 * 0.1) / 8)
    assert metrics.expected_calibration_error([], []) is None
    assert sum(b["rows"] for b in metrics.reliability_bins(y, s, 5)) == 8
