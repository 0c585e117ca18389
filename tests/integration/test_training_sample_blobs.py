"""The training sample on Azurite: decisions scored by the Event Hub function land in hourly
append blobs (only the hash-included ids), a label join adds every labelled fraud and the
verdicts, a redelivered batch is dropped on read, and the retrain's reader weights each row;
the appender splits at the block size and rolls to a new blob at the block limit."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fraud_events import event_hub_batch, transaction
from functions.score_stream import score_stream
from shared.adapters.training_sample_blobs import TrainingSampleBlobs
from shared.composition import app_services, reset_app_services
from shared.domain.labels import Label
from shared.domain.training_sample import SampleLabel, SampleRow, included
from training.sample_reader import read_sample

RATE = 0.3


@pytest.fixture
def sampled(app_env, monkeypatch):
    monkeypatch.setenv("FRAUD_TRAINING_SAMPLE_RATE", str(RATE))
    reset_app_services()
    return app_services()


def lines(store, stream):
    return [line for hour in store.hours(stream, datetime(2026, 1, 1, tzinfo=timezone.utc),
                                         datetime(2027, 1, 1, tzinfo=timezone.utc))
            for line in store.lines(stream, hour)]


def test_scored_decisions_and_labelled_frauds_land_in_the_sample_and_read_back_weighted(sampled, published):
    bodies = [transaction(i, customer=f"C{i % 7}") for i in range(120)]  # 2026-11-21 00:00-01:59 (+01:00)
    score_stream(event_hub_batch(bodies))
    score_stream(event_hub_batch(bodies[:40], first_sequence=0))  # a redelivery: duplicates appended again
    store = sampled.training_sample_store
    rows = [SampleRow.from_line(line) for line in lines(store, "rows")]
    txns = [b["transaction_id"] for b in bodies]
    in_hash = {t for t in txns if included(t, RATE)}
    assert {r.transaction_id for r in rows} == in_hash and 20 < len(in_hash) < 60
    assert len(rows) == len(in_hash) + sum(t in in_hash for t in txns[:40])  # the redelivery's rows again
    assert all(r.inclusion == r.rate == RATE and r.model_version == published.version for r in rows)
    # one blob per event hour and stream for this process, named <date>/<HH>/<process>-<n>.jsonl
    names = store.blob_names("rows", datetime(2026, 11, 20, 23, tzinfo=timezone.utc))
    assert names == [f"2026-11-20/23/{store.process_id}-0.jsonl"]

    # labels: two frauds outside the hash sample, one inside, two legitimate verdicts
    outside = [t for t in txns if t not in in_hash]
    frauds, inside = outside[:2], sorted(in_hash)[:1]
    legit = outside[2:4]
    at = datetime(2026, 11, 23, tzinfo=timezone.utc)
    joined = sampled.monitoring.accept_labels([Label(t, True, None, at, "case") for t in frauds + inside]
                                              + [Label(t, False, None, at, "case") for t in legit])
    assert joined["joined"] == 5
    rows = [SampleRow.from_line(line) for line in lines(store, "rows")]
    forced = {r.transaction_id: r for r in rows if r.inclusion == 1.0}
    assert set(forced) == set(frauds)
    audit = {r.transaction_id: r for r in rows if r.transaction_id in in_hash}
    for t in frauds:  # the forced row is the decision as served, read back from the audit log
        assert forced[t].features.size == next(iter(audit.values())).features.size and forced[t].rate == RATE
    labels = [SampleLabel.from_line(line) for line in lines(store, "labels")]
    assert {(l.transaction_id, l.label) for l in labels} == {(t, 1) for t in frauds + inside} | {(t, 0) for t in legit}

    # the retrain's reader: repeats dropped, frauds weight 1, the others 1 / rate
    now = datetime(2026, 12, 15, tzinfo=timezone.utc)
    data, summary = read_sample(store, now - timedelta(days=30), now - timedelta(days=7), capacity=10_000)
    assert data.y.size == len(in_hash) + len(frauds) and summary["duplicates_dropped"] == sum(t in in_hash for t in txns[:40])
    assert data.y.sum() == 3 and summary["labelled_fraud"] == 3
    assert np.all(data.weights[data.y == 1] == 1.0) and np.allclose(data.weights[data.y == 0], 1 / RATE)
    assert np.all(np.diff(data.times) >= 0)
    # a tighter buffer: a hash threshold, every fraud still there, weights scaled by its keep rate
    small, summary = read_sample(store, now - timedelta(days=30), now - timedelta(days=7), capacity=12)
    threshold = summary["buffer"]["legitimate_threshold"]
    assert small.y.size <= 12 and small.y.sum() == 3 and threshold < RATE
    assert np.allclose(small.weights[small.y == 0], 1 / threshold)


def test_the_appender_splits_blocks_at_the_size_limit_and_rolls_at_the_block_limit(services):
    store = TrainingSampleBlobs(services.blob_service, services.config.training_sample_container,
                                process_id="p1", max_block_bytes=130, max_blocks=3)
    hour = datetime(2026, 5, 1, 10, tzinfo=timezone.utc)
    lines_in = [f'{{"transaction_id":"T{i}","pad":"{"x" * 30}"}}' for i in range(8)]  # 63 bytes a line: 2 lines per 130-byte block
    assert store.append("rows", {hour: lines_in}) == 4
    assert store.append("rows", {hour: lines_in[:1]}) == 1
    assert store.blob_names("rows", hour) == ["2026-05-01/10/p1-0.jsonl", "2026-05-01/10/p1-1.jsonl"]
    assert [line.decode() for line in store.lines("rows", hour)] == lines_in + lines_in[:1]
    assert store.hours("rows", hour - timedelta(hours=3), hour + timedelta(hours=1)) == [hour]
    assert store.hours("labels", hour - timedelta(hours=3), hour + timedelta(hours=1)) == []
