"""Compaction of the decision archive: each finished hour's staging lines into Parquet.

For every hour that ended ``grace`` ago and has staging bytes not yet compacted (oldest
first, at most ``max_hours`` per run), the compaction plans the byte ranges to read (each
staging blob from where the hour's last manifest stopped to its committed length now),
writes ``decisions/date=…/hour=…/part-NNNNN.parquet`` with one row per transaction id not
already archived, sorted by (scored_at, transaction_id), then the manifest
``manifests/…/part-NNNNN.json`` with the plan, the blobs' ETags and the row count. Both are
created once, never overwritten (the container is immutable in Azure). So:

* a second run finds no new bytes and changes nothing;
* lines appended after an hour was compacted (a retried batch, an append in flight past the
  grace) go into the next part, without the ids earlier parts hold: never lost, never twice;
  a plan whose rows were all archived already writes only its manifest (``file`` null);
* a run that stopped between the part and its manifest is finished by the next: the part
  carries its plan in its Parquet metadata, so the manifest is rebuilt from it.

Memory does not grow with the hour (36 million decisions at 10,000 tx/s): staging blobs are
read in 8 MiB ranges and parsed 16 MiB of lines at a time by Arrow's JSON reader;
up to ``run_rows`` rows are sorted and deduplicated in memory, and when an hour holds more,
each sorted run is spilled to a local Arrow file and the runs are merged in ``merge_rows``
slices by a scored_at watermark. Repeats of a transaction are the stored decision, same
``scored_at``, so they meet in the same slice and no id set is held. Late parts read the
earlier parts' ``transaction_id`` column only, row group by row group.

pyarrow is imported inside the functions that use it: the composition root builds this
service in scoring processes too, which must not load it.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from shared.domain.decision_archive import HEADER_KEY, hour_dir, hour_finished, is_header, part_name
from shared.service.ports import ArchiveFileExists, DecisionArchivePort, DecisionStagingPort, StagedBlob

log = logging.getLogger(__name__)
HEADER_PROBE = 64 * 1024


class CompactionFailed(Exception):
    """Some hours could not be compacted; the others were (``report``)."""

    def __init__(self, report: dict[str, Any], failed: list[str]) -> None:
        super().__init__(f"{len(failed)} hour(s) not compacted: " + "; ".join(failed))
        self.report = report
        self.failed = failed


@dataclass(frozen=True)
class CompactionLimits:
    """How much a run does and holds at once."""

    max_hours: int = 6  # hours compacted per run, oldest first
    parse_bytes: int = 16 << 20  # staging bytes (whole lines) parsed into one record batch
    run_rows: int = 500_000  # rows sorted in memory before a run is spilled to disk
    merge_rows: int = 4_096  # rows per run read at once while merging (a spilled run's batch)
    row_group_rows: int = 131_072  # rows per Parquet row group


class DecisionArchiveCompaction:
    def __init__(self, staging: DecisionStagingPort, archive: DecisionArchivePort, grace: timedelta,
                 limits: CompactionLimits = CompactionLimits(),
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.staging = staging
        self.archive = archive
        self.grace = grace
        self.limits = limits
        self.clock = clock

    def run(self, now: datetime | None = None) -> dict[str, Any]:
        """Compact the finished hours with new staging bytes, oldest first, at most ``max_hours``."""
        now = now or self.clock()
        started = time.perf_counter()
        compacted, failed, waiting = [], [], 0
        for hour in self.staging.staged_hours():
            if not hour_finished(hour, now, self.grace):
                continue
            try:
                if len(compacted) >= self.limits.max_hours:  # left for the next run: only counted
                    waiting += self._plan(hour) is not None
                    continue
                done = self.compact_hour(hour, now)
            except ArchiveFileExists as exc:  # another run wrote it first: that run's part stands
                log.warning("archive hour %s: %s was written by another run; skipping the hour", hour_dir(hour), exc)
                continue
            except Exception as exc:  # one hour's failure must not hold back the others
                log.exception("archive hour %s could not be compacted", hour_dir(hour))
                failed.append(f"{hour_dir(hour)}: {type(exc).__name__}: {exc}")
                continue
            if done is not None:
                compacted.append(done)
        report = {"event": "archive_compaction", "now": now.isoformat(), "compacted": compacted,
                  "hours_waiting": waiting, "seconds": round(time.perf_counter() - started, 3)}
        if failed:  # the run fails visibly (the next one retries those hours: nothing was written for them)
            raise CompactionFailed(report, failed)
        return report

    # -- one hour ---------------------------------------------------------------------------
    def _plan(self, hour: datetime) -> dict[str, Any] | None:
        """The next part's plan (the staging ranges not compacted yet), or None: nothing new."""
        manifests = self._manifests(hour)
        compacted: dict[str, int] = {}
        for manifest in manifests:
            for r in manifest["ranges"]:
                compacted[r["blob"]] = max(compacted.get(r["blob"], 0), r["end"])
        blobs: list[StagedBlob] = self.staging.blobs(hour)
        ranges = [{"blob": b.name, "start": compacted.get(b.name, 0), "end": b.length, "etag": b.etag}
                  for b in blobs if b.length > compacted.get(b.name, 0)]
        if not ranges:
            return None
        return {"hour": hour.isoformat(), "part": len(manifests), "ranges": ranges}

    def _manifests(self, hour: datetime) -> list[dict[str, Any]]:
        """The hour's manifests; a part left without its manifest by a stopped run gets it now."""
        manifests = self.archive.manifests(hour)
        if self.archive.part_exists(hour, len(manifests)):
            from shared.domain.archive_parquet import part_plan
            import pyarrow.parquet as pq

            part = len(manifests)
            with self.archive.open_part(hour, part) as handle:
                parquet = pq.ParquetFile(handle)
                plan, rows = part_plan(parquet.schema_arrow), parquet.metadata.num_rows
            manifest = {**plan, "rows": rows, "file": part_name(hour, part), "recovered": True}
            self.archive.write_manifest(hour, part, manifest)
            manifests.append(manifest)
        return manifests

    def compact_hour(self, hour: datetime, now: datetime | None = None) -> dict[str, Any] | None:
        """Write the hour's next part from its new staging bytes, then its manifest (None: nothing new)."""
        plan = self._plan(hour)
        if plan is None:
            return None
        started = time.perf_counter()
        part = plan["part"]
        excluded = self._already_archived(hour, part, plan["ranges"]) if part > 0 else set()
        rows = self._write_part(hour, plan, excluded)
        manifest = {**plan, "rows": rows, "duplicates_of_earlier_parts": len(excluded),
                    "file": part_name(hour, part) if rows else None,
                    "compacted_at": (now or self.clock()).isoformat(),
                    "staged_bytes": sum(r["end"] - r["start"] for r in plan["ranges"])}
        self.archive.write_manifest(hour, part, manifest)
        log.info(json.dumps({"event": "archive_part", "hour": hour_dir(hour), "part": part, "rows": rows,
                             "seconds": round(time.perf_counter() - started, 3)}))
        return {"hour": hour_dir(hour), "part": part, "rows": rows, "file": manifest["file"],
                "staged_bytes": manifest["staged_bytes"], "seconds": round(time.perf_counter() - started, 3)}

    # -- reading staging ----------------------------------------------------------------------
    def _header(self, name: str) -> dict[str, Any]:
        """A staging blob's header line (its first), for ranges that start past it."""
        end, data = HEADER_PROBE, b""
        while b"\n" not in data:
            data = b"".join(self.staging.read(name, 0, end))
            if len(data) < end and b"\n" not in data:
                raise ValueError(f"staging blob {name} has no complete header line")
            end *= 4
        header = json.loads(data.split(b"\n", 1)[0])
        if not is_header(header):
            raise ValueError(f"staging blob {name} does not start with a header line")
        return header

    def _line_blocks(self, rng: Mapping[str, Any]) -> Iterator[bytes]:
        """The range in blocks of about ``parse_bytes`` whole lines; committed lengths end on a
        line, so the range's last line is whole."""
        pending = bytearray()
        for chunk in self.staging.read(rng["blob"], rng["start"], rng["end"]):
            pending += chunk
            if len(pending) >= self.limits.parse_bytes:
                cut = pending.rfind(b"\n") + 1
                if cut:
                    yield bytes(pending[:cut])
                    del pending[:cut]
        if pending.strip():
            if not pending.endswith(b"\n"):
                raise ValueError(f"staging blob {rng['blob']} range ends inside a line")
            yield bytes(pending)

    def _staged(self, ranges: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Mapping[str, Any], Any]]:
        """(header, Arrow table of decision lines) for each block of the ranges."""
        from shared.domain.archive_parquet import staging_table

        for rng in ranges:
            header = self._header(rng["blob"])
            for block in self._line_blocks(rng):
                table = staging_table(block)
                if table.num_rows:
                    yield header, table

    def _feature_names(self, ranges: list[Mapping[str, Any]]) -> list[str]:
        """The part's feature columns: every feature its blobs name, in first-seen order."""
        names: dict[str, None] = {}
        for rng in ranges:
            for name in self._header(rng["blob"])[HEADER_KEY]:
                names.setdefault(name, None)
        return list(names)

    def _already_archived(self, hour: datetime, part: int, ranges: list[Mapping[str, Any]]) -> set[str]:
        """Which of the new ranges' ids an earlier part of the hour holds (late lines are few:
        their ids are held; the earlier parts are read one column, one row group at a time)."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        candidates = pa.array(sorted({i for _, table in self._staged(ranges)
                                      for i in table.column("transaction_id").to_pylist()}), pa.string())
        found: set[str] = set()
        for manifest in self.archive.manifests(hour)[:part]:
            if not manifest.get("file"):
                continue
            with self.archive.open_part(hour, manifest["part"]) as handle:
                for batch in pq.ParquetFile(handle).iter_batches(columns=["transaction_id"], batch_size=65_536):
                    ids = batch.column(0)
                    found.update(ids.filter(pc.is_in(ids, value_set=candidates)).to_pylist())
        return found

    # -- writing the part ----------------------------------------------------------------------
    def _write_part(self, hour: datetime, plan: Mapping[str, Any], excluded: set[str]) -> int:
        """Stream the plan's rows, sorted and deduplicated, into the part file; 0 rows: no file."""
        from shared.domain.archive_parquet import arrow_schema, parquet_writer

        schema = arrow_schema(self._feature_names(plan["ranges"]), plan=dict(plan))
        rows = 0
        writer = None
        with tempfile.TemporaryDirectory(prefix="archive-") as spill:
            batches = self._sorted_row_groups(self._staged(plan["ranges"]), schema, excluded, Path(spill))
            first = next(batches, None)
            if first is None:
                return 0
            with self.archive.create_part(hour, plan["part"]) as sink:
                writer = parquet_writer(sink, schema)
                for table in _chain(first, batches):
                    writer.write_table(table, row_group_size=self.limits.row_group_rows)
                    rows += table.num_rows
                writer.close()
        return rows

    def _sorted_row_groups(self, staged: Iterator[tuple[Mapping[str, Any], Any]], schema: Any,
                           excluded: set[str], spill: Path) -> Iterator[Any]:
        """Tables of about ``row_group_rows`` rows, together sorted by (scored_at,
        transaction_id) with one row per id; ``excluded`` ids left out."""
        import pyarrow as pa

        out: list[Any] = []
        size = 0
        for table in self._sorted_slices(staged, schema, excluded, spill):
            out.append(table)
            size += table.num_rows
            if size >= self.limits.row_group_rows:
                yield pa.concat_tables(out)
                out, size = [], 0
        if size:
            yield pa.concat_tables(out)

    def _sorted_slices(self, staged: Iterator[tuple[Mapping[str, Any], Any]], schema: Any,
                       excluded: set[str], spill: Path) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.compute as pc

        from shared.domain.archive_parquet import record_batch, sort_and_dedupe

        value_set = pa.array(sorted(excluded), pa.string()) if excluded else None
        runs: list[Path] = []
        current: list[Any] = []
        held = 0
        for header, table in staged:
            batch = record_batch(table, header, schema)
            if value_set is not None:
                batch = batch.filter(pc.invert(pc.is_in(batch.column("transaction_id"), value_set=value_set)))
            current.append(batch)
            held += batch.num_rows
            if held >= self.limits.run_rows:
                runs.append(self._spill(sort_and_dedupe(pa.Table.from_batches(current, schema)), spill, len(runs)))
                current, held = [], 0
        last = sort_and_dedupe(pa.Table.from_batches(current, schema))
        if not runs:
            if last.num_rows:
                yield last
            return
        if last.num_rows:
            runs.append(self._spill(last, spill, len(runs)))
        yield from _merge_runs(runs)

    def _spill(self, table: Any, folder: Path, n: int) -> Path:
        import pyarrow as pa

        path = folder / f"run-{n:05d}.arrow"
        with pa.OSFile(str(path), "wb") as sink:
            with pa.ipc.new_file(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
                for batch in table.to_batches(max_chunksize=self.limits.merge_rows):
                    writer.write_batch(batch)
        return path


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


class _Run:
    """A spilled sorted run, read one batch at a time; ``keys`` are the buffer's scored_at (µs)."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa

        self._reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        self._next = 0
        self.buffer, self.keys = self._read()

    def _read(self) -> tuple[Any, Any]:
        import pyarrow as pa

        batch = self._reader.get_batch(self._next)
        self._next += 1
        table = pa.Table.from_batches([batch])
        return table, _micros(table)

    @property
    def pending(self) -> bool:
        """Batches left on disk beyond the buffer."""
        return self._next < self._reader.num_record_batches

    def extend(self) -> None:
        import numpy as np
        import pyarrow as pa

        table, keys = self._read()
        if self.buffer.num_rows:
            table, keys = pa.concat_tables([self.buffer, table]), np.concatenate([self.keys, keys])
        self.buffer, self.keys = table, keys

    def take_before(self, watermark: int) -> Any:
        """The buffered rows scored before ``watermark`` (a prefix: the run is sorted)."""
        import numpy as np

        cut = int(np.searchsorted(self.keys, watermark, side="left"))
        taken = self.buffer.slice(0, cut)
        self.buffer, self.keys = self.buffer.slice(cut), self.keys[cut:]
        return taken

    def last_scored(self) -> int:
        return int(self.keys[-1])


def _micros(table: Any) -> Any:
    import numpy as np

    return table.column("scored_at").cast("int64").to_numpy().astype(np.int64, copy=False)


def _merge_runs(paths: list[Path]) -> Iterator[Any]:
    """Merge sorted runs by a watermark: every buffered row scored before the smallest last
    ``scored_at`` among runs with batches left can be emitted, since no later row of any run is
    earlier. Rows sharing a ``scored_at`` (a transaction's repeats among them) go out together."""
    import pyarrow as pa

    from shared.domain.archive_parquet import sort_and_dedupe

    runs = [_Run(p) for p in paths]
    while any(r.buffer.num_rows for r in runs):
        open_runs = [r for r in runs if r.pending]
        if not open_runs:
            yield sort_and_dedupe(pa.concat_tables([r.buffer for r in runs if r.buffer.num_rows]))
            return
        watermark = min(r.last_scored() for r in open_runs)
        taken = [t for t in (run.take_before(watermark) for run in runs if run.buffer.num_rows) if t.num_rows]
        if taken:
            yield sort_and_dedupe(pa.concat_tables(taken))
        for run in open_runs:  # runs at the watermark (or emptied) read their next batch
            if not run.buffer.num_rows or run.last_scored() <= watermark:
                run.extend()
