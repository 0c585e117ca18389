"""The Event Hub function on Azurite with real func.EventHubEvent batches."""
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import make_artifact, publish_signed
from fraud_events import audit_rows, event_hub_batch, http_post, transaction
from shared.domain.decision_record import unpack_features
from functions.score_http import score_http
from functions.score_stream import score_stream


def test_a_batch_is_scored_logged_and_profiles_updated(published, services):
    bodies = [transaction(i, customer=f"C{i % 3}") for i in range(12)]
    score_stream(event_hub_batch(bodies))
    rows = audit_rows(services)
    assert sorted(r["transaction_id"] for r in rows) == sorted(b["transaction_id"] for b in bodies)
    assert {r["model_version"] for r in rows} == {published.version}
    assert sum(services.profiles.load(f"C{k}").profile.history_count for k in range(3)) == 12
    row = rows[0]
    assert row["label"] if "label" in row else True  # label column absent (empty) until known
    assert len(unpack_features(row["features"])) == len(published.manifest["feature_names"])
    # spread over several partitions (time bucket x shard), not one hot partition
    assert len({r["PartitionKey"] for r in rows}) > 1


def test_poison_events_are_dead_lettered_and_the_rest_scored(published, services):
    good = [transaction(i) for i in range(5)]
    poison = [b"{not json", json.dumps({**transaction(90), "transaction_amount": "lots"}).encode(),
              json.dumps({**transaction(91), "customer_id": "bad/key"}).encode(), b"\xff\xfe\x00"]
    batch = event_hub_batch(good[:2] + poison[:2] + good[2:] + poison[2:])
    score_stream(batch)
    assert len(audit_rows(services)) == 5
    letters = list(services.dead_letters.list())
    assert len(letters) == 4
    reasons = sorted(letter["reasons"][0]["field"] for letter in letters)
    assert reasons == ["$", "$", "customer_id", "transaction_amount"]
    assert all(letter["raw_base64"] and letter["metadata"]["partition"] == "0" for letter in letters)
    # the same poison delivered again does not add dead letters
    score_stream(batch)
    assert len(list(services.dead_letters.list())) == 4


def test_redelivery_changes_nothing(published, services):
    bodies = [transaction(i, customer="C7", amount=1000.0 + i) for i in range(20)]
    score_stream(event_hub_batch(bodies))
    before = {r["RowKey"]: r["fraud_score"] for r in audit_rows(services)}
    profile_before = services.profiles.load("C7").profile.to_json()
    score_stream(event_hub_batch(bodies))  # at-least-once delivery: the whole batch again
    score_stream(event_hub_batch(list(reversed(bodies[5:15]))))  # and part of it, reordered
    assert {r["RowKey"]: r["fraud_score"] for r in audit_rows(services)} == before
    assert services.profiles.load("C7").profile.to_json() == profile_before


def test_events_of_one_customer_are_applied_in_event_time_order(published, services):
    bodies = [transaction(i, customer="C9", when=f"2026-11-20T10:{i:02d}:00+01:00") for i in range(6)]
    score_stream(event_hub_batch(list(reversed(bodies))))
    rows = {r["RowKey"]: unpack_features(r["features"]).tolist() for r in audit_rows(services)}
    from shared.domain.features import feature_index

    history = [rows[f"T{i}"][feature_index("history_count")] for i in range(6)]
    assert history == [0, 1, 2, 3, 4, 5]


def test_missing_transaction_id_uses_partition_and_sequence(published, services):
    body = transaction(1)
    del body["transaction_id"]
    batch = event_hub_batch([body], partition="3", first_sequence=4242)
    score_stream(batch)
    score_stream(batch)  # redelivered: recognised by the same id
    rows = audit_rows(services)
    assert [r["RowKey"] for r in rows] == ["3:4242"]
    assert services.profiles.load("C1").profile.history_count == 1


def test_concurrent_event_hub_and_http_scoring_of_one_customer_counts_exactly(published, services):
    bodies = [transaction(i, customer="C42", when=f"2026-11-20T11:{i % 60:02d}:{i // 60:02d}+01:00") for i in range(60)]
    stream_part = [b for i, b in enumerate(bodies) if i % 2 == 0]
    http_part = [b for i, b in enumerate(bodies) if i % 2 == 1]
    duplicated = http_part[:10] + stream_part[:10]  # some sent through both paths at once
    start = threading.Barrier(3)

    def stream():
        start.wait()
        for k in range(0, len(stream_part), 5):
            score_stream(event_hub_batch(stream_part[k:k + 5] + duplicated[10:][k // 5:k // 5 + 1]))

    def http(items):
        start.wait()
        return [score_http(http_post("score", b)).status_code for b in items]

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(stream), pool.submit(http, http_part), pool.submit(http, duplicated[:10])]
        results = [f.result() for f in futures]
    assert set(results[1]) == {200} and set(results[2]) == {200}
    assert services.profiles.load("C42").profile.history_count == 60
    assert len(audit_rows(services)) == 60


def test_high_risk_decisions_are_queued_once(published, services, every_decision_high):
    bodies = [transaction(i, customer="C5") for i in range(3)]
    score_stream(event_hub_batch(bodies))
    score_stream(event_hub_batch(bodies))
    alerts = services.alerts.receive_all()
    assert sorted(a["transaction_id"] for a in alerts) == ["T0", "T1", "T2"]
    assert all(a["risk_level"] == "High" and a["action"] == "block" for a in alerts)


def test_a_shadow_scores_every_event_into_the_audit_log_and_survives_a_champion_swap(published, services):
    from shared.composition import app_services
    from shared.domain.model import load_model

    challenger = make_artifact("challenger-v2", seed=2)
    publish_signed(services, challenger)
    services.registry.set_shadow(challenger.version, reason="test")
    assert services.shadow_manifest() == challenger.manifest  # no model loaded here: the registry's pointer
    score_stream(event_hub_batch([transaction(i, customer=f"C{i % 3}") for i in range(12)]))
    assert app_services().shadow_manifest() == challenger.manifest  # the loaded shadow's
    rows = audit_rows(services)
    served = np.stack([unpack_features(r["features"]) for r in rows])
    assert len(rows) == 12 and {r["model_version"] for r in rows} == {published.version}
    assert {r["shadow_version"] for r in rows} == {challenger.version}
    assert [r["shadow_score"] for r in rows] == pytest.approx(load_model(challenger).predict(served), abs=1e-6)
    assert [r["fraud_score"] for r in rows] == pytest.approx(load_model(published).predict(served), abs=1e-6)
    answer = json.loads(score_http(http_post("score", transaction(50, customer="C50"))).get_body())
    assert answer["model_version"] == published.version and not any("shadow" in key for key in answer)

    champion = make_artifact("champion-v3", seed=3)  # hot swap of the champion while the shadow is set
    publish_signed(services, champion, current=True)
    app_services().serving_model.refresh_now()
    score_stream(event_hub_batch([transaction(100 + i, customer=f"C{i % 3}") for i in range(6)]))
    swapped = [r for r in audit_rows(services) if int(r["RowKey"][1:]) >= 100]
    assert {(r["model_version"], r["shadow_version"]) for r in swapped} == {(champion.version, challenger.version)}
    assert all(isinstance(r["shadow_score"], float) for r in swapped)

    services.registry.clear_shadow()
    app_services().serving_model.refresh_now()
    score_stream(event_hub_batch([transaction(200, customer="C0")]))
    (last,) = [r for r in audit_rows(services) if r["RowKey"] == "T200"]
    assert last["model_version"] == champion.version and "shadow_score" not in last
    assert app_services().shadow_manifest() is None


def test_profiles_and_alerts_hold_pseudonyms_never_raw_customer_or_device_ids(published, services, every_decision_high):
    from shared.domain.pseudonym import is_pseudonym

    bodies = [transaction(i, customer="Cust-Ada", device_id=f"Dev-{i % 2}-phone") for i in range(4)]
    score_stream(event_hub_batch(bodies))
    table = services.table_service.get_table_client(services.config.profile_table)
    entities = [dict(e) for e in table.list_entities()]
    pseudonym = services.pseudonyms.customer("Cust-Ada")
    assert {e["PartitionKey"] for e in entities} == {pseudonym} and len(entities) == 5  # the profile and 4 txn rows
    stored = json.dumps(entities, default=str)
    assert "Cust-Ada" not in stored and "phone" not in stored  # neither as keys nor inside the stored decisions
    state = json.loads(next(e for e in entities if e["RowKey"] == "profile")["state"])
    assert sorted(state["dev"]) == sorted({services.pseudonyms.device("Dev-0-phone"), services.pseudonyms.device("Dev-1-phone")})
    assert all(is_pseudonym(k, "device") for k in state["dev"])
    # read back through the store, by the customer's id: the decisions name the customer again
    assert {r.customer_id for r in services.profiles.recent_transactions("Cust-Ada")} == {"Cust-Ada"}
    assert services.profiles.load("Cust-Ada").profile.history_count == 4
    # a redelivery is still recognised (same partition, same rows) and changes nothing
    score_stream(event_hub_batch(bodies))
    assert len(list(table.list_entities())) == 5
    alerts = services.alerts.receive_all()
    assert sorted(a["transaction_id"] for a in alerts) == ["T0", "T1", "T2", "T3"]
    assert "Cust-Ada" not in json.dumps(alerts) and "phone" not in json.dumps(alerts)
