"""The retrain's split, pure: the holdout is the newest period, after the champion's training
end, never down-sampled; the challenger's rows end a label delay before it; the row cap
samples legitimate training rows only, and their weights undo the sampling; served decisions
enter once matured."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fakes import FakeModelRegistry
from shared.domain.decision_record import pack_features
from shared.domain.features import FEATURE_NAMES
from shared.domain.promotion import DAY
from training.retrain import NothingToJudge, RetrainConfig, retrain, sample_legitimate, split_for_promotion


@pytest.fixture(scope="module")
def rows():
    """60 days of time-ordered rows, 3% fraud."""
    rng = np.random.default_rng(5)
    times = np.sort(rng.uniform(0, 60 * DAY, 30_000))
    return (rng.random(times.size) < 0.03).astype(np.int8), times


def test_the_holdout_is_never_down_sampled_and_keeps_its_base_rate(rows):
    y, times = rows
    split = split_for_promotion(y, times, None, RetrainConfig(max_rows=2_000, label_delay_days=7.0))
    holdout_rows = np.flatnonzero(times >= split.windows.test_start)
    kept = split.rows[times[split.rows] >= split.windows.test_start]
    assert np.array_equal(kept, holdout_rows)  # every holdout row, none sampled away
    assert split.summary["holdout_base_rate"] == pytest.approx(y[holdout_rows].mean())
    assert holdout_rows.size == pytest.approx(0.2 * y.size, rel=0.01)
    assert np.all(split.weights[-holdout_rows.size:] == 1.0)
    assert split.summary["training_rows"] == 2_000 < split.summary["training_rows_before_cap"]


def test_the_challengers_rows_end_a_label_delay_before_the_holdout(rows):
    y, times = rows
    split = split_for_promotion(y, times, None, RetrainConfig(label_delay_days=7.0))
    w = split.windows
    assert w.test_start - w.train_end == pytest.approx(7 * DAY)
    used = times[split.rows]
    assert np.all((used < w.train_end) | (used >= w.test_start))  # nothing from the gap
    assert used[used < w.test_start].max() < w.train_end
    gap = np.sum((times >= w.train_end) & (times < w.test_start))
    assert split.summary["gap_rows_unused"] == gap > 0
    assert split.rows.size == times.size - gap and np.all(np.diff(used) >= 0)


def test_the_holdout_starts_at_the_champions_training_end_when_that_is_later(rows):
    y, times = rows
    champion_end = 55 * DAY  # later than the newest 20% (from day ~48)
    split = split_for_promotion(y, times, champion_end, RetrainConfig(label_delay_days=7.0))
    assert split.windows.test_start == champion_end and split.summary["holdout_moved_to_champion_training_end"]
    assert split.windows.train_end == 48 * DAY
    earlier = split_for_promotion(y, times, 10 * DAY, RetrainConfig())
    assert earlier.windows.test_start == pytest.approx(np.quantile(times, 0.8))


def test_nothing_after_the_champions_training_end_is_nothing_to_judge(rows):
    y, times = rows
    with pytest.raises(NothingToJudge, match="after the champion's training end"):
        split_for_promotion(y, times, 61 * DAY, RetrainConfig())
    with pytest.raises(NothingToJudge, match="no fraud in the rows more than"):
        split_for_promotion(np.r_[np.zeros(25_000, np.int8), y[25_000:]], times, None, RetrainConfig())


def test_weights_undo_the_sampling_of_legitimate_rows(rows):
    y, _ = rows
    keep, weights, rate = sample_legitimate(y, 5_000, seed=1)
    assert keep.size == 5_000 and np.all(np.diff(keep) > 0)
    assert np.sum(y[keep]) == np.sum(y)  # every fraud row kept, weight 1
    assert np.all(weights[y[keep] == 1] == 1.0)
    legit = y == 0
    assert rate == pytest.approx((5_000 - y.sum()) / legit.sum())
    assert np.sum(weights[y[keep] == 0]) == pytest.approx(legit.sum())  # weighted, the full legitimate count
    assert np.sum(weights * y[keep]) / np.sum(weights) == pytest.approx(y.mean())  # and the full base rate
    everything, ones, full = sample_legitimate(y, y.size)
    assert everything.size == y.size and np.all(ones == 1.0) and full == 1.0


class NoBaseFiles:
    def get_container_client(self, name):
        return self

    def list_blobs(self):
        return []


class AuditRows:
    """The audit log's read port over given rows."""

    def __init__(self, rows):
        self.rows = rows

    def read(self, start, end, select=None):
        return (r for r in self.rows if start <= r["event_time"] < end)


def served(now, days_ago, label):
    return {"event_time": now - timedelta(days=days_ago), "label": label, "customer_id": "C1",
            "features": pack_features(np.zeros(len(FEATURE_NAMES), np.float32))}


def test_only_matured_served_decisions_enter_and_a_retrain_without_fraud_before_the_holdout_is_skipped():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    audit = AuditRows([served(now, 20, ""), served(now, 15, 0), served(now, 12, 1), served(now, 3, ""),
                       served(now, 2, 1), served(now, 40, 1)])  # the last: outside the lookback
    outcome = retrain(FakeModelRegistry(), NoBaseFiles(), audit, "test", RetrainConfig(label_delay_days=7.0), now=now)
    assert outcome["outcome"] == "skipped" and "no fraud in the rows more than 7 days before" in outcome["reason"]
    counts = outcome["served"]
    assert counts["read"] == 5 and counts["labelled"] == 2 and counts["matured_unlabelled_as_legitimate"] == 1
    assert counts["fresh_labelled_left_out"] == 1 and counts["fresh_unlabelled_left_out"] == 1
    longer = retrain(FakeModelRegistry(), NoBaseFiles(), audit, "test",
                     RetrainConfig(label_delay_days=7.0, label_maturity_days=14.0), now=now)["served"]
    assert longer["labelled"] == 1 and longer["fresh_labelled_left_out"] == 2 and longer["matured_before"].startswith("2026-05-18")
