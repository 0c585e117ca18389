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


def fresh_parts(shadow: FakeModel | None = None) -> dict:
    return {"profiles": FakeProfiles(), "audit": FakeAuditLog(), "alerts": FakeAlertQueue(),
            "dead_letters": FakeDeadLetters(), "model": FakeModelSource(FakeModel(score=amount_score), shadow)}


@pytest.fixture
def parts():
    return fresh_parts()


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
    with pytest.raises(ScoringContention) as contention:
        service.score_events(events(transaction(1)))
    assert "T1" in str(contention.value) and "C1" not in str(contention.value)  # logged: no customer id



# -- a shadow challenger: scored beside the champion, logged, never deciding -------------------
def challenger_score(X: np.ndarray) -> np.ndarray:
    """A challenger that disagrees with the champion: the amount's share of a million."""
    return np.clip(X[:, AMOUNT] / 1e6, 0.0, 1.0).astype(np.float32)


SHADOWED_BATCH = ([transaction(i, customer="C0", amount=150_000 if i % 7 == 0 else 900.0 + i) for i in range(120)]
                  + [transaction(200 + i, customer=f"C{i % 4 + 1}", amount=250_000 if i == 3 else 40.0) for i in range(12)])


EVERY_EVENT_TIME = (NOW.replace(year=2020), NOW.replace(year=2030))  # an audit read of the whole log


def unmeasured(form: dict) -> dict:
    """A decision's form without its measured latency (two runs differ only in that)."""
    return {k: v for k, v in form.items() if k != "latency_ms"}


def decided(outcome) -> list[dict]:
    return [unmeasured(d.record.document()) for d in outcome.deliveries]


def stored_state(parts) -> dict:
    """Every customer's profile and applied decisions (the profile rows), latency aside."""
    profiles = parts["profiles"]
    ids = [t["transaction_id"] for t in SHADOWED_BATCH]
    return {c: (profiles.load(c).profile.to_json(),
                {t: unmeasured(r.document()) for t, r in profiles.applied(c, ids).items()})
            for c in ("C0", "C1", "C2", "C3", "C4")}


def scored_without_and_with(shadow: FakeModel):
    """The same batch scored on fresh stores without a shadow and with ``shadow``."""
    plain, shadowed = fresh_parts(), fresh_parts(shadow)
    return plain, shadowed, *(make_service(p).score_events(events(*SHADOWED_BATCH)) for p in (plain, shadowed))


def test_shadow_scores_are_logged_for_every_decision_and_never_change_a_decision():
    plain, shadowed, without, with_shadow = scored_without_and_with(
        FakeModel(version="challenger-v2", score=challenger_score))

    assert decided(with_shadow) == decided(without) and len(decided(without)) == len(SHADOWED_BATCH)
    assert ([unmeasured(d.http_body()) for d in with_shadow.deliveries]
            == [unmeasured(d.http_body()) for d in without.deliveries])
    assert shadowed["alerts"].receive_all() == plain["alerts"].receive_all() != []
    assert stored_state(shadowed) == stored_state(plain)
    # one extra model call per chunk (C0's 120 transactions make two chunks), on the same rows
    assert shadowed["model"].shadow_model.calls == shadowed["model"].model.calls == 2

    logged = {r["RowKey"]: r for r in shadowed["audit"].read(*EVERY_EVENT_TIME)}
    assert len(logged) == len(SHADOWED_BATCH)
    for delivery in with_shadow.deliveries:
        row = logged[delivery.record.transaction_id]
        expected = round(float(challenger_score(delivery.record.features[None, :])[0]), 6)
        assert (row["shadow_score"], row["shadow_version"]) == (expected, "challenger-v2")
        assert row["fraud_score"] == delivery.record.fraud_score and row["model_version"] == "fake-v1"
        record = delivery.record
        for form in (record.document(), record.alert_message(), delivery.http_body()):
            assert not any("shadow" in key for key in form)
    assert not any("shadow_score" in r for r in plain["audit"].read(*EVERY_EVENT_TIME))
    plain_rows = {r["RowKey"]: unmeasured(r) for r in plain["audit"].read(*EVERY_EVENT_TIME)}
    unshadowed = {t: unmeasured({k: v for k, v in r.items() if not k.startswith("shadow_")}) for t, r in logged.items()}
    assert unshadowed == plain_rows


def test_a_redelivery_keeps_the_shadow_score_first_logged():
    shadowed = fresh_parts(FakeModel(version="challenger-v2", score=challenger_score))
    service = make_service(shadowed)
    batch = events(*SHADOWED_BATCH[:5])
    service.score_events(batch)
    shadowed["model"].shadow_model = None  # cleared meanwhile
    assert all(d.duplicate for d in service.score_events(batch).deliveries)
    rows = list(shadowed["audit"].read(*EVERY_EVENT_TIME))
    assert len(rows) == 5 and all(r["shadow_version"] == "challenger-v2" for r in rows)


def failing(X: np.ndarray) -> np.ndarray:
    raise RuntimeError("onnxruntime: invalid input")


@pytest.mark.parametrize("score", [failing, lambda X: np.full(len(X) - 1, 0.5, dtype=np.float32),
                                   lambda X: np.full(len(X), np.nan, dtype=np.float32)],
                         ids=["raises", "too-few-scores", "not-finite"])
def test_a_failing_shadow_never_fails_the_batch_nor_changes_a_decision(score, caplog):
    plain, shadowed, without, with_shadow = scored_without_and_with(FakeModel(version="broken-v9", score=score))
    assert decided(with_shadow) == decided(without) and stored_state(shadowed) == stored_state(plain)
    rows = list(shadowed["audit"].read(*EVERY_EVENT_TIME))
    assert len(rows) == len(SHADOWED_BATCH) and not any("shadow_score" in r for r in rows)
    assert "shadow model broken-v9 failed" in caplog.text


def versioned_loader(art):
    """A fake model per registry version; a manifest marked broken is refused, as load_model refuses."""
    from shared.domain.model import ModelRejected

    if art.manifest.get("broken"):
        raise ModelRejected(f"{art.version}: sha256 does not match")
    level = float(art.manifest.get("level", 0.1))
    return FakeModel(version=art.version, score=lambda X: np.full(len(X), level, dtype=np.float32))


def serving_registry(**levels):
    from contracts import artifact
    from fakes import FakeModelRegistry
    from shared.service.model_serving import ServingModel

    from shared.adapters.release_keys import LocalReleaseKey
    from shared.service.model_release import ReleaseCheck, sign_model

    key = LocalReleaseKey.generate()
    registry = FakeModelRegistry()
    for version, level in levels.items():
        bare = artifact(version)
        registry.publish(type(bare)(bare.onnx_bytes, {**bare.manifest, "level": level, "broken": level is None}))
        sign_model(registry, key, version, approved_by="tests")
    return registry, ServingModel(registry, load=versioned_loader, releases=ReleaseCheck(key))


def logged_scores(parts, ids) -> dict:
    rows = {r["RowKey"]: r for r in parts["audit"].read(*EVERY_EVENT_TIME)}
    return {t: (rows[t]["model_version"], rows[t]["fraud_score"], rows[t].get("shadow_version"),
                rows[t].get("shadow_score")) for t in ids}


def test_a_champion_swap_with_a_shadow_set_keeps_both_scoring_and_shadow_changes_are_picked_up(parts):
    registry, serving = serving_registry(v1=0.1, v2=0.6, v3=0.2, v4=0.9)
    registry.set_current("v1", registry.current())
    registry.set_shadow("v2")
    service = make_service(parts, model=serving)
    service.score_events(events(transaction(1)))
    registry.set_current("v3", registry.current())  # the champion is swapped, the shadow stays
    serving.refresh_now()
    service.score_events(events(transaction(2)))
    registry.set_shadow("v4")
    serving.refresh_now()
    service.score_events(events(transaction(3)))
    registry.clear_shadow()
    serving.refresh_now()
    service.score_events(events(transaction(4)))
    assert logged_scores(parts, ["T1", "T2", "T3", "T4"]) == {
        "T1": ("v1", 0.1, "v2", 0.6), "T2": ("v3", 0.2, "v2", 0.6),  # swapped champion, same shadow
        "T3": ("v3", 0.2, "v4", 0.9), "T4": ("v3", 0.2, None, None)}  # a new shadow, then none


def test_a_refused_shadow_is_skipped_and_the_champion_scores(parts):
    registry, serving = serving_registry(v1=0.1, v2=None)
    registry.set_current("v1", registry.current())
    registry.set_shadow("v2")
    outcome = make_service(parts, model=serving).score_events(events(transaction(1)))
    assert outcome.deliveries[0].record.model_version == "v1" and "v2" in serving.refused
    assert logged_scores(parts, ["T1"]) == {"T1": ("v1", 0.1, None, None)}
