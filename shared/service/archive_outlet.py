"""The decision archive's outlet: each scoring call's decisions, appended as JSON lines to this
process's own append blob of the hour they were scored in.

Normally one storage call per scoring call: the call's decisions share a scored hour, and
their lines go in one ``append_block``. A call spanning two hours (it crossed the hour)
appends once per hour; a call whose lines pass 4 MiB appends in 4 MiB pieces, cut at line
ends. Duplicates (redeliveries) are archived too: their record is the stored one, so the
archive is at least once and compaction keeps one row per transaction id.

Blobs are ``date=YYYY-MM-DD/hour=HH/<process id>-<n>.jsonl``: the process id (host, pid and
a random part) keeps every writer on its own blob, so appends never contend. A blob starts
with the header line naming the features; after 50,000 appends (the service's limit) the
outlet rolls to ``-<n+1>``, and it rolls too when the service says the blob is full. A failed
append raises; the composition root wraps this outlet in a ``BufferedOutlet``, so during a
Blob outage the lines wait in memory (bounded) and scoring goes on (an append repeated after
a failure is harmless: compaction keeps one row per transaction id).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from shared.domain.decision_archive import hour_of, staging_blob_name, staging_header, staging_line
from shared.domain.decision_record import Delivery
from shared.service.append_staging import pack_lines, writer_id
from shared.service.ports import MAX_APPEND_BLOCKS, MAX_APPEND_BYTES, DecisionStagingPort, StagingBlobFull

HOURS_KEPT = 3  # hours whose blob state a process keeps (a late call still finds its hour's blob)


@dataclass
class _HourBlob:
    sequence: int = 0
    appends: int = 0  # blocks appended by this process (it is the blob's only writer)
    created: bool = False


class DecisionArchiveOutlet:
    """A ``DecisionOutletPort``: the staging half of the decision archive."""

    def __init__(self, staging: DecisionStagingPort, process: str | None = None,
                 max_append_bytes: int = MAX_APPEND_BYTES, max_blocks: int = MAX_APPEND_BLOCKS) -> None:
        self.staging = staging
        self.process = process or writer_id()
        self.max_append_bytes = max_append_bytes
        self.max_blocks = max_blocks
        self._blobs: dict[datetime, _HourBlob] = {}
        self._lock = threading.Lock()

    def record(self, deliveries: Sequence[Delivery]) -> None:
        by_hour: dict[datetime, list[bytes]] = {}
        for delivery in deliveries:
            if delivery.record is not None:
                by_hour.setdefault(hour_of(delivery.record.scored_at), []).append(staging_line(delivery.record))
        for hour, lines in sorted(by_hour.items()):
            for piece in pack_lines(lines, self.max_append_bytes - len(staging_header())):  # room for a header
                self._append(hour, piece)

    def _append(self, hour: datetime, data: bytes) -> None:
        for _ in range(3):  # a full blob rolls to the next; more than twice is a bug
            with self._lock:
                state = self._state(hour)
                if state.appends >= self.max_blocks:
                    self._roll(state)
                name = staging_blob_name(hour, self.process, state.sequence)
                first = not state.created
                state.appends += 1  # reserve the block (another thread may append meanwhile)
            try:
                self.staging.append(name, staging_header() + data if first else data, create=first)
            except StagingBlobFull:
                with self._lock:
                    if name == staging_blob_name(hour, self.process, state.sequence):
                        self._roll(state)
                continue
            except Exception:
                with self._lock:
                    state.appends -= 1
                raise
            with self._lock:
                if name == staging_blob_name(hour, self.process, state.sequence):
                    state.created = True
            return
        raise RuntimeError(f"could not append to a staging blob of {hour:%Y-%m-%d %H}:00 after rolling twice")

    def _state(self, hour: datetime) -> _HourBlob:
        state = self._blobs.get(hour)
        if state is None:
            state = self._blobs[hour] = _HourBlob()
            for old in sorted(self._blobs)[:-HOURS_KEPT]:
                del self._blobs[old]
        return state

    @staticmethod
    def _roll(state: _HourBlob) -> None:
        state.sequence += 1
        state.appends = 0
        state.created = False
