"""The training sample's blob container: hourly append blobs per scoring process.

* ``<YYYY-MM-DD>/<HH>/<process-id>-<n>.jsonl``: the ``rows`` stream (sampled decisions and
  labelled frauds, ``SampleRow`` lines) of that UTC event hour;
* ``labels/<YYYY-MM-DD>/<HH>/<process-id>-<n>.jsonl``: the ``labels`` stream (``SampleLabel``
  lines) of decisions of that event hour.

Each process appends to its own blobs (the process id is fresh per instance), so writers
never contend. An append is one block of whole lines: one storage call per blob touched,
plus the blob's creation the first time. A block holds at most 4 MiB
(``MAX_BLOCK_BYTES``: more lines are split at line boundaries) and an append blob at most
50,000 blocks (``MAX_BLOCKS``): the process then rolls to ``<process-id>-<n+1>``. A failed
append raises (the caller retries its batch); a retried append that had in fact succeeded
repeats whole lines, which the reader drops by transaction id.

Reading streams a blob in chunks and yields its lines: never a whole blob in memory.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, Sequence

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.adapters.storage_account import create_if_missing
from shared.service.append_staging import pack_lines, writer_id

MAX_BLOCK_BYTES = 4 * 1024 * 1024
MAX_BLOCKS = 50_000
STREAM_PREFIX = {"rows": "", "labels": "labels/"}


def hour_prefix(stream: str, hour: datetime) -> str:
    hour = hour.astimezone(timezone.utc)
    return f"{STREAM_PREFIX[stream]}{hour:%Y-%m-%d}/{hour:%H}/"


@dataclass
class _OpenBlob:
    number: int
    blocks: int = 0
    created: bool = False


class TrainingSampleBlobs:
    def __init__(self, blob_service: Any, container: str = "training-sample", process_id: str | None = None,
                 max_block_bytes: int = MAX_BLOCK_BYTES, max_blocks: int = MAX_BLOCKS) -> None:
        self._container = blob_service.get_container_client(container)
        self.process_id = process_id or writer_id()
        self.max_block_bytes = max_block_bytes
        self.max_blocks = max_blocks
        self._open: dict[tuple[str, str], _OpenBlob] = {}
        self._lock = threading.Lock()

    def ensure_container(self) -> None:
        create_if_missing(self._container.create_container)

    # -- writing ----------------------------------------------------------------------------
    def append(self, stream: str, lines_by_hour: Mapping[datetime, Sequence[str]]) -> int:
        """Append each hour's lines to this process's blob of that hour; returns the appends made."""
        appends = 0
        for hour, lines in lines_by_hour.items():
            for block in pack_lines([line.encode("utf-8") + b"\n" for line in lines], self.max_block_bytes):
                self._append(stream, hour_prefix(stream, hour), block)
                appends += 1
        return appends

    def _reserve(self, prefix: str, stream: str) -> tuple[str, bool]:
        """The blob the next block goes to (rolling at ``max_blocks``), and whether to create it first."""
        with self._lock:
            blob = self._open.setdefault((stream, prefix), _OpenBlob(0))
            if blob.blocks >= self.max_blocks:
                blob.number, blob.blocks, blob.created = blob.number + 1, 0, False
            blob.blocks += 1
            create = not blob.created
            blob.created = True
            return f"{prefix}{self.process_id}-{blob.number}.jsonl", create

    def _roll(self, prefix: str, stream: str) -> None:
        with self._lock:
            blob = self._open[(stream, prefix)]
            blob.blocks = self.max_blocks

    def _append(self, stream: str, prefix: str, block: bytes) -> None:
        for attempt in range(2):
            name, create = self._reserve(prefix, stream)
            client = self._container.get_blob_client(name)
            try:
                if create:
                    create_if_missing(client.create_append_blob)
                client.append_block(block)
                return
            except ResourceNotFoundError:  # removed meanwhile (retention): start it again
                client.create_append_blob()
                client.append_block(block)
                return
            except HttpResponseError as exc:
                if getattr(exc, "error_code", None) != "BlockCountExceedsLimit" or attempt:
                    raise
                self._roll(prefix, stream)  # full already (a count this process did not see): next blob

    # -- reading ----------------------------------------------------------------------------
    def hours(self, stream: str, start: datetime, end: datetime) -> list[datetime]:
        """UTC hours in [start's hour, end) with blobs of ``stream``, oldest first (one listing per day)."""
        start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
        first = start.replace(minute=0, second=0, microsecond=0)
        day = first.replace(hour=0)
        found: set[datetime] = set()
        prefix = STREAM_PREFIX[stream]
        while day < end:
            for blob in self._container.list_blobs(name_starts_with=f"{prefix}{day:%Y-%m-%d}/"):
                parts = blob.name[len(prefix):].split("/")
                if len(parts) != 3 or not parts[1].isdigit():
                    continue
                hour = day.replace(hour=int(parts[1]))
                if first <= hour < end:
                    found.add(hour)
            day += timedelta(days=1)
        return sorted(found)

    def blob_names(self, stream: str, hour: datetime) -> list[str]:
        return sorted(b.name for b in self._container.list_blobs(name_starts_with=hour_prefix(stream, hour)))

    def lines(self, stream: str, hour: datetime) -> Iterator[bytes]:
        """Every line of the hour's blobs of ``stream``, streamed chunk by chunk."""
        for name in self.blob_names(stream, hour):
            try:
                chunks = self._container.download_blob(name, max_concurrency=1).chunks()
                rest = b""
                for chunk in chunks:
                    data = rest + chunk
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        rest = data
                        continue
                    yield from data[:cut].split(b"\n")
                    rest = data[cut + 1:]
                if rest.strip():
                    yield rest  # a last line without its newline (never written so, but read it)
            except ResourceNotFoundError:  # removed by retention while listed
                continue
