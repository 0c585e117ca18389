"""The retrain triggers' cooldown: at most one retrain start per ``FRAUD_RETRAIN_COOLDOWN_HOURS``.

Any blob landing in ``training-data/`` or ``retrain-requests/`` triggers a retrain; without a
cooldown whoever can write there could retrain (and, with auto-promotion, shape) the model as
often as they like. The registry's retrain log (``retrain-log.json``, written with an ETag
condition, so of two triggers at the same moment one starts) holds the last start; a trigger
within the cooldown is recorded there (the last 50) and in the log, and skipped. Nothing is
lost: a retrain reads every base data file and the whole training sample, so the next trigger
after the cooldown trains on what the skipped one brought.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from shared.service.ports import ModelRegistryPort, StalePointer

log = logging.getLogger("fraud.retrain")
KEEP_SKIPPED = 50


def claim_retrain_start(registry: ModelRegistryPort, trigger: str, now: datetime,
                        cooldown: timedelta) -> dict[str, Any] | None:
    """None: this trigger may start a retrain (its start is recorded). Otherwise why it is skipped."""
    pointer = registry.retrain_log()
    document = dict(pointer.document)
    skipped = list(document.get("skipped") or [])
    last = document.get("last_started_at")
    if last is not None:
        last_at = datetime.fromisoformat(last)
        if now - last_at < cooldown:
            skip = {"trigger": trigger, "at": now.isoformat()}
            try:
                registry.set_retrain_log({**document, "skipped": (skipped + [skip])[-KEEP_SKIPPED:]}, pointer)
            except StalePointer:
                pass  # someone wrote the log meanwhile: the log line below still records this skip
            outcome = {"trigger": trigger, "outcome": "cooldown", "last_started_at": last,
                       "next_allowed_at": (last_at + cooldown).isoformat(),
                       "reason": f"a retrain started at {last}, within the cooldown of {cooldown.total_seconds() / 3600:g} hours"}
            log.warning(json.dumps({"event": "retrain_skipped_cooldown", **outcome}))
            return outcome
    try:
        registry.set_retrain_log({"last_started_at": now.isoformat(), "trigger": trigger,
                                  "previous_started_at": last, "skipped": skipped[-KEEP_SKIPPED:]}, pointer)
    except StalePointer:
        outcome = {"trigger": trigger, "outcome": "cooldown", "reason": "another retrain started at the same moment"}
        log.warning(json.dumps({"event": "retrain_skipped_cooldown", **outcome}))
        return outcome
    return None
