"""An event that could not be scored: its raw bytes, the reasons, where it came from.

The key is derived from the event's origin (partition and sequence number) and its bytes,
so a redelivered poison event names the same letter instead of adding another.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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

    def blob_name(self, received_at: datetime) -> str:
        """Dated by when the event was enqueued where known, so a redelivery on another day
        names the same letter."""
        enqueued = self.metadata.get("enqueued_time")
        day = datetime.fromisoformat(enqueued) if isinstance(enqueued, str) else received_at
        return f"{day:%Y/%m/%d}/{self.source}-{self.key}.json"

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
