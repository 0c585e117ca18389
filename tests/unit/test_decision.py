"""Decisions: thresholds, rules that only raise risk, and reasons a person understands."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import features as F
from shared.domain.decision import DecisionPolicy, DecisionRules, RulesError, Thresholds
from shared.domain.transaction import Transaction

LAGOS = timezone(timedelta(hours=1))


def txn(amount=250000.0, hour=2, device="new_device_99", customer="C1", channel="online"):
    return Transaction("T1", customer, amount, "NGN", datetime(2026, 3, 10, hour, tzinfo=LAGOS), device, "M1",
                       "electronics", channel, "NG")


def habitual_profile():
    profile = F.CustomerProfile()
    start = datetime(2026, 2, 20, 12, tzinfo=LAGOS)
    for i in range(20):
        profile.apply(Transaction(f"H{i}", "C1", 20000.0, "NGN", start + timedelta(hours=12 * i), "D-home", "M1",
                                  "electronics", "pos", "NG"))
    return profile


@pytest.mark.parametrize("score,level,action", [(0.95, "High", "block"), (0.81, "High", "block"), (0.8, "Medium", "review"),
                                                (0.6, "Medium", "review"), (0.5, "Low", "approve"), (0.01, "Low", "approve")])
def test_risk_levels_follow_the_seeds_thresholds(score, level, action):
    verdict = DecisionPolicy().decide(txn(), score, F.transaction_features(habitual_profile(), txn()))
    assert (verdict.risk_level, verdict.action) == (level, action)
    assert verdict.is_fraud == (score > 0.7)


def test_thresholds_come_from_the_manifest_and_settings_override_them():
    t = Thresholds.resolve({"high": 0.9, "medium": 0.6, "alert": 0.75}, {"high": None, "medium": 0.4, "alert": None})
    assert (t.high, t.medium, t.alert) == (0.9, 0.4, 0.75)
    with pytest.raises(ValueError):
        Thresholds.resolve({"high": 0.3, "medium": 0.6}, {})


def test_the_seeds_example_is_explained_in_words():
    t = txn()
    verdict = DecisionPolicy().decide(t, 0.9, F.transaction_features(habitual_profile(), t))
    assert len(verdict.reasons) == 3
    text = " | ".join(verdict.reasons)
    assert "12× the 30-day average" in text
    assert "first transaction from this device" in text
    assert "02:00 is outside this customer's usual hours" in text


def test_low_risk_has_no_reasons():
    t = txn(amount=20000.0, hour=12, device="D-home")
    verdict = DecisionPolicy().decide(t, 0.05, F.transaction_features(habitual_profile(), t))
    assert verdict.reasons == () and verdict.action == "approve"


def test_rules_raise_risk_and_say_which_fired():
    rules = DecisionRules.from_json('{"block_devices": ["new_device_99"], "channel_ceilings": {"online": 100000}}')
    t = txn()
    verdict = DecisionPolicy(rules=rules).decide(t, 0.01, F.transaction_features(habitual_profile(), t))
    assert verdict.risk_level == "High" and verdict.action == "block" and verdict.is_fraud
    assert verdict.rules_fired == ("blocked_device", "ceiling_online")
    assert verdict.reasons[0].startswith("rule blocked_device")


def test_a_ceiling_rule_never_lowers_a_high_score():
    rules = DecisionRules.from_json('{"channel_ceilings": {"online": 100000}, "ceiling_risk": "Medium"}')
    t = txn()
    verdict = DecisionPolicy(rules=rules).decide(t, 0.97, F.transaction_features(habitual_profile(), t))
    assert verdict.risk_level == "High" and "ceiling_online" in verdict.rules_fired


@pytest.mark.parametrize("doc", ["{", "[]", '{"block_everyone": true}', '{"channel_ceilings": {"atm": -1}}',
                                 '{"ceiling_risk": "Severe"}'])
def test_invalid_rules_are_an_error_not_ignored(doc):
    with pytest.raises(RulesError):
        DecisionRules.from_json(doc)
