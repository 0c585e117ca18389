"""The decision archive on fakes: the staging line and the row, the outlet's appends, and
compaction (idempotent, late parts, spilled runs, a stopped run finished)."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow.parquet as pq
import pytest

from fakes import FakeDecisionArchive, FakeDecisionStaging
from shared.domain.decision import Verdict
from shared.domain.decision_archive import (DECISION_COLUMN_NAMES, archive_row, check_feature_names, hour_dir,
                                            parse_hour_dir, parse_staging, part_name, staging_header, staging_line)
from shared.domain.decision_record import DecisionRecord, Delivery, ShadowScore
from shared.domain.features import FEATURE_NAMES
from shared.domain.transaction import Transaction
from shared.service.archive_compaction import CompactionFailed, CompactionLimits, DecisionArchiveCompaction
from shared.service.archive_outlet import DecisionArchiveOutlet
from shared.service.ports import StagingBlobFull

LAGOS = timezone(timedelta(hours=1))
HOUR = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


def record(i: int, scored_at: datetime, shadow: bool = False, risk: str = "Low") -> DecisionRecord:
    rng = np.random.default_rng(i)
    txn = Transaction(f"T{i:05d}", f"C{i % 7}", 1000.0 + i * 0.37, "NGN",
                      datetime(2026, 11, 20, 10, i % 60, i % 59, 123456 if i % 2 else 0, tzinfo=LAGOS),
                      device_id=f"D{i}" if i % 3 else None, merchant_id="M1", merchant_category="grocery",
                      channel="pos", country="NG" if i % 4 else None)
    verdict = Verdict(risk, {"Low": "approve", "Medium": "review", "High": "block"}[risk], risk == "High",
                      ("amount 14× the 30-day average",) if risk != "Low" else (), ("block_devices",) if i % 5 == 0 else ())
    return DecisionRecord(txn, float(rng.random()), verdict, "m-v1", rng.normal(size=len(FEATURE_NAMES)).astype(np.float32),
                          scored_at, "eventhub", 3.25 + i, ShadowScore("m-v2", 0.123456) if shadow else None)


def expected_row(r: DecisionRecord) -> dict:
    """The archive row of a record, written out field by field (the spec the code must meet)."""
    t = r.transaction
    row = {"transaction_id": t.transaction_id, "customer_id": t.customer_id, "transaction_amount": t.transaction_amount,
           "currency": t.currency, "event_time": t.timestamp.astimezone(timezone.utc), "event_utc_offset_minutes": 60,
           "device_id": t.device_id, "merchant_id": t.merchant_id, "merchant_category": t.merchant_category,
           "channel": t.channel, "country": t.country, "scored_at": r.scored_at, "fraud_score": r.fraud_score,
           "risk_level": r.risk_level, "action": r.verdict.action, "is_fraud": r.verdict.is_fraud,
           "reasons": list(r.verdict.reasons), "rules_fired": list(r.verdict.rules_fired), "model_version": r.model_version,
           "shadow_score": r.shadow.score if r.shadow else None, "shadow_version": r.shadow.version if r.shadow else None,
           "latency_ms": r.latency_ms, "source": r.source, "feature_schema_hash": json.loads(staging_header())["feature_schema_hash"]}
    row.update(zip(FEATURE_NAMES, (float(v) for v in r.features)))
    return row


def test_a_staging_line_reads_back_to_exactly_the_record_as_a_row():
    records = [record(1, HOUR + timedelta(minutes=3), shadow=True, risk="High"), record(2, HOUR + timedelta(seconds=1.5))]
    lines = staging_header() + b"".join(staging_line(r) for r in records)
    rows = [archive_row(doc, header) for header, doc in parse_staging(lines.splitlines())]
    assert rows == [expected_row(r) for r in records]
    assert list(rows[0])[:len(DECISION_COLUMN_NAMES)] == list(DECISION_COLUMN_NAMES)
    assert rows[0]["event_time"].tzinfo == timezone.utc and rows[0]["reasons"] == ["amount 14× the 30-day average"]
    # float32 features exactly, not via decimal text
    assert np.array_equal(np.array([rows[0][n] for n in FEATURE_NAMES], dtype=np.float32), records[0].features)


def test_a_line_before_any_header_is_refused_and_a_repeated_header_is_harmless():
    line = staging_line(record(1, HOUR))
    with pytest.raises(ValueError, match="before any header"):
        list(parse_staging([line]))
    assert len(list(parse_staging([staging_header(), line, staging_header(), line]))) == 2


def test_the_layout_names_hours_hive_style():
    assert hour_dir(datetime(2026, 11, 20, 10, 59, tzinfo=LAGOS)) == "date=2026-11-20/hour=09"
    assert part_name(HOUR, 1) == "decisions/date=2026-11-20/hour=09/part-00001.parquet"
    assert parse_hour_dir("x/date=2026-11-20/hour=09/p-1.jsonl") == HOUR
    with pytest.raises(ValueError):
        check_feature_names(["amount", "risk_level"])


# -- the outlet --------------------------------------------------------------------------------
def test_one_append_per_scoring_call_to_the_process_blob_of_the_scored_hour_duplicates_included():
    staging = FakeDecisionStaging()
    outlet = DecisionArchiveOutlet(staging, process="host-1-ab")
    first = [Delivery(record(i, HOUR + timedelta(minutes=5))) for i in range(10)]
    outlet.record(first)
    outlet.record(first[:3] + [Delivery(first[3].record, duplicate=True)])
    assert staging.appends == 2
    (name,) = staging.data
    assert name == "date=2026-11-20/hour=09/host-1-ab-0.jsonl"
    lines = bytes(staging.data[name]).splitlines()
    assert json.loads(lines[0])["feature_names"] == list(FEATURE_NAMES) and len(lines) == 1 + 10 + 4
    # a call across the hour appends once per hour, each to its hour's blob
    outlet.record([Delivery(record(20, HOUR + timedelta(minutes=59))), Delivery(record(21, HOUR + timedelta(minutes=60)))])
    assert staging.appends == 4 and sorted(staging.data)[-1] == "date=2026-11-20/hour=10/host-1-ab-0.jsonl"


def test_the_outlet_cuts_large_calls_at_line_ends_and_rolls_full_blobs():
    staging = FakeDecisionStaging(max_blocks=3)
    line = len(staging_line(record(0, HOUR)))
    outlet = DecisionArchiveOutlet(staging, process="p", max_append_bytes=len(staging_header()) + 2 * line + 10)
    outlet.record([Delivery(record(i, HOUR)) for i in range(5)])  # 3 appends of 2, 2 and 1 lines: the blob is full
    outlet.record([Delivery(record(i, HOUR)) for i in range(5, 7)])
    assert sorted(staging.data) == ["date=2026-11-20/hour=09/p-0.jsonl", "date=2026-11-20/hour=09/p-1.jsonl"]
    assert [len(bytes(b).splitlines()) for _, b in sorted(staging.data.items())] == [1 + 5, 1 + 2]
    # the service saying "full" (another limit) rolls too, and the lines are appended once
    staging.fail_next = StagingBlobFull("p-1")
    outlet.record([Delivery(record(9, HOUR))])
    assert "date=2026-11-20/hour=09/p-2.jsonl" in staging.data


def test_a_failed_append_raises_so_the_batch_is_retried():
    staging = FakeDecisionStaging()
    outlet = DecisionArchiveOutlet(staging, process="p")
    staging.fail_next = ConnectionError("storage down")
    with pytest.raises(ConnectionError):
        outlet.record([Delivery(record(1, HOUR))])
    outlet.record([Delivery(record(1, HOUR))])  # the retry creates the blob and writes its header first
    assert bytes(staging.data["date=2026-11-20/hour=09/p-0.jsonl"]).startswith(staging_header())


# -- compaction ------------------------------------------------------------------------------
def read_parts(archive: FakeDecisionArchive) -> list[list[dict]]:
    return [pq.read_table(io.BytesIO(archive.files[n])).to_pylist() for n in archive.parquet_names()]


def staged(records_by_process: dict[str, list[DecisionRecord]], staging=None, batch: int = 7) -> FakeDecisionStaging:
    staging = staging or FakeDecisionStaging()
    for process, records in records_by_process.items():
        outlet = DecisionArchiveOutlet(staging, process=process)
        for k in range(0, len(records), batch):
            outlet.record([Delivery(r) for r in records[k:k + batch]])
    return staging


@pytest.mark.parametrize("limits", [CompactionLimits(), CompactionLimits(parse_bytes=3000, run_rows=11, merge_rows=4,
                                                                         row_group_rows=9)],
                         ids=["in-memory", "spilled-runs"])
def test_compaction_is_idempotent_sorted_one_row_per_id_and_late_rows_go_to_the_next_part(limits):
    when = [HOUR + timedelta(seconds=7 * (i // 3)) for i in range(60)]  # three decisions share each scored_at
    records = [record(i, when[i], shadow=i % 2 == 0) for i in range(60)]
    # two processes, interleaved in time; process b also archives a redelivered batch (duplicates)
    staging = staged({"a": records[0::2], "b": records[1::2] + records[1:20:2]})
    archive = FakeDecisionArchive()
    compaction = DecisionArchiveCompaction(staging, archive, grace=timedelta(minutes=10), limits=limits)

    assert compaction.run(now=HOUR + timedelta(minutes=69))["compacted"] == []  # not finished + grace yet
    report = compaction.run(now=HOUR + timedelta(minutes=70))
    assert [(c["part"], c["rows"]) for c in report["compacted"]] == [(0, 60)]
    files = dict(archive.files)
    assert compaction.run(now=HOUR + timedelta(hours=5))["compacted"] == [] and archive.files == files

    (rows,) = read_parts(archive)
    expected = sorted((expected_row(r) for r in records), key=lambda r: (r["scored_at"], r["transaction_id"]))
    assert rows == expected

    late = [record(100 + i, HOUR + timedelta(minutes=58)) for i in range(4)]
    staged({"a": records[:6] + late[:2], "c": late[2:] + records[50:52]}, staging)  # late: new ids and repeats
    report = compaction.run(now=HOUR + timedelta(hours=6))
    assert [(c["part"], c["rows"]) for c in report["compacted"]] == [(1, 4)]
    first, second = read_parts(archive)
    assert first == rows and second == [expected_row(r) for r in sorted(late, key=lambda r: r.transaction_id)]
    manifests = archive.manifests(HOUR)
    assert [m["part"] for m in manifests] == [0, 1] and manifests[1]["duplicates_of_earlier_parts"] == 8
    # only repeats arrive: a manifest without a part, and still nothing twice
    staged({"d": records[:3]}, staging)
    assert compaction.run(now=HOUR + timedelta(hours=7))["compacted"][0] | {"seconds": 0} == {
        "hour": hour_dir(HOUR), "part": 2, "rows": 0, "file": None, "staged_bytes": pytest.approx(
            len(staging_header()) + sum(len(staging_line(r)) for r in records[:3])), "seconds": 0}
    assert len(archive.parquet_names()) == 2


def test_a_run_stopped_between_the_part_and_its_manifest_is_finished_by_the_next():
    records = [record(i, HOUR + timedelta(seconds=i)) for i in range(10)]
    staging = staged({"a": records})
    archive = FakeDecisionArchive()
    compaction = DecisionArchiveCompaction(staging, archive, grace=timedelta(minutes=10))
    real_write = archive.write_manifest

    def crash(*args):
        raise ConnectionError("stopped")

    archive.write_manifest = crash
    with pytest.raises(CompactionFailed, match="ConnectionError: stopped"):
        compaction.run(now=HOUR + timedelta(hours=2))
    archive.write_manifest = real_write
    assert compaction.run(now=HOUR + timedelta(hours=2))["compacted"] == []  # the part stands; its manifest rebuilt
    (manifest,) = archive.manifests(HOUR)
    assert manifest["recovered"] and manifest["rows"] == 10 and manifest["ranges"][0]["end"] == len(
        staging.data["date=2026-11-20/hour=09/a-0.jsonl"])
    assert len(read_parts(archive)[0]) == 10


def test_a_run_compacts_at_most_max_hours_oldest_first():
    staging = staged({"a": [record(i, HOUR + timedelta(hours=i)) for i in range(5)]}, batch=1)
    compaction = DecisionArchiveCompaction(staging, FakeDecisionArchive(), grace=timedelta(minutes=10),
                                           limits=CompactionLimits(max_hours=2))
    report = compaction.run(now=HOUR + timedelta(hours=10))
    assert [c["hour"] for c in report["compacted"]] == [hour_dir(HOUR), hour_dir(HOUR + timedelta(hours=1))]
    assert report["hours_waiting"] == 3
    assert len(compaction.run(now=HOUR + timedelta(hours=10))["compacted"]) == 2


def test_an_hour_staged_by_two_feature_lists_keeps_every_feature_column_null_where_a_list_lacks_it():
    from dataclasses import replace

    staging = staged({"new": [record(1, HOUR)]})
    older = record(2, HOUR + timedelta(seconds=1))
    older = replace(older, features=older.features[:-1])  # a process running code without the last feature
    staging.data["date=2026-11-20/hour=09/old-0.jsonl"] = bytearray(
        staging_header(FEATURE_NAMES[:-1], "older-hash") + staging_line(older))
    archive = FakeDecisionArchive()
    DecisionArchiveCompaction(staging, archive, grace=timedelta(minutes=10)).run(now=HOUR + timedelta(hours=2))
    (rows,) = read_parts(archive)
    assert [r["transaction_id"] for r in rows] == ["T00001", "T00002"]
    assert rows[1][FEATURE_NAMES[-1]] is None and rows[1]["feature_schema_hash"] == "older-hash"
    assert rows[1] == {**expected_row(older), FEATURE_NAMES[-1]: None, "feature_schema_hash": "older-hash"}


def test_an_hour_that_fails_does_not_hold_back_the_others_and_the_run_fails_visibly():
    staging = staged({"a": [record(i, HOUR + timedelta(hours=i)) for i in range(3)]}, batch=1)
    staging.data["date=2026-11-20/hour=09/a-0.jsonl"] += b'{"transaction_id": "broken"\n'
    archive = FakeDecisionArchive()
    compaction = DecisionArchiveCompaction(staging, archive, grace=timedelta(minutes=10))
    with pytest.raises(CompactionFailed, match="date=2026-11-20/hour=09") as failure:
        compaction.run(now=HOUR + timedelta(hours=5))
    assert [c["hour"] for c in failure.value.report["compacted"]] == [hour_dir(HOUR + timedelta(hours=h)) for h in (1, 2)]
    assert archive.manifests(HOUR) == [] and not archive.part_exists(HOUR, 0)


def test_text_that_is_not_unicode_is_staged_with_a_replacement_character():
    """A lone surrogate passes JSON validation but cannot be UTF-8 (nor a Parquet string): the
    staging line carries U+FFFD instead of failing the scoring call."""
    import json
    from dataclasses import replace

    from fraud_events import decision_record
    from shared.domain.decision_archive import staging_line

    record = decision_record("S1", datetime(2026, 12, 1, 10, tzinfo=timezone.utc), "Low")
    record = replace(record, transaction=replace(record.transaction, merchant_category="caf\ud800"))
    line = staging_line(record)
    assert json.loads(line)["merchant_category"] == "caf\ufffd"
