"""Delivery guarantees on Azurite: at-least-once delivery and concurrency change nothing.

- Every batch may be delivered again (the host replays from its last checkpoint) and the
  partitions' batches interleave in any order: profiles, audit log and alerts come out
  identical to one in-order delivery. (Event Hubs keeps order within a partition, and the
  producer partitions by customer, so one customer's events never overtake each other.)
- 50 simultaneous HTTP scorings of one customer through a real HTTP server: all answered,
  and the profile counts exactly 50.
"""
from __future__ import annotations

import json
import os
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from threading import Barrier

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import publish_signed
from fraud_events import audit_rows, event_hub_batch, transaction
from functions.score_stream import to_incoming
from shared.composition import AppServices

CUSTOMERS = 4
PER_CUSTOMER = 6
PARTITIONS = 2
STORAGE_NAMES = ("FRAUD_PROFILE_TABLE", "FRAUD_AUDIT_TABLE", "FRAUD_ALERT_QUEUE", "FRAUD_DEAD_LETTER_CONTAINER",
                 "FRAUD_MODEL_CONTAINER", "FRAUD_LABEL_TABLE", "FRAUD_LABELS_CONTAINER", "FRAUD_MONITORING_CONTAINER",
                 "FRAUD_RETRAIN_CONTAINER", "FRAUD_MERCHANT_TABLE")
# amounts over the POS ceiling are High: a deterministic mix of alerts and no alerts
RULES = json.dumps({"channel_ceilings": {"pos": 50000}, "ceiling_risk": "High"})


def fresh_services(artifact) -> AppServices:
    """Services over storage of their own (new table/container/queue names), model published."""
    suffix = uuid.uuid4().hex[:8]
    env = dict(os.environ, FRAUD_RULES=RULES)
    for key in STORAGE_NAMES:
        env[key] = env[key] + (suffix if key.endswith("_TABLE") else f"-{suffix}")
    services = AppServices(env)
    services.ensure_resources()
    publish_signed(services, artifact, current=True)
    return services


def partition_streams(run: str) -> dict[str, list[dict]]:
    """Each partition's events in enqueue order; customers hashed to partitions."""
    start = datetime.now(timezone.utc) - timedelta(days=1)
    streams: dict[str, list[dict]] = {str(p): [] for p in range(PARTITIONS)}
    for k in range(CUSTOMERS * PER_CUSTOMER):
        customer = k % CUSTOMERS
        body = transaction(0, customer=f"{run}-C{customer}", amount=8000.0 + 7000.0 * (k % 9),
                           when=(start + timedelta(minutes=k)).isoformat())
        body["transaction_id"] = f"{run}-T{k}"
        streams[str(customer % PARTITIONS)].append(body)
    return streams


def deliver(services: AppServices, partition: str, batch: list[tuple[int, dict]]) -> None:
    events = event_hub_batch([body for _, body in batch], partition=partition, first_sequence=batch[0][0])
    services.scoring.score_events(to_incoming(events))


def outcome(services: AppServices, run: str) -> dict:
    volatile = {"scored_at", "latency_ms"}
    audit = sorted(({k: v for k, v in row.items() if k not in volatile} for row in services.audit.entities()),
                   key=lambda r: (r["PartitionKey"], r["RowKey"]))
    alerts = sorted((a["transaction_id"], a["risk_level"], a["action"]) for a in services.alerts.receive_all())
    profiles = {c: services.profiles.load(f"{run}-C{c}").profile.to_json() for c in range(CUSTOMERS)}
    return {"audit": audit, "alerts": alerts, "profiles": profiles}


@st.composite
def delivery_schedules(draw, streams: dict[str, list[dict]]):
    """Batches per partition (random sizes); partitions interleaved at random; after any
    batch the host may replay from an earlier checkpoint (re-delivering 1-3 batches)."""
    batches: dict[str, list[list[tuple[int, dict]]]] = {}
    for partition, events in streams.items():
        numbered = list(enumerate(events))
        cuts, k = [], 0
        while k < len(numbered):
            size = draw(st.integers(1, 5))
            cuts.append(numbered[k:k + size])
            k += size
        batches[partition] = cuts
    cursor = {p: 0 for p in batches}
    schedule = []
    while any(cursor[p] < len(batches[p]) for p in batches):
        partition = draw(st.sampled_from(sorted(p for p in batches if cursor[p] < len(batches[p]))))
        schedule.append((partition, batches[partition][cursor[partition]]))
        cursor[partition] += 1
        if draw(st.booleans()):  # replay from an earlier checkpoint
            back = draw(st.integers(1, min(3, cursor[partition])))
            schedule.extend((partition, b) for b in batches[partition][cursor[partition] - back:cursor[partition]])
    return batches, schedule


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_replayed_and_interleaved_batches_give_the_same_result_as_one_in_order_delivery(app_env, trained_artifact, data):
    run = uuid.uuid4().hex[:8]
    streams = partition_streams(run)
    batches, schedule = data.draw(delivery_schedules(streams), label="schedule")
    reference, replayed = fresh_services(trained_artifact), fresh_services(trained_artifact)

    for partition in sorted(batches):  # the reference: each batch once, partition by partition
        for batch in batches[partition]:
            deliver(reference, partition, batch)
    for partition, batch in schedule:
        deliver(replayed, partition, batch)

    expected, actual = outcome(reference, run), outcome(replayed, run)
    assert len(schedule) >= sum(len(b) for b in batches.values())
    assert len([r for r in expected["audit"] if not r["PartitionKey"].startswith("idx-")]) == CUSTOMERS * PER_CUSTOMER
    assert expected["alerts"], "the rules make some decisions High"
    assert actual["profiles"] == expected["profiles"]
    assert actual["audit"] == expected["audit"]
    assert actual["alerts"] == expected["alerts"]


def test_every_batch_delivered_twice_partitions_in_reverse_gives_the_same_result(app_env, trained_artifact):
    run = uuid.uuid4().hex[:8]
    streams = partition_streams(run)
    batches = {p: [list(enumerate(events))[k:k + 4] for k in range(0, len(events), 4)] for p, events in streams.items()}
    reference, twice = fresh_services(trained_artifact), fresh_services(trained_artifact)
    for partition in sorted(batches):
        for batch in batches[partition]:
            deliver(reference, partition, batch)
    for partition in sorted(batches, reverse=True):  # the other partition first
        for batch in batches[partition]:
            deliver(twice, partition, batch)
            deliver(twice, partition, batch)  # every batch again, straight away ...
    for partition in sorted(batches):
        for batch in batches[partition]:
            deliver(twice, partition, batch)  # ... and the whole stream replayed once more
    assert outcome(twice, run) == outcome(reference, run)


def post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_fifty_simultaneous_http_scorings_of_one_customer_count_exactly_fifty(published, services):
    from function_app import indexed_functions
    from tools.local_host import serve_in_background

    server, base = serve_in_background(indexed_functions())
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    bodies = [transaction(i, customer="C50", amount=1000.0 + i, when=(start + timedelta(seconds=i)).isoformat())
              for i in range(50)]
    ready = Barrier(50)

    def score(body):
        ready.wait()  # all fifty in flight together
        return post_json(f"{base}/api/score", body)

    try:
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(score, bodies))
    finally:
        server.shutdown()
    assert [status for status, _ in answers] == [200] * 50, [a for a in answers if a[0] != 200][:3]
    assert not any(body["duplicate"] for _, body in answers)
    assert services.profiles.load("C50").profile.history_count == 50
    assert sorted(r["RowKey"] for r in audit_rows(services)) == sorted(b["transaction_id"] for b in bodies)
