"""The retrain's split, pure: the holdout is the newest period, after the champion's training
end, never down-sampled; the challenger's rows end a label delay before it; the row cap
samples legitimate training rows only, and their weights undo the sampling; sampled decisions
enter once matured."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fakes import FakeModelRegistry, FakeTrainingSample
from shared.domain.features import FEATURE_NAMES
from shared.domain.promotion import DAY
from shared.domain.training_sample import SampleLabel, SampleRow
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


def sample_store(now, rows):
    """A training sample holding (days ago, label) decisions, hash rate 1 (every decision kept)."""
    store = FakeTrainingSample()
    for i, (days_ago, label) in enumerate(rows):
        when = now - timedelta(days=days_ago)
        row = SampleRow(f"T{i}", "C1", when, np.zeros(len(FEATURE_NAMES), np.float32), 0.1, "v1", 1.0, 1.0)
        store.append("rows", {row.hour: [row.to_line()]})
        if label != "":
            store.append("labels", {row.hour: [SampleLabel(f"T{i}", label, when.isoformat()).to_line()]})
    return store


def test_only_matured_sampled_decisions_enter_and_a_retrain_without_fraud_before_the_holdout_is_skipped():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    sample = sample_store(now, [(20, ""), (15, 0), (12, 1), (3, ""), (2, 1), (40, 1)])  # the last: outside the lookback
    outcome = retrain(FakeModelRegistry(), NoBaseFiles(), sample, "test", RetrainConfig(label_delay_days=7.0), now=now)
    assert outcome["outcome"] == "skipped" and "no fraud in the rows more than 7 days before" in outcome["reason"]
    counts = outcome["sample"]
    assert counts["labelled_fraud"] == 1 and counts["labelled_legitimate"] == 1
    assert counts["matured_unlabelled_as_legitimate"] == 1 and counts["kept"] == {"fraud": 1, "legitimate": 2}
    assert counts["hours"] == 3  # the fresh hours are not even read, nor those before the lookback
    longer = retrain(FakeModelRegistry(), NoBaseFiles(), sample, "test",
                     RetrainConfig(label_delay_days=7.0, label_maturity_days=14.0), now=now)["sample"]
    assert longer["kept"] == {"fraud": 0, "legitimate": 2} and longer["matured_before"].startswith("2026-05-18")
    assert longer["hours"] == 2


def test_training_rows_dated_after_the_retrain_are_refused(tmp_path):
    """A dropped file dated into the future would pick the newest rows, hence the holdout:
    the retrain reads base files as of its own time and refuses later rows (by field)."""
    from datetime import datetime, timezone

    from training.dataset import read_labelled_csv

    path = tmp_path / "dropped.csv"
    path.write_text("transaction_id,customer_id,transaction_amount,timestamp,is_fraud\n"
                    "T1,C1,10.0,2026-11-30T10:00:00+00:00,0\n"
                    "T2,C1,20.0,2026-12-01T11:59:00+00:00,1\n"
                    "T3,C2,30.0,9000-01-01T00:00:00+00:00,1\n"
                    "T4,C2,40.0,2026-12-02T10:00:00+00:00,0\n")
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    data = read_labelled_csv(path, now=now)
    assert [t.transaction_id for t in data.transactions] == ["T1", "T2"] and data.rejected == {"timestamp": 2}
    assert len(read_labelled_csv(path)) == 4  # training's own CLI still reads history of any date


def test_training_rows_older_than_the_configured_range_are_refused(tmp_path):
    from training.dataset import read_labelled_csv

    path = tmp_path / "old.csv"
    path.write_text("transaction_id,customer_id,transaction_amount,timestamp,is_fraud\n"
                    "T1,C1,10.0,2000-01-01T00:00:00+00:00,1\n"
                    "T2,C1,20.0,2024-11-30T00:00:00+00:00,0\n"
                    "T3,C2,30.0,2026-11-30T10:00:00+00:00,1\n")
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    data = read_labelled_csv(path, now=now, oldest=now - timedelta(days=730))
    assert [t.transaction_id for t in data.transactions] == ["T3"] and data.rejected == {"timestamp_too_old": 2}


def test_a_retrain_counts_refused_base_rows_too_old_and_future_in_its_result(tmp_path):
    """The retrain's base rows: FRAUD_TRAINING_MAX_AGE_DAYS before its time and 5 minutes after
    bound them; what is refused is counted by field (and recorded in the manifest's data)."""
    from training.retrain import _base_rows

    class OneFile:
        def __init__(self, data):
            self.data = data

        def get_container_client(self, name):
            return self

        def list_blobs(self):
            return [type("Blob", (), {"name": "dropped.csv"})()]

        def download_blob(self, name):
            return type("Download", (), {"readall": lambda _: self.data})()

    data = ("transaction_id,customer_id,transaction_amount,timestamp,is_fraud\n"
            "T1,C1,10.0,2020-01-01T00:00:00+00:00,1\n"
            "T2,C1,20.0,2026-11-29T00:00:00+00:00,0\n"
            "T3,C2,30.0,2026-11-30T10:00:00+00:00,1\n"
            "T4,C2,30.0,2031-01-01T10:00:00+00:00,1\n").encode()
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    names, parts, refused = _base_rows(OneFile(data), "training-data", RetrainConfig(training_max_age_days=365), now)
    assert names == ["dropped.csv"] and refused == {"timestamp_too_old": 1, "timestamp": 1}
    assert parts[0].y.size == 2


def test_the_holdout_is_chosen_from_the_apps_decisions_and_a_later_dropped_file_does_not_change_it(rows):
    """Decisions (the training sample) over days 0-60; a dropped file adds 5,000 rows dated after
    every decision (days 61-62, all fraud-free or all fraud: either would tilt the gate). The
    holdout's start, end and rows are the same with and without it."""
    y, times = rows
    decisions = np.ones(times.size, bool)
    before = split_for_promotion(y, times, None, RetrainConfig(label_delay_days=7.0), decisions=decisions)
    rng = np.random.default_rng(9)
    dropped_times = np.sort(rng.uniform(61 * DAY, 62 * DAY, 5_000))
    all_times = np.r_[times, dropped_times]
    all_y = np.r_[y, np.ones(dropped_times.size, np.int8)]
    is_decision = np.r_[decisions, np.zeros(dropped_times.size, bool)]
    after = split_for_promotion(all_y, all_times, None, RetrainConfig(label_delay_days=7.0), decisions=is_decision)
    assert after.windows.test_start == before.windows.test_start
    assert after.windows.test_end == before.windows.test_end
    holdout = lambda split, t: split.rows[t[split.rows] >= split.windows.test_start]  # noqa: E731
    assert np.array_equal(holdout(after, all_times), holdout(before, times))  # the same rows: no dropped one
    assert after.summary["holdout_rows"] == before.summary["holdout_rows"]
    assert after.summary["holdout_fraud"] == before.summary["holdout_fraud"]
    assert after.summary["holdout_from"] == "the app's decisions"
    # without the decisions mark (the old rule), the dropped rows would have been the holdout
    naive = split_for_promotion(all_y, all_times, None, RetrainConfig(label_delay_days=7.0))
    assert naive.windows.test_start > before.windows.test_start and naive.summary["holdout_from"].startswith("all rows")


def test_base_rows_dated_inside_the_decisions_holdout_period_do_not_enter_the_holdout(rows):
    y, times = rows
    decisions = np.arange(times.size) % 2 == 0  # half the rows are decisions, half came in a file
    split = split_for_promotion(y, times, None, RetrainConfig(label_delay_days=7.0), decisions=decisions)
    in_holdout = split.rows[times[split.rows] >= split.windows.test_start]
    assert in_holdout.size and decisions[in_holdout].all()
    assert split.windows.test_start == pytest.approx(np.quantile(times[decisions], 0.8))
