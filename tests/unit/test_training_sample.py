"""The training sample on fakes: inclusion by a stable hash, the row and label lines, the weight
rule, the outlet (only included decisions, one append per hour, duplicates kept, failures
raised), labelled frauds forced in by the label join, and the retrain's bounded reader."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fakes import FakeAuditLog, FakeLabelFiles, FakeLabelStore, FakeReports, FakeTrainingSample
from fraud_events import decision_record
from shared.domain.decision_record import Delivery
from shared.domain.features import FEATURE_NAMES
from shared.domain.labels import Label
from shared.domain.training_sample import (
    SampleLabel, SampleRow, included, latest_labels, row_weight, sample_hash,
)
from shared.service.monitoring import MonitoringService
from shared.service.training_sample import TrainingSampleOutlet, event_hour_of_audit_pk
from training.sample_reader import BoundedSample, line_transaction_id, read_sample

T0 = datetime(2026, 5, 1, 10, 30, tzinfo=timezone.utc)
F = len(FEATURE_NAMES)


def ids(n, prefix="T"):
    return [f"{prefix}{i}" for i in range(n)]


# -- inclusion -----------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.001, 0.01, 0.3])
def test_the_hash_sample_keeps_its_rate_within_binomial_tolerance(rate):
    n = 200_000
    kept = sum(included(t, rate) for t in ids(n))
    sd = (n * rate * (1 - rate)) ** 0.5
    assert abs(kept - n * rate) < 4 * sd


def test_inclusion_is_deterministic_nested_and_not_pythons_hash():
    import hashlib

    txns = ids(5_000)
    assert [sample_hash(t) for t in txns] == [sample_hash(t) for t in txns]
    # the documented hash, so every process (and any other language) agrees
    expected = int.from_bytes(hashlib.blake2b(b"T42", digest_size=8, person=b"fraud-sample").digest(), "big") / 2 ** 64
    assert sample_hash("T42") == expected
    small, large = {t for t in txns if included(t, 0.01)}, {t for t in txns if included(t, 0.1)}
    assert small < large  # a lower rate keeps a subset: the reader can tighten with the same hash
    assert not any(included(t, 0.0) for t in txns) and all(included(t, 1.0) for t in txns)


# -- lines and weights ---------------------------------------------------------------------
def test_a_row_and_a_label_round_trip_exactly():
    features = np.random.default_rng(1).normal(size=F).astype(np.float32)
    features[3] = np.float32(1e-38)  # subnormal-ish values survive: the bytes travel, not text
    row = SampleRow("T1", "C9", T0.replace(microsecond=123456), features, 0.1234567890123, "m-v7", 0.01, 0.01)
    back = SampleRow.from_line(row.to_line())
    assert back == row and back.features.tobytes() == features.tobytes()
    assert back.fraud_score == 0.1234567890123 and back.event_time == row.event_time and back.rate == 0.01
    label = SampleLabel("T1", 1, "2026-05-03T08:00:00+00:00")
    assert SampleLabel.from_line(label.to_line()) == label
    assert line_transaction_id(row.to_line().encode()) == "T1"
    assert line_transaction_id(b'{"transaction_id":"a\\"b","x":1}') is None  # escaped: parsed instead


def test_a_corrected_label_wins_by_its_labelled_at():
    labels = [SampleLabel("T1", 1, "2026-05-02T00:00:00"), SampleLabel("T1", 0, "2026-05-04T00:00:00"),
              SampleLabel("T2", 0, ""), SampleLabel("T2", 1, "")]
    assert latest_labels(labels) == {"T1": 0, "T2": 1}


def test_the_weight_rule():
    assert row_weight(True, 0.01) == 1.0  # every labelled fraud is in the sample
    assert row_weight(True, 0.01, fraud_threshold=0.25) == 4.0  # unless the reader thinned frauds
    assert row_weight(False, 0.01) == pytest.approx(100.0)
    assert row_weight(False, 0.01, legitimate_threshold=0.0025) == pytest.approx(400.0)  # rate x keep rate 1/4
    assert row_weight(False, 1.0, legitimate_threshold=0.5) == 2.0


# -- the outlet ----------------------------------------------------------------------------
def deliveries(txn_ids, when=T0, duplicate=False):
    return [Delivery(decision_record(t, when, "Low", features=np.full(F, 0.5, np.float32)), duplicate=duplicate)
            for t in txn_ids]


def test_the_outlet_appends_only_included_decisions_one_append_per_hour():
    store = FakeTrainingSample()
    outlet = TrainingSampleOutlet(store, rate=0.1)
    batch = deliveries(ids(300)) + deliveries(ids(300, "U"), when=T0 + timedelta(hours=1))
    outlet.record(batch)
    assert store.appends == 2  # two event hours touched, one append each
    rows = [SampleRow.from_line(line) for line in store.all_lines("rows")]
    expected = {d.record.transaction_id for d in batch if included(d.record.transaction_id, 0.1)}
    assert {r.transaction_id for r in rows} == expected and 40 < len(expected) < 80
    assert all(r.inclusion == r.rate == 0.1 and r.hour == r.event_time.replace(minute=0, second=0, microsecond=0)
               for r in rows)
    assert store.hours("rows", T0 - timedelta(days=1), T0 + timedelta(days=1)) == [
        T0.replace(minute=0), T0.replace(minute=0) + timedelta(hours=1)]


def test_a_batch_with_nothing_included_makes_no_storage_call_and_duplicates_are_kept():
    store = FakeTrainingSample()
    outlet = TrainingSampleOutlet(store, rate=0.01)
    outlet.record(deliveries([t for t in ids(200) if not included(t, 0.01)]))
    assert store.appends == 0
    one = [t for t in ids(200) if included(t, 0.01)][:1]
    outlet.record(deliveries(one))
    outlet.record(deliveries(one, duplicate=True))  # a redelivery: the stored record, appended again
    assert len(store.all_lines("rows")) == 2


def test_a_failed_append_raises_so_the_batch_is_retried():
    store = FakeTrainingSample()
    store.fail_next = True
    with pytest.raises(OSError):
        TrainingSampleOutlet(store, rate=1.0).record(deliveries(["T1"]))


# -- labels: frauds forced in, verdicts streamed ---------------------------------------------
def test_the_label_join_forces_labelled_frauds_in_and_streams_every_verdict():
    audit, store = FakeAuditLog(), FakeTrainingSample()
    sample = TrainingSampleOutlet(store, rate=0.05, audit=audit)
    txns = ids(400)
    audit.write([d.record for d in deliveries(txns)])
    sample.record(deliveries(txns))
    fraud_out = [t for t in txns if not included(t, 0.05)][:3]
    fraud_in = [t for t in txns if included(t, 0.05)][:1]
    legit = [t for t in txns if not included(t, 0.05)][3:5]
    clock = lambda: T0 + timedelta(days=2)  # noqa: E731
    monitor = MonitoringService(audit, FakeLabelStore(), FakeLabelFiles(), FakeReports(), lambda: None,
                                training_sample=sample, clock=clock)
    at = T0 + timedelta(days=1)
    outcome = monitor.accept_labels([Label(t, True, None, at, "case") for t in fraud_out + fraud_in]
                                    + [Label(t, False, None, at, "case") for t in legit])
    assert outcome["joined"] == 6
    rows = [SampleRow.from_line(line) for line in store.all_lines("rows")]
    forced = [r for r in rows if r.inclusion == 1.0]
    assert sorted(r.transaction_id for r in forced) == sorted(fraud_out)  # the included fraud is there already
    assert all(r.rate == 0.05 and r.event_time == T0 and r.features.size == F for r in forced)
    assert {r.transaction_id for r in rows} == {t for t in txns if included(t, 0.05)} | set(fraud_out)
    labels = latest_labels(SampleLabel.from_line(line) for line in store.all_lines("labels"))
    assert labels == {**{t: 1 for t in fraud_out + fraud_in}, **{t: 0 for t in legit}}
    assert event_hour_of_audit_pk("03-2026050110") == T0.replace(minute=0)


# -- the bounded reader --------------------------------------------------------------------
def fill(store, n_legit, n_fraud, rate, days=10, labelled_legit=0):
    """Sampled rows spread over ``days`` from T0 (hash-included at ``rate``) and frauds forced in."""
    rng = np.random.default_rng(3)
    by_hour, labels = {}, {}
    legit = [t for t in ids(int(n_legit / rate * 1.3)) if included(t, rate)][:n_legit]
    for i, t in enumerate(legit):
        when = T0 + timedelta(days=days * i / len(legit))
        row = SampleRow(t, f"C{i % 50}", when, rng.normal(size=F).astype(np.float32), 0.1, "v1", rate, rate)
        by_hour.setdefault(row.hour, []).append(row.to_line())
        if i < labelled_legit:
            labels.setdefault(row.hour, []).append(SampleLabel(t, 0, "").to_line())
    for i in range(n_fraud):
        when = T0 + timedelta(days=days * i / n_fraud)
        row = SampleRow(f"F{i}", f"C{i % 50}", when, rng.normal(size=F).astype(np.float32), 0.9, "v1", 1.0, rate)
        by_hour.setdefault(row.hour, []).append(row.to_line())
        labels.setdefault(row.hour, []).append(SampleLabel(f"F{i}", 1, "").to_line())
    store.append("rows", by_hour)
    store.append("labels", labels)
    return legit


def test_the_reader_keeps_every_row_and_weights_undo_the_rate_when_the_sample_fits():
    store = FakeTrainingSample()
    fill(store, 1_000, 50, rate=0.1, labelled_legit=100)
    data, summary = read_sample(store, T0, T0 + timedelta(days=20), capacity=5_000)
    assert data.y.size == 1_050 and data.y.sum() == 50 and np.all(np.diff(data.times) >= 0)
    assert np.all(data.weights[data.y == 1] == 1.0) and np.allclose(data.weights[data.y == 0], 10.0)
    assert summary["labelled_legitimate"] == 100 and summary["matured_unlabelled_as_legitimate"] == 900
    assert summary["buffer"]["tightened"] == 0


def test_the_bounded_reader_stays_within_capacity_keeps_every_fraud_and_weights_to_the_full_count():
    store = FakeTrainingSample()
    legit = fill(store, 20_000, 300, rate=0.5)
    data, summary = read_sample(store, T0, T0 + timedelta(days=20), capacity=2_000)
    assert data.y.size <= 2_000 and data.y.sum() == 300 and summary["buffer"]["tightened"] >= 1
    threshold = summary["buffer"]["legitimate_threshold"]
    kept = {c for c in data.customers}  # customers travel with their rows
    assert kept
    # exactly the legitimate rows whose hash is below the final threshold: deterministic, uniform
    assert data.y.size - 300 == sum(sample_hash(t) < threshold for t in legit)
    # weighted, the legitimate rows stand for the decisions the sample stood for (20,000 / 0.5)
    assert data.weights[data.y == 0].sum() == pytest.approx(40_000, rel=0.1)
    again, _ = read_sample(store, T0, T0 + timedelta(days=20), capacity=2_000)
    assert np.array_equal(again.X, data.X) and np.array_equal(again.weights, data.weights)


def test_the_reader_drops_repeated_ids_and_leaves_out_fresh_rows():
    once, twice = FakeTrainingSample(), FakeTrainingSample()
    fill(once, 500, 20, rate=1.0, days=10)
    fill(twice, 500, 20, rate=1.0, days=10)
    fill(twice, 500, 20, rate=1.0, days=10)  # every line again: redeliveries, a re-run label join
    expected, _ = read_sample(once, T0, T0 + timedelta(days=5), capacity=10_000)
    data, summary = read_sample(twice, T0, T0 + timedelta(days=5), capacity=10_000)
    assert summary["duplicates_dropped"] == data.y.size == expected.y.size
    assert np.array_equal(data.X, expected.X) and np.array_equal(data.weights, expected.weights)
    assert data.times.max() < (T0 + timedelta(days=5)).timestamp()
    assert data.y.size == pytest.approx(260, abs=3) and summary["fresh_left_out"] >= 1


def test_frauds_alone_filling_the_buffer_are_thinned_too_and_weighted():
    buffer = BoundedSample(capacity=100, n_features=2)
    for i in range(1_000):
        buffer.add(np.zeros(2, np.float32), float(i), True, sample_hash(f"F{i}"), 1.0, "C")
    assert buffer.size <= 100 and buffer.fraud_threshold < 1.0
    data = buffer.training_set()
    assert data.weights.sum() == pytest.approx(1_000, rel=0.25)
    assert buffer.summary()["frauds_thinned"]
