"""Storage outages on a real Azurite: one process per service (blob, queue, table) that
persists to disk, so a service can be stopped and started again with its data intact.

- The whole storage account down in the middle of a stream, then back: after the retries
  (the function's own, then the host's), every event is scored exactly once; nothing is
  lost, nothing counted twice, and every High decision is on the alert queue.
- Table Storage down for longer than the function's retries while Blob Storage is up: the
  batch is dead-lettered with the reason, nothing is half-applied, and replaying the dead
  letters later scores each event once.
- Blob Storage down while a model swap is due: the old model keeps serving; the swap
  happens once Blob Storage is back.
"""
from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import functions.score_stream as score_stream_module
from conftest import publish_signed
from fraud_events import audit_rows, event_hub_batch, transaction
from functions.score_stream import score_stream, to_incoming
from shared.service.dead_letter_replay import replay_dead_letters
from shared.composition import AppServices, reset_app_services
from shared.adapters.storage_account import azurite_connection_string
from tools.azurite import AzuriteProcess, free_port

SERVICES = ("blob", "queue", "table")


@pytest.fixture
def storage(tmp_path, app_env, monkeypatch):
    """Blob, queue and table emulators as separate processes persisting under tmp_path."""
    ports = {name: free_port() for name in SERVICES}
    processes = {}
    for name in SERVICES:
        (tmp_path / name).mkdir()
        processes[name] = AzuriteProcess(ports["blob"], ports["queue"], ports["table"], None,
                                         location=str(tmp_path / name), only=name)
        processes[name].start()
    monkeypatch.setenv("AzureWebJobsStorage", azurite_connection_string(**ports))
    monkeypatch.setenv("FRAUD_STORAGE_RETRIES", "1")
    monkeypatch.setenv("FRAUD_RULES", json.dumps({"channel_ceilings": {"pos": 50000}, "ceiling_risk": "High"}))
    monkeypatch.setattr(score_stream_module, "BACKOFF_SECONDS", 0.05)  # the function's own retries: 0.35 s of waits
    reset_app_services()
    yield processes
    for process in processes.values():
        process.stop()
    reset_app_services()


@pytest.fixture
def outage_services(storage, trained_artifact) -> AppServices:
    services = AppServices(dict(os.environ))
    services.ensure_resources()
    publish_signed(services, trained_artifact, current=True)
    return services


def stream(run: str, batches: int, size: int) -> list[list[dict]]:
    start = datetime.now(timezone.utc) - timedelta(hours=6)
    bodies = []
    for k in range(batches * size):
        body = transaction(0, customer=f"{run}-C{k % 7}", amount=9000.0 + 6000.0 * (k % 10),
                           when=(start + timedelta(seconds=30 * k)).isoformat())
        body["transaction_id"] = f"{run}-T{k}"
        bodies.append(body)
    return [bodies[k:k + size] for k in range(0, len(bodies), size)]


def deliver_like_the_host(batch: list, sequence: int, attempts: int = 40,
                          failed: threading.Event | None = None) -> int:
    """The host's retry policy: the whole batch again after a failure (here with a 0.5 s
    interval instead of its minutes-long ones). Sets ``failed`` when an attempt fails.
    Returns how many host-level attempts it took."""
    events = event_hub_batch(batch, partition="0", first_sequence=sequence)
    for attempt in range(1, attempts + 1):
        try:
            score_stream(events)
            return attempt
        except Exception as exc:
            error = exc
            if failed is not None:
                failed.set()
            time.sleep(0.5)  # the host's retry interval, not a wait for a condition
    raise AssertionError(f"the batch never went through: {error}")


def test_an_outage_mid_stream_loses_nothing_and_counts_nothing_twice(storage, outage_services):
    run = uuid.uuid4().hex[:8]
    batches = stream(run, batches=24, size=10)
    half_way = threading.Event()

    failures = []

    down = threading.Event()
    host_retried = threading.Event()

    def outage():
        half_way.wait()
        for process in storage.values():
            process.stop()
        down.set()
        # Storage stays down until a batch has outlasted the function's own retries and
        # failed at the host level: the host's retry is what this test is about.
        if not host_retried.wait(timeout=300):
            failures.append(AssertionError("no host-level failure within 300 s of the outage"))

        def start(process):
            try:
                process.start()
            except Exception as exc:  # surfaced below
                failures.append(exc)

        restarts = [threading.Thread(target=start, args=(p,)) for p in storage.values()]
        for thread in restarts:
            thread.start()
        for thread in restarts:
            thread.join()

    breaker = threading.Thread(target=outage)
    breaker.start()
    host_attempts = []
    for k, batch in enumerate(batches):
        if k == len(batches) // 3:
            half_way.set()
            down.wait()  # the next batch meets the outage
        host_attempts.append(deliver_like_the_host(batch, sequence=k * 10, failed=host_retried))
        time.sleep(0.1)
    breaker.join()
    assert not failures

    sent = [body for batch in batches for body in batch]
    assert max(host_attempts) > 1, "the outage must have hit the stream"
    # Each event was scored or dead-lettered (a service that came back before the others
    # lets the function dead-letter what it could not score) ...
    scored = {r["RowKey"] for r in audit_rows(outage_services)}
    dead = {json.loads(base64.b64decode(d["raw_base64"]))["transaction_id"] for d in outage_services.dead_letters.list()}
    assert scored | dead == {b["transaction_id"] for b in sent}
    print(f"outage: {len(sent)} sent, {len(scored)} scored, {len(dead)} dead-lettered, "
          f"host attempts max {max(host_attempts)}, batches retried by the host {sum(a > 1 for a in host_attempts)}")
    # ... and replaying the dead letters scores each remaining event once.
    replay_dead_letters(outage_services.scoring, outage_services.dead_letters)
    assert list(outage_services.dead_letters.list()) == []
    rows = audit_rows(outage_services)
    assert sorted(r["RowKey"] for r in rows) == sorted(b["transaction_id"] for b in sent)  # each once
    for c in range(7):  # no transaction applied twice to a profile
        customer = f"{run}-C{c}"
        assert outage_services.profiles.load(customer).profile.history_count == sum(
            1 for b in sent if b["customer_id"] == customer)
    high = {r["RowKey"] for r in rows if r["risk_level"] == "High"}
    alerts = [a["transaction_id"] for a in outage_services.alerts.receive_all()]
    assert high and set(alerts) == high  # none lost (at least once; consumers dedupe by transaction id)


def test_tables_down_past_the_retries_dead_letters_the_batch_and_replay_scores_it_once(storage, outage_services):
    run = uuid.uuid4().hex[:8]
    (first, second) = stream(run, batches=2, size=8)
    deliver_like_the_host(first, sequence=0)
    storage["table"].stop()
    try:
        assert deliver_like_the_host(second, sequence=8) == 1  # dead-lettered by the function itself
    finally:
        storage["table"].start()
    letters = list(outage_services.dead_letters.list())
    assert len(letters) == len(second)
    assert all("not scored after 4 attempts" in letter["reasons"][0]["problem"] for letter in letters)
    assert sorted(r["RowKey"] for r in audit_rows(outage_services)) == sorted(b["transaction_id"] for b in first)

    replayed = replay_dead_letters(outage_services.scoring, outage_services.dead_letters)
    assert replayed.scored == len(second) and replayed.still_invalid == 0
    again = replay_dead_letters(outage_services.scoring, outage_services.dead_letters)  # twice: no change
    assert again.scored == 0
    sent = first + second
    assert sorted(r["RowKey"] for r in audit_rows(outage_services)) == sorted(b["transaction_id"] for b in sent)
    for c in range(7):
        customer = f"{run}-C{c}"
        assert outage_services.profiles.load(customer).profile.history_count == sum(
            1 for b in sent if b["customer_id"] == customer)


def test_blob_storage_down_during_a_model_swap_keeps_the_old_model_serving(storage, outage_services, published_v2):
    services = AppServices(dict(os.environ))
    serving = services.serving_model
    old = serving.get().version
    services.registry.set_current(published_v2.version, services.registry.current())  # a swap is due
    storage["blob"].stop()
    try:
        serving.refresh_now()  # the refresh fails: storage is down
        assert serving.loaded.version == old and serving.history[-1].outcome == "error"
        run = uuid.uuid4().hex[:8]
        deliveries = services.scoring.score_events(to_incoming(event_hub_batch(stream(run, 1, 5)[0]))).deliveries
        assert len(deliveries) == 5 and {d.record.model_version for d in deliveries} == {old}
        # the archive and the training sample could not append: their decisions wait in memory
        waiting = [o for o in services.decision_outlets if hasattr(o, "pending")]
        assert [o.pending for o in waiting if o.name == "decision archive"] == [5]
    finally:
        storage["blob"].start()
    later = to_incoming(event_hub_batch(stream(uuid.uuid4().hex[:8], 1, 3)[0]))
    services.scoring.score_events(later)  # Blob back: the waiting decisions are written first
    assert [o.pending for o in waiting] == [0] * len(waiting)
    serving.refresh_now()
    assert serving.loaded.version == published_v2.version


@pytest.fixture
def published_v2(outage_services):
    from conftest import make_artifact

    artifact = make_artifact("test-v2", seed=3)
    publish_signed(outage_services, artifact)
    return artifact


def test_labels_and_model_answer_503_while_their_storage_is_down(storage, outage_services):
    from fraud_events import analyst_post, http_get, http_post
    from functions.labels_http import labels_http
    from functions.model_http import model_http

    storage["table"].stop()
    try:
        response = labels_http(analyst_post("labels", {"transaction_id": "T1", "label": "fraud"}))
        assert response.status_code == 503 and response.headers["Retry-After"]
    finally:
        storage["table"].start()
    storage["blob"].stop()
    try:
        response = model_http(http_get("model"))
        assert response.status_code == 503 and json.loads(response.get_body())["error"] == "storage_unavailable"
    finally:
        storage["blob"].start()
    assert labels_http(analyst_post("labels", {"transaction_id": "T1", "label": "fraud"})).status_code == 202
