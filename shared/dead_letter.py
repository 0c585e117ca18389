"""Events that could not be scored, kept with their raw bytes and the reason: a Blob adapter.

Blob name ``<YYYY>/<MM>/<DD>/<key>.json`` where the key is derived from the event's
origin (partition and sequence number) and its bytes, so a redelivered poison event
overwrites its own dead letter instead of adding another.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

from shared.storage import create_if_missing


@dataclass(frozen=True)
class DeadLetter:
    raw: bytes
    reasons: list[dict[str, str]]
    source: str  # "eventhub" | "http" | ...
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        origin = json.dumps({k: self.metadata.get(k) for k in ("partition", "sequence_number")}, sort_keys=True)
        return hashlib.sha256(origin.encode() + b"\0" + self.raw).hexdigest()[:24]

    def document(self, received_at: datetime) -> dict[str, Any]:
        try:
            text = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {
            "reasons": self.reasons,
            "source": self.source,
            "metadata": self.metadata,
            "received_at": received_at.isoformat(),
            "raw_base64": base64.b64encode(self.raw).decode(),
            "raw_text": text[:4096] if text is not None else None,
            "raw_bytes": len(self.raw),
        }


class DeadLetterStore:
    def __init__(self, blob_service: Any, container: str = "dead-letter") -> None:
        self._container = blob_service.get_container_client(container)

    def ensure_container(self) -> None:
        create_if_missing(self._container.create_container)

    def put(self, letter: DeadLetter, now: datetime | None = None) -> str:
        now = now or datetime.now(timezone.utc)
        # Date the blob by when the event was enqueued where known, so a redelivery on
        # another day still lands on the same name.
        enqueued = letter.metadata.get("enqueued_time")
        day = datetime.fromisoformat(enqueued) if isinstance(enqueued, str) else now
        name = f"{day:%Y/%m/%d}/{letter.source}-{letter.key}.json"
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
