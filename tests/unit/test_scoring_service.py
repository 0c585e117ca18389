"""The scoring service on in-memory fakes: exactly once, dead letters, conflicts, the alert
outbox and contention, without Azurite or a trained model (tests/integration runs the same
paths through the functions on Azurite)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from fakes import FakeAlertQueue, FakeAuditLog, FakeDeadLetters, FakeModel, FakeModelSource, FakeProfiles
from fraud_events import transaction
from shared.domain.decision import DecisionPolicy, Thresholds
from shared.domain.features import feature_index
from shared.service.scoring import FraudScoringService, IncomingEvent, ScoringContention

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
AMOUNT = feature_index("amount")
HISTORY = feature_index("history_count")


def amount_score(X: np.ndarray) -> np.ndarray:
    """0.95 (High) for amounts of 100,000 or more, else 0.1 (Low)."""
    return np.where(X[:, AMOUNT] >= 100_000, 0.95, 0.1).astype(np.float32)


@pytest.fixture
def parts():
    return {"profiles": FakeProfiles(), "audit": FakeAuditLog(), "alerts": FakeAlertQueue(),
            "dead_letters": FakeDeadLetters(), "model": FakeModelSource(FakeModel(score=amount_score))}


def make_service(parts, **overrides) -> FraudScoringService:
    return FraudScoringService(**{**parts, **overrides},
                               policy_for=lambda model: DecisionPolicy(Thresholds.resolve(model.thresholds, {})),
                               clock=lambda: NOW)


@pytest.fixture
def service(parts):
    return make_service(parts)


def events(*bodies, start: int = 0) -> list[IncomingEvent]:
    return [IncomingEvent(b if isinstance(b, bytes) else json.dumps(b).encode(), "0", start + i, NOW.isoformat())
            for i, b in enumerate(bodies)]


def test_a_batch_is_scored_once_per_transaction_with_one_model_call(service, parts):
    batch = [transaction(i, customer=f"C{i % 3}") for i in range(9)]
    outcome = service.score_events(events(*batch))
    assert [d.record.transaction_id for d in outcome.deliveries] == [f"T{i}" for i in range(9)]
    assert not any(d.duplicate for d in outcome.deliveries) and outcome.dead_lettered == []
    assert parts["model"].model.calls == 1
    assert {c: parts["profiles"].load(c).profile.history_count for c in ("C0", "C1", "C2")} == {"C0": 3, "C1": 3, "C2": 3}
    assert set(parts["audit"].locate([f"T{i}" for i in range(9)])) == {f"T{i}" for i in range(9)}


def test_garbage_is_dead_lettered_with_its_field_and_the_rest_is_scored(service, parts):
    good = [transaction(i) for i in range(3)]
    bad_amount = transaction(9, transaction_amount=-5)
    outcome = service.score_events(events(good[0], b"{oops", bad_amount, good[1], b"\xff\xfe", good[2]))
    assert len(outcome.deliveries) == 3 and len(outcome.dead_lettered) == 3
    reasons = {doc["raw_text"]: [r["field"] for r in doc["reasons"]] for _, doc in parts["dead_letters"].items()}
    assert reasons["{oops"] == ["$"] and reasons[None] == ["$"]
    assert reasons[json.dumps(bad_amount)] == ["transaction_amount"]


def test_a_redelivered_batch_changes_nothing(service, parts):
    batch = events(*[transaction(i, customer=f"C{i % 2}", amount=150_000 if i == 3 else 100.0) for i in range(6)])
    first = service.score_events(batch)
    commits, alerts = parts["profiles"].commits, parts["alerts"].receive_all()
    again = service.score_events(batch)
    assert all(d.duplicate for d in again.deliveries) and again.duplicates == 6
    assert [d.record for d in again.deliveries] == [d.record for d in first.deliveries]
    assert parts["profiles"].commits == commits and parts["profiles"].load("C0").profile.history_count == 3
    assert [a["transaction_id"] for a in alerts] == ["T3"] and parts["alerts"].receive_all() == []


def test_an_id_reused_with_other_content_is_dead_lettered_naming_the_fields(service, parts):
    service.score_events(events(transaction(1)))
    outcome = service.score_events(events(transaction(1, amount=99.0, merchant_id="M2"), start=5))
    assert outcome.deliveries == [] and len(outcome.dead_lettered) == 1
    (_, letter), = parts["dead_letters"].items()
    assert letter["reasons"][0]["field"] == "transaction_id"
    assert "transaction_amount" in letter["reasons"][0]["problem"] and "merchant_id" in letter["reasons"][0]["problem"]
    assert parts["profiles"].load("C1").profile.history_count == 1


def test_an_id_scored_for_another_customer_is_a_conflict_not_a_second_transaction(service, parts):
    service.score_events(events(transaction(1, customer="C1")))
    outcome = service.score_request(transaction(1, customer="C2"))
    assert outcome.conflict and outcome.errors[0].field == "transaction_id" and "customer_id" in outcome.errors[0].problem
    assert parts["profiles"].load("C2").etag is None


def test_http_generates_missing_fields_and_a_retry_without_timestamp_is_a_duplicate(service):
    body = {k: v for k, v in transaction(1).items() if k != "timestamp"}
    first = service.score_request(body)
    assert first.delivery.generated == ("timestamp",) and not first.delivery.duplicate
    retry = service.score_request(body)
    assert not retry.conflict and retry.delivery.duplicate and retry.delivery.record == first.delivery.record
    assert retry.delivery.http_body()["generated_fields"] == ["timestamp"]
    invalid = service.score_request({"customer_id": "C1"})
    assert invalid.delivery is None and [e.field for e in invalid.errors] == ["transaction_amount"]


def test_one_customers_events_are_applied_in_event_time_order(service):
    bodies = [transaction(i, customer="C9", when=f"2026-11-20T10:{i:02d}:00+01:00") for i in range(5)]
    outcome = service.score_events(events(*reversed(bodies)))
    history = {d.record.transaction_id: d.record.features[HISTORY] for d in outcome.deliveries}
    assert [history[f"T{i}"] for i in range(5)] == [0, 1, 2, 3, 4]


class FailingOnce(FakeAlertQueue):
    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def send(self, record):
        if not self.failed:
            self.failed = True
            raise ConnectionError("queue unavailable")
        super().send(record)


def test_an_alert_lost_in_an_outage_is_sent_when_the_batch_is_redelivered(parts):
    parts["alerts"] = FailingOnce()
    service = make_service(parts)
    batch = events(transaction(1, amount=200_000))
    with pytest.raises(ConnectionError):
        service.score_events(batch)
    assert parts["profiles"].pending_alert("C1", "T1")
    service.score_events(batch)  # the host's retry
    assert [a["transaction_id"] for a in parts["alerts"].receive_all()] == ["T1"]
    assert not parts["profiles"].pending_alert("C1", "T1")
    service.score_events(batch)
    assert parts["alerts"].receive_all() == []


class ConcurrentWriter(FakeProfiles):
    """Another instance commits to the customer between our read and our commit, ``times`` times."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def commit(self, stored, records):
        if self.times > 0:
            self.times -= 1
            other = super().load(stored.customer_id)
            FakeProfiles.commit(self, other, [_other_instance_record(records[0], self.times)])
        super().commit(stored, records)


def _other_instance_record(record, n):
    from dataclasses import replace

    return replace(record, transaction=replace(record.transaction, transaction_id=f"OTHER{n}"))


def test_a_concurrent_writer_makes_the_service_reread_and_retry(parts):
    parts["profiles"] = ConcurrentWriter(times=3)
    service = make_service(parts)
    outcome = service.score_events(events(transaction(1), transaction(2)))
    assert [d.duplicate for d in outcome.deliveries] == [False, False]
    assert set(parts["profiles"].applied("C1", ["T1", "T2", "OTHER0", "OTHER1", "OTHER2"])) == {
        "T1", "T2", "OTHER0", "OTHER1", "OTHER2"}


def test_endless_contention_is_reported_not_looped(parts):
    parts["profiles"] = ConcurrentWriter(times=1000)
    service = make_service(parts, max_conflicts=3)
    with pytest.raises(ScoringContention):
        service.score_events(events(transaction(1)))

