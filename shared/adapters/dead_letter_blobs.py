"""Events that could not be scored, kept with their raw bytes and the reason: a Blob adapter.

Blob name ``<YYYY>/<MM>/<DD>/<key>.json`` where the key is derived from the event's
origin (partition and sequence number) and its bytes, so a redelivered poison event
overwrites its own dead letter instead of adding another.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any, Iterator, Sequence

from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.storage_account import create_if_missing
from shared.domain.dead_letter import DeadLetter
from shared.domain.retention import letter_day


class DeadLetterStore:
    def __init__(self, blob_service: Any, container: str = "dead-letter") -> None:
        self._container = blob_service.get_container_client(container)

    def ensure_container(self) -> None:
        create_if_missing(self._container.create_container)

    def put(self, letter: DeadLetter, now: datetime | None = None) -> str:
        now = now or datetime.now(timezone.utc)
        name = letter.blob_name(now)
        self._container.upload_blob(name, json.dumps(letter.document(now)).encode(), overwrite=True)
        return name

    def list(self) -> Iterator[dict[str, Any]]:
        for _, document in self.items():
            yield document

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(blob name, document) of every dead letter."""
        for blob in self._container.list_blobs():
            yield blob.name, json.loads(self._container.download_blob(blob.name).readall())

    def delete(self, name: str) -> None:
        self._container.delete_blob(name)

    # -- retention ------------------------------------------------------------------------
    def expired_letters(self, before_day: date, limit: int) -> list[str]:
        """Names of letters filed under days before ``before_day``, oldest first (names only:
        nothing is downloaded; the listing stops at the first newer day). A name not of the
        ``YYYY/MM/DD/`` form is never listed."""
        names: list[str] = []
        for name in self._container.list_blob_names():
            day = letter_day(name)
            if day is None:
                continue
            if day >= before_day:  # names sort by day: every later name is newer
                break
            names.append(name)
            if len(names) >= limit:
                break
        return names

    def discard(self, names: Sequence[str]) -> int:
        """Delete letters by name; a letter already gone is skipped. Returns the number deleted."""
        deleted = 0
        for name in names:
            try:
                self._container.delete_blob(name)
                deleted += 1
            except ResourceNotFoundError:
                pass
        return deleted
