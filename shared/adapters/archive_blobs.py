"""The decision archive on Blob Storage: the staging append blobs and the archive container.

* container ``decision-staging`` (``FRAUD_ARCHIVE_STAGING_CONTAINER``): append blobs
  ``date=YYYY-MM-DD/hour=HH/<process id>-<n>.jsonl``, one writer each;
* container ``decision-archive`` (``FRAUD_ARCHIVE_CONTAINER``, versioned and under a
  time-based immutability policy in Azure): ``decisions/date=…/hour=…/part-NNNNN.parquet``
  and ``manifests/date=…/hour=…/part-NNNNN.json``. Every file is created with
  ``If-None-Match: *`` and never overwritten; a part is uploaded as staged blocks while it is
  written and exists only once its block list is committed.
"""
from __future__ import annotations

import base64
import io
import json
import uuid
from contextlib import contextmanager
from datetime import datetime
from typing import Any, BinaryIO, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobBlock

from shared.adapters.storage_account import create_if_missing
from shared.domain.decision_archive import ARCHIVE_PREFIX, hour_dir, manifest_name, parse_hour_dir, part_name
from shared.service.ports import ArchiveFileExists, StagedBlob, StagingBlobFull

READ_CHUNK = 8 * 1024 * 1024  # a ranged read of a staging blob
UPLOAD_BLOCK = 8 * 1024 * 1024  # a staged block of a part file
_FULL = {"BlockCountExceedsLimit", "MaxBlobSizeConditionNotMet"}


class DecisionStagingBlobs:
    """``DecisionStagingPort`` on append blobs."""

    CLIENTS_KEPT = 8  # a process appends to one blob per hour: its client is built once, not per append

    def __init__(self, blob_service: Any, container: str = "decision-staging") -> None:
        self._container = blob_service.get_container_client(container)
        self._clients: dict[str, Any] = {}

    def ensure_container(self) -> None:
        create_if_missing(self._container.create_container)

    def _blob(self, name: str) -> Any:
        blob = self._clients.get(name)
        if blob is None:
            while len(self._clients) >= self.CLIENTS_KEPT:
                self._clients.pop(next(iter(self._clients)), None)
            blob = self._clients[name] = self._container.get_blob_client(name)
        return blob

    def append(self, name: str, data: bytes, create: bool) -> None:
        blob = self._blob(name)
        if create:
            try:
                blob.create_append_blob(match_condition=MatchConditions.IfMissing)
            except ResourceExistsError:
                pass  # created by an earlier attempt: append to it, never empty it
        try:
            blob.append_block(data, length=len(data))
        except HttpResponseError as exc:
            if getattr(exc, "error_code", None) in _FULL:
                raise StagingBlobFull(name) from exc
            raise

    def staged_hours(self) -> list[datetime]:
        hours = []
        for day in self._container.walk_blobs(delimiter="/"):
            if day.name.startswith("date="):
                for hour in self._container.walk_blobs(name_starts_with=day.name, delimiter="/"):
                    if hour.name.rstrip("/").rsplit("/", 1)[-1].startswith("hour="):
                        hours.append(parse_hour_dir(hour.name))
        return sorted(hours)

    def blobs(self, hour: datetime) -> list[StagedBlob]:
        found = self._container.list_blobs(name_starts_with=f"{hour_dir(hour)}/")
        return sorted((StagedBlob(b.name, int(b.size), b.etag) for b in found), key=lambda b: b.name)

    def read(self, name: str, start: int, end: int) -> Iterator[bytes]:
        blob = self._container.get_blob_client(name)
        offset = start
        while offset < end:
            length = min(READ_CHUNK, end - offset)
            yield blob.download_blob(offset=offset, length=length).readall()
            offset += length


class DecisionArchiveBlobs:
    """``DecisionArchivePort`` on block blobs, create-only."""

    def __init__(self, blob_service: Any, container: str = "decision-archive") -> None:
        self._container = blob_service.get_container_client(container)

    @property
    def container_name(self) -> str:
        return self._container.container_name

    def ensure_container(self) -> None:
        create_if_missing(self._container.create_container)

    def manifests(self, hour: datetime) -> list[dict[str, Any]]:
        prefix = manifest_name(hour, 0).rsplit("/", 1)[0] + "/"
        names = sorted(b.name for b in self._container.list_blobs(name_starts_with=prefix))
        return [json.loads(self._container.download_blob(n).readall()) for n in names]

    def write_manifest(self, hour: datetime, part: int, manifest: dict[str, Any]) -> None:
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        try:
            self._container.upload_blob(manifest_name(hour, part), body, overwrite=False)
        except ResourceExistsError as exc:
            raise ArchiveFileExists(manifest_name(hour, part)) from exc

    def part_exists(self, hour: datetime, part: int) -> bool:
        return self._container.get_blob_client(part_name(hour, part)).exists()

    @contextmanager
    def create_part(self, hour: datetime, part: int) -> Iterator[BinaryIO]:
        name = part_name(hour, part)
        if self.part_exists(hour, part):
            raise ArchiveFileExists(name)
        stream = _BlockUpload(self._container.get_blob_client(name))
        yield stream  # an error in the block leaves only uncommitted blocks (garbage-collected in 7 days)
        stream.commit()

    def open_part(self, hour: datetime, part: int) -> BinaryIO:
        blob = self._container.get_blob_client(part_name(hour, part))
        return io.BufferedReader(_RangedRead(blob, blob.get_blob_properties().size), buffer_size=1024 * 1024)

    # -- for tools: the archive's Parquet files --------------------------------------------
    def part_names(self, since: datetime | None = None) -> list[tuple[str, int]]:
        """(name, size) of every Parquet part, optionally only of hours from ``since`` on."""
        out = []
        for blob in self._container.list_blobs(name_starts_with=f"{ARCHIVE_PREFIX}/"):
            if blob.name.endswith(".parquet") and (since is None or parse_hour_dir(blob.name) >= since):
                out.append((blob.name, int(blob.size)))
        return sorted(out)

    def download(self, name: str, handle: BinaryIO) -> None:
        self._container.download_blob(name).readinto(handle)


class _BlockUpload(io.RawIOBase):
    """A write-only stream staging 8 MiB blocks of a block blob; ``commit`` creates the blob
    (If-None-Match: *) from them. Memory: one block."""

    def __init__(self, blob: Any) -> None:
        self._blob = blob
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self._position += len(view)
        while len(self._buffer) >= UPLOAD_BLOCK:
            self._stage(bytes(self._buffer[:UPLOAD_BLOCK]))
            del self._buffer[:UPLOAD_BLOCK]
        return len(view)

    def _stage(self, data: bytes) -> None:
        block_id = base64.b64encode(uuid.uuid4().hex.encode()).decode()
        self._blob.stage_block(block_id, data, length=len(data))
        self._blocks.append(BlobBlock(block_id=block_id))

    def commit(self) -> None:
        if self._buffer:
            self._stage(bytes(self._buffer))
            self._buffer.clear()
        try:
            self._blob.commit_block_list(self._blocks, match_condition=MatchConditions.IfMissing)
        except (ResourceExistsError, HttpResponseError) as exc:
            if isinstance(exc, ResourceExistsError) or getattr(exc, "status_code", None) in (409, 412):
                raise ArchiveFileExists(self._blob.blob_name) from exc
            raise


class _RangedRead(io.RawIOBase):
    """A seekable read-only view of a blob by ranged GETs (Parquet readers seek to the footer
    and read only the column chunks they need)."""

    def __init__(self, blob: Any, size: int) -> None:
        self._blob = blob
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self._size - self._position)
        if length <= 0:
            return 0
        data = self._blob.download_blob(offset=self._position, length=length).readall()
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)
