"""Event Hub-triggered scoring: batches of transactions from the bank's systems.

Turns the trigger's events into plain ``IncomingEvent`` data, calls the scoring service,
and logs a summary. Invalid events are dead-lettered by the service; the rest of the
batch is scored. Transient storage failures are retried here with bounded exponential
backoff; if they persist, the unscored events are dead-lettered with the reason before
the host moves the checkpoint on (it checkpoints even when the function raises).
"""
from __future__ import annotations

import json
import logging
import time

import azure.functions as func

from shared.composition import app_services
from shared.service.scoring import IncomingEvent
from shared.adapters.transient import is_transient

bp = func.Blueprint()
log = logging.getLogger("fraud.score_stream")

ATTEMPTS = 4  # in-function attempts before the events are dead-lettered
BACKOFF_SECONDS = 1.0


def _partition_id(events: list[func.EventHubEvent]) -> str | None:
    """The partition id from the batch's trigger metadata (shared by all events of a batch)."""
    metadata = events[0].metadata if events else None
    context = (metadata or {}).get("PartitionContext")
    if isinstance(context, str):
        try:
            context = json.loads(context)
        except ValueError:
            context = None
    return str(context.get("PartitionId")) if isinstance(context, dict) and context.get("PartitionId") is not None else None


def to_incoming(events: list[func.EventHubEvent]) -> list[IncomingEvent]:
    partition = _partition_id(events)
    return [
        IncomingEvent(
            body=event.get_body(),
            partition=partition,
            sequence_number=event.sequence_number,
            enqueued_time=event.enqueued_time.isoformat() if event.enqueued_time else None,
        )
        for event in events
    ]


@bp.function_name("score_stream")
@bp.retry(strategy="exponential_backoff", max_retry_count="5", minimum_interval="00:00:05", maximum_interval="00:05:00")
@bp.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%EVENTHUB_NAME%",
    connection="EventHubConnection",
    consumer_group="%EVENTHUB_CONSUMER_GROUP%",
    cardinality="many",
    data_type="binary",
)
def score_stream(events: list[func.EventHubEvent]) -> None:
    incoming = to_incoming(events)
    scoring = app_services().scoring
    started = time.perf_counter()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            outcome = scoring.score_events(incoming)
            break
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == ATTEMPTS:
                reason = f"not scored after {ATTEMPTS} attempts: {type(exc).__name__}: {exc}"
                log.error("dead-lettering %d events: %s", len(incoming), reason)
                # Raises if storage is still down: the host's retry policy runs the batch again.
                scoring.dead_letter_events(incoming, reason)
                return
            log.warning("attempt %d failed (%s); retrying", attempt, exc)
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    levels: dict[str, int] = {}
    for delivery in outcome.deliveries:
        levels[delivery.record.risk_level] = levels.get(delivery.record.risk_level, 0) + 1
    log.info(
        json.dumps({
            "event": "score_batch",
            "events": len(incoming),
            "scored": len(outcome.deliveries),
            "duplicates": outcome.duplicates,
            "dead_lettered": len(outcome.dead_lettered),
            "risk_levels": levels,
            "seconds": round(time.perf_counter() - started, 4),
        })
    )
