"""The open decision archive on Azurite: decisions scored through the real scoring service
(a redelivered batch among them) are staged in append blobs, compacted twice (the second run
changes nothing), late rows go to part-00001 alone, and DuckDB and pyarrow read back exactly
the decisions the audit log holds."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow.dataset as ds
import pytest
from azure.functions.timer import TimerRequest

from fraud_events import audit_rows, event_hub_batch, http_post, transaction
from functions.archive_timer import archive_timer
from functions.score_http import score_http
from functions.score_stream import score_stream
from shared.composition import app_services, reset_app_services
from shared.domain.decision_archive import hour_dir
from shared.domain.decision_record import unpack_features
from shared.domain.features import FEATURE_NAMES
from tools.archive import download, query

SCORED_AT = datetime(2026, 11, 30, 10, 30, tzinfo=timezone.utc)  # after every test transaction's time


@pytest.fixture
def fixed_clock():
    """The scoring service's clock fixed in one hour, so the test never straddles two."""
    app_services().scoring.clock = lambda: SCORED_AT
    return SCORED_AT


def staging_listing(services):
    container = services.blob_service.get_container_client(services.config.archive_staging_container)
    return sorted((b.name, b.size, b.etag) for b in container.list_blobs())


def archive_listing(services):
    container = services.blob_service.get_container_client(services.config.archive_container)
    return sorted((b.name, b.size, b.etag) for b in container.list_blobs())


def audit_by_id(services) -> dict[str, dict]:
    return {r["RowKey"]: r for r in audit_rows(services)}


def test_scored_decisions_are_archived_once_each_idempotently_and_late_rows_go_to_the_next_part(
        published, services, fixed_clock, tmp_path):
    bodies = [transaction(i, customer=f"C{i % 4}", amount=900.0 + 13 * i) for i in range(30)]
    for k in range(0, 30, 10):
        score_stream(event_hub_batch(bodies[k:k + 10]))
    score_stream(event_hub_batch(bodies[5:15]))  # at-least-once delivery: a batch again (duplicates)
    staged = staging_listing(services)
    assert len(staged) == 1 and staged[0][0].startswith(f"{hour_dir(SCORED_AT)}/")  # one process, one hour, one blob

    compaction = services.archive_compaction
    finished = SCORED_AT.replace(minute=0) + timedelta(hours=1)  # the scored hour's end
    assert compaction.run(now=finished)["compacted"] == []  # the grace has not passed
    report = compaction.run(now=finished + timedelta(minutes=10))
    assert [(c["part"], c["rows"]) for c in report["compacted"]] == [(0, 30)]
    before = archive_listing(services)
    assert compaction.run(now=finished + timedelta(hours=3))["compacted"] == []
    assert archive_listing(services) == before  # the second run changed nothing

    # late: new transactions and a redelivery appended to the hour after its compaction
    late = [transaction(100 + i, customer="C9", amount=50_000.0 + i) for i in range(5)]
    score_stream(event_hub_batch(late + bodies[:3]))
    report = compaction.run(now=finished + timedelta(hours=4))
    assert [(c["part"], c["rows"]) for c in report["compacted"]] == [(1, 5)]
    names = [n for n, _, _ in archive_listing(services) if n.endswith(".parquet")]
    assert names == [f"decisions/{hour_dir(SCORED_AT)}/part-00000.parquet", f"decisions/{hour_dir(SCORED_AT)}/part-00001.parquet"]

    audit = audit_by_id(services)
    assert len(audit) == 35
    copied = download(services.decision_archive, tmp_path / "archive")
    assert len(copied) == 2 and download(services.decision_archive, tmp_path / "archive") == []

    # pyarrow: every decision once, as the audit log has it (scores, levels, actions, features)
    table = ds.dataset(tmp_path / "archive" / "decisions", format="parquet", partitioning="hive").to_table()
    rows = table.to_pylist()
    assert sorted(r["transaction_id"] for r in rows) == sorted(audit)
    for row in rows:
        logged = audit[row["transaction_id"]]
        assert (row["fraud_score"], row["risk_level"], row["action"], row["model_version"], row["customer_id"]) == (
            logged["fraud_score"], logged["risk_level"], logged["action"], logged["model_version"], logged["customer_id"])
        assert row["scored_at"] == SCORED_AT and row["event_time"] == datetime.fromisoformat(logged["timestamp"])
        assert np.array_equal(np.array([row[n] for n in FEATURE_NAMES], dtype=np.float32),
                              unpack_features(logged["features"]))
        assert row["date"] == "2026-11-30" and int(row["hour"]) == 10
    part0 = ds.dataset(tmp_path / "archive" / copied[0].relative_to(tmp_path / "archive"), format="parquet").to_table()
    assert part0.column("transaction_id").to_pylist() == sorted(f"T{i}" for i in range(30))  # one scored_at: by id

    # DuckDB, over the downloaded files (the README's query and a per-row one)
    columns, counts = query(tmp_path / "archive")
    assert columns[:5] == ["date", "hour", "model_version", "decisions", "blocks"]
    assert [tuple(r[:4]) for r in counts] == [(datetime(2026, 11, 30).date(), 10, published.version, 35)]
    _, by_duckdb = query(tmp_path / "archive", "SELECT transaction_id, fraud_score, risk_level, amount, is_new_device "
                                                "FROM read_parquet('{root}/decisions/*/*/*.parquet', hive_partitioning = true)")
    assert {r[0]: (r[1], r[2]) for r in by_duckdb} == {t: (a["fraud_score"], a["risk_level"]) for t, a in audit.items()}
    index = FEATURE_NAMES.index("amount")
    assert all(r[3] == float(unpack_features(audit[r[0]]["features"])[index]) for r in by_duckdb)


def test_the_archive_timer_compacts_finished_hours(published, services, fixed_clock):
    score_stream(event_hub_batch([transaction(i, customer="C1") for i in range(6)]))
    archive_timer(TimerRequest(past_due=True))  # the real clock is past SCORED_AT's hour + grace
    (manifest,) = services.decision_archive.manifests(SCORED_AT)
    assert manifest["rows"] == 6 and manifest["file"] == f"decisions/{hour_dir(SCORED_AT)}/part-00000.parquet"
    archive_timer(TimerRequest(past_due=False))
    assert len(services.decision_archive.manifests(SCORED_AT)) == 1



def test_sequential_http_requests_share_one_archive_append_and_every_line_arrives(published, services, monkeypatch):
    """FRAUD_ARCHIVE_LINGER_MS: one-decision calls (HTTP) wait to share an append; an Event Hub
    batch is appended with its call, together with the lines that wait."""
    monkeypatch.setenv("FRAUD_ARCHIVE_LINGER_MS", "600000")  # nothing is due during the test
    reset_app_services()
    app = app_services()
    app.scoring.clock = lambda: SCORED_AT
    for i in range(5):
        assert score_http(http_post("score", transaction(i, customer=f"H{i}"))).status_code == 200
    assert staging_listing(services) == []  # the five lines wait
    assert app.flush_outlets() == 2 * 5  # the five, for the archive and for the training sample (it keeps what it samples)
    (name, _, _), = staging_listing(services)
    blob = services.blob_service.get_blob_client(services.config.archive_staging_container, name)
    assert blob.get_blob_properties().append_blob_committed_block_count == 1  # one append for five requests
    staged = blob.download_blob().readall().decode().splitlines()[1:]  # after the header line
    assert sorted(json.loads(line)["transaction_id"] for line in staged) == sorted(transaction(i)["transaction_id"] for i in range(5))

    for i in range(5, 7):
        score_http(http_post("score", transaction(i, customer=f"H{i}")))
    score_stream(event_hub_batch([transaction(i, customer="E1") for i in range(10, 50)]))  # 40: at once, with the 2
    assert blob.get_blob_properties().append_blob_committed_block_count == 2
    assert len(blob.download_blob().readall().decode().splitlines()) == 1 + 5 + 2 + 40
