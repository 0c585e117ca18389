"""Timer-triggered compaction of the open decision archive: every finished hour's staged
decisions (the scoring processes' append blobs) into Parquet under
``decisions/date=YYYY-MM-DD/hour=HH/`` in the archive container.

The schedule is the app setting FRAUD_ARCHIVE_SCHEDULE (NCRONTAB, UTC; default ten minutes
past every hour, once the grace FRAUD_ARCHIVE_GRACE_MINUTES has passed). The timer is a
singleton; a repeated or overlapping run changes nothing, since every archive file is
created once and a run compacts only staging bytes no manifest covers yet.
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.composition import app_services

bp = func.Blueprint()
log = logging.getLogger("fraud.archive")


@bp.function_name("archive_timer")
@bp.timer_trigger(arg_name="timer", schedule="%FRAUD_ARCHIVE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def archive_timer(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("archive compaction is past due; running now")
    log.info(json.dumps(app_services().archive_compaction.run()))
