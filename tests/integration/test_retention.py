"""Retention on Azurite through the timer function: everything past its retention goes, nothing
inside a retention window is touched (full entity snapshots, ETags included), and a second run
deletes nothing."""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.functions.timer import TimerRequest

from fraud_events import decision_record
from shared.composition import app_services, reset_app_services
from shared.domain.dead_letter import DeadLetter
from shared.domain.labels import Label
from shared.domain.retention import utc_hour_key

DAY = timedelta(days=1)


@pytest.fixture
def live(app_env, monkeypatch):
    """The app's own services (the ones the timer function uses; each test its own tables)."""
    reset_app_services()
    services = app_services()
    services.ensure_resources()
    yield services
    reset_app_services()


def tables(services):
    names = {"audit": services.config.audit_table, "labels": services.config.label_table,
             "profiles": services.config.profile_table, "aggregates": services.config.aggregate_table}
    return {store: services.table_service.get_table_client(name) for store, name in names.items()}


def snapshot(services) -> dict[str, dict]:
    """Every entity of the stores retention works on (all properties and the ETag), and every
    dead letter (name -> ETag)."""
    shot = {store: {(e["PartitionKey"], e["RowKey"]): {**dict(e), "etag": e.metadata["etag"]}
                    for e in client.list_entities()} for store, client in tables(services).items()}
    container = services.blob_service.get_container_client(services.config.dead_letter_container)
    shot["dead_letters"] = {b.name: b.etag for b in container.list_blobs()}
    return shot


def seed(services, now: datetime) -> dict[str, set]:
    """Data a day either side of every cut-off (defaults: audit 180, labels 400, dead letters 30,
    profiles 90 days); returns the keys that must go, per store."""
    old_time, young_time = now - 181 * DAY, now - 179 * DAY
    old = [decision_record(f"OLD{i}", old_time + timedelta(minutes=7 * i), "Low", customer=f"C{i}") for i in range(150)]
    young = [decision_record(f"YOUNG{i}", young_time + timedelta(minutes=7 * i), "High") for i in range(20)]
    services.audit.write(old + young)
    young_pk = services.audit.locate(["YOUNG0"])["YOUNG0"].audit_pk
    services.audit.set_labels([(young_pk, "YOUNG0", {"label": 1, "labelled_at": "", "label_source": "case"})])

    services.label_store.put([Label(f"LOLD{i}", i % 2 == 0, None, None, "case") for i in range(30)], now=now - 401 * DAY)
    services.label_store.put([Label(f"LNEW{i}", True, None, None, "case") for i in range(5)], now=now - 399 * DAY)
    services.label_store.record_file("2025-01-01.csv", "etag-1", 30, [])
    services.label_store.mark_compromised("C1", now - 500 * DAY)

    letters = {}
    for days, seq in ((40, 1), (32, 2), (28, 3), (0, 4)):
        meta = {"partition": "0", "sequence_number": seq, "enqueued_time": (now - days * DAY).isoformat()}
        letters[days] = services.dead_letters.put(DeadLetter(b"{oops", [{"field": "$", "problem": "not JSON"}],
                                                             "eventhub", meta))

    profiles = services.profiles
    try:
        profiles.clock = lambda: now - 91 * DAY
        profiles.commit(profiles.load("GONE"), [decision_record(f"G{i}", now - 91 * DAY, "Low", customer="GONE")
                                                for i in range(99)])
        profiles.commit(profiles.load("GONE"), [decision_record("G99", now - 91 * DAY, "Low", customer="GONE")])
        profiles.commit(profiles.load("ACTIVE"), [decision_record("A-old", now - 91 * DAY, "Low", customer="ACTIVE")])
        profiles.clock = lambda: now - 89 * DAY
        profiles.commit(profiles.load("ACTIVE"), [decision_record("A-new", now - 89 * DAY, "Low", customer="ACTIVE")])
        profiles.commit(profiles.load("RECENT"), [decision_record("R1", now - 89 * DAY, "Low", customer="RECENT")])
    finally:
        del profiles.clock  # back to the class's wall clock

    aggregates = tables(services)["aggregates"]
    old_hours = [utc_hour_key(old_time + timedelta(hours=h)) for h in range(3)]
    for hour in old_hours + [utc_hour_key(young_time)]:
        for process in ("proc-a", "proc-b"):
            aggregates.upsert_entity({"PartitionKey": hour, "RowKey": process, "decisions": 10})

    from shared.adapters.audit_table import index_partition
    from shared.adapters.label_table import history_partition, label_partition

    gone, active = services.pseudonyms.customer("GONE"), services.pseudonyms.customer("ACTIVE")  # the partition keys
    return {
        "audit": {(services.audit.locate([r.transaction_id])[r.transaction_id].audit_pk, r.transaction_id) for r in old}
        | {(index_partition(r.transaction_id), r.transaction_id) for r in old},
        "labels": {(label_partition(f"LOLD{i}"), f"LOLD{i}") for i in range(30)}  # current labels
        | {(history_partition(e["transaction_id"]), e["RowKey"]) for i in range(30)  # and their history entries
           for e in services.label_store.history(f"LOLD{i}")},
        "profiles": {(gone, "profile"), (active, "txn:A-old")} | {(gone, f"txn:G{i}") for i in range(100)},
        "aggregates": {(hour, p) for hour in old_hours for p in ("proc-a", "proc-b")},
        "dead_letters": {letters[40], letters[32]},
    }


def run_timer(caplog) -> dict:
    from functions.retention_timer import retention_timer

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fraud.retention"):
        retention_timer(TimerRequest(past_due=False))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "fraud.retention"]
    return json.loads(line)


def test_the_timer_deletes_what_is_past_retention_and_touches_nothing_inside_it(live, caplog):
    expired = seed(live, datetime.now(timezone.utc))
    assert len(expired["labels"]) == 60 and len(expired["audit"]) == 300
    before = snapshot(live)
    for store, keys in expired.items():
        assert keys <= set(before[store]), store  # what must go was really written

    first = run_timer(caplog)
    after = snapshot(live)
    for store, keys in expired.items():
        assert not keys & set(after[store]), f"{store}: something past retention is left"
        kept = {k: v for k, v in before[store].items() if k not in keys}
        assert after[store] == kept, f"{store}: something inside its retention window changed"
    assert first["deleted"] == {"dead_letters": 2, "labels": 60, "audit_index": 150, "audit_decisions": 150,
                                "aggregates": 6, "profile_transactions": 101, "profiles": 1}
    assert first["errors"] == {} and all(first["complete"].values())
    assert live.audit.locate(["YOUNG0"])["YOUNG0"].audit_pk and live.label_store.file_seen("2025-01-01.csv", "etag-1")

    second = run_timer(caplog)
    assert set(second["deleted"].values()) == {0} and second["errors"] == {}
    assert snapshot(live) == after


def test_a_crash_after_the_index_went_is_finished_by_the_next_run(live, caplog):
    now = datetime.now(timezone.utc)
    records = [decision_record(f"X{i}", now - 200 * DAY, "Low", customer=f"C{i}") for i in range(40)]
    live.audit.write(records)
    keys = live.audit.expired_decisions(utc_hour_key(now - 180 * DAY), 1000)
    assert live.audit.delete_index([t for _, t in keys[:25]]) == 25  # the crash: rows still there
    report = run_timer(caplog)
    assert report["deleted"]["audit_decisions"] == 40 and report["deleted"]["audit_index"] == 15
    assert report["errors"] == {}
    assert [e for e in live.audit.entities()] == []


def test_a_missing_aggregates_table_has_nothing_to_delete(live):
    from shared.adapters.aggregate_table import MonitoringAggregateTable

    missing = MonitoringAggregateTable(live.table_service.get_table_client(f"nothere{uuid.uuid4().hex[:8]}"))
    assert missing.expired_hours("2099010100", 10) == []


def test_a_retention_below_its_floor_fails_the_timer(live, monkeypatch):
    from functions.retention_timer import retention_timer
    from shared.domain.retention import RetentionTooShort

    monkeypatch.setenv("FRAUD_AUDIT_RETENTION_DAYS", "30")
    reset_app_services()
    with pytest.raises(RetentionTooShort, match="chargebacks"):
        retention_timer(TimerRequest(past_due=False))
