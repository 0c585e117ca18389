"""The retention cut-offs: what is old enough to go as of a moment, and the floors no setting may go below."""
from datetime import date, datetime, timedelta, timezone

import pytest

from shared.config import FraudConfig
from shared.domain.features import DAY, RINGS
from shared.domain.retention import (CHARGEBACK_DAYS, LONGEST_FEATURE_WINDOW_DAYS, MAX_REDELIVERY_DAYS,
                                     RetentionPolicy, RetentionTooShort, letter_day)
from shared.domain.dead_letter import DeadLetter

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=timezone.utc)


def test_each_cutoff_is_now_minus_its_retention():
    cutoffs = RetentionPolicy(audit_days=180, dead_letter_days=30, label_days=400, profile_inactive_days=90).cutoffs(NOW)
    assert cutoffs.audit == NOW - timedelta(days=180)
    assert cutoffs.dead_letters == NOW - timedelta(days=30)
    assert cutoffs.labels == NOW - timedelta(days=400)
    assert cutoffs.profiles == NOW - timedelta(days=90)


def test_the_hour_holding_the_audit_cutoff_is_kept_whole():
    cutoffs = RetentionPolicy(audit_days=180).cutoffs(NOW)
    assert cutoffs.audit_hour == "2026052401"  # the cut-off is 2026-05-24 01:30 UTC
    assert cutoffs.hour_expired("2026052400") and not cutoffs.hour_expired("2026052401")
    assert not cutoffs.hour_expired("2026112001")


def test_a_local_now_gives_the_same_utc_cutoffs():
    lagos = timezone(timedelta(hours=1))
    policy = RetentionPolicy()
    assert policy.cutoffs(NOW.astimezone(lagos)) == policy.cutoffs(NOW)
    with pytest.raises(ValueError):
        policy.cutoffs(datetime(2026, 11, 20, 1, 30))


def test_dead_letters_go_by_the_whole_day_they_are_filed_under():
    cutoffs = RetentionPolicy(dead_letter_days=30).cutoffs(NOW)  # cut-off 2026-10-21 01:30
    assert cutoffs.dead_letter_day == date(2026, 10, 21)
    assert cutoffs.letter_expired("2026/10/20/eventhub-abc.json")
    assert not cutoffs.letter_expired("2026/10/21/eventhub-abc.json")  # partly inside the window: kept
    assert not cutoffs.letter_expired("misc/readme.json") and not cutoffs.letter_expired("2026/13/01/x.json")


def test_the_letter_day_is_the_one_the_dead_letter_is_named_by():
    letter = DeadLetter(b"x", [], "eventhub", {"partition": "1", "sequence_number": 5,
                                               "enqueued_time": "2026-10-02T23:59:00+00:00"})
    assert letter_day(letter.blob_name(NOW)) == date(2026, 10, 2)
    assert letter_day(DeadLetter(b"x", [], "http").blob_name(NOW)) == date(2026, 11, 20)


def test_the_floors_follow_from_the_features_chargebacks_and_redelivery():
    assert LONGEST_FEATURE_WINDOW_DAYS == max(w * n for _, w, n in RINGS) / DAY == 30
    with pytest.raises(RetentionTooShort, match="chargebacks"):
        RetentionPolicy(audit_days=CHARGEBACK_DAYS - 1)
    with pytest.raises(RetentionTooShort, match="redeliver"):
        RetentionPolicy(profile_inactive_days=MAX_REDELIVERY_DAYS - 1)
    with pytest.raises(RetentionTooShort):
        RetentionPolicy(dead_letter_days=0)
    with pytest.raises(RetentionTooShort):
        RetentionPolicy(label_days=-1)
    RetentionPolicy(audit_days=CHARGEBACK_DAYS, profile_inactive_days=MAX_REDELIVERY_DAYS, dead_letter_days=1, label_days=1)


def test_the_default_settings_pass_the_floors_with_the_margins_the_readme_gives():
    config = FraudConfig.from_env({})
    policy = RetentionPolicy(config.audit_retention_days, config.dead_letter_retention_days,
                             config.label_retention_days, config.profile_inactive_days)
    assert policy.audit_days >= CHARGEBACK_DAYS + 60  # a label file reaches the bank, then the join, weeks later
    assert policy.label_days >= 365 and policy.label_days >= policy.audit_days  # a year of labels for training
    assert policy.profile_inactive_days >= max(MAX_REDELIVERY_DAYS, LONGEST_FEATURE_WINDOW_DAYS)
