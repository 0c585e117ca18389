"""Replay dead-lettered Event Hub events through the scoring service, once storage (or the
producer's data) is fixed.

Each letter's raw bytes and origin (partition, sequence number, enqueued time) become the
event again. A letter whose event is now scored (or was scored meanwhile) is removed; one
still invalid is kept, its reasons rewritten. Replaying is idempotent: the service
recognises transactions already applied by their id.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

from shared.service.scoring import FraudScoringService, IncomingEvent


class DeadLetterSource(Protocol):
    def items(self) -> Iterator[tuple[str, dict[str, Any]]]: ...
    def delete(self, name: str) -> None: ...


@dataclass
class ReplayOutcome:
    letters: int = 0
    scored: int = 0  # newly scored
    duplicates: int = 0  # had been scored already
    still_invalid: int = 0  # kept, with the current reasons


def letter_event(document: dict[str, Any]) -> IncomingEvent:
    metadata = document.get("metadata") or {}
    return IncomingEvent(body=base64.b64decode(document["raw_base64"]), partition=metadata.get("partition"),
                         sequence_number=metadata.get("sequence_number"), enqueued_time=metadata.get("enqueued_time"))


def replay_dead_letters(scoring: FraudScoringService, letters: DeadLetterSource, batch_size: int = 100) -> ReplayOutcome:
    outcome = ReplayOutcome()
    pending = [(name, doc) for name, doc in letters.items() if doc.get("source") == "eventhub"]
    for start in range(0, len(pending), batch_size):
        chunk = pending[start:start + batch_size]
        result = scoring.score_events([letter_event(doc) for _, doc in chunk])
        kept = set(result.dead_lettered)
        for name, _ in chunk:
            if name not in kept:
                letters.delete(name)
        outcome.letters += len(chunk)
        outcome.duplicates += result.duplicates
        outcome.scored += len(result.deliveries) - result.duplicates
        outcome.still_invalid += len(result.dead_lettered)
    return outcome
