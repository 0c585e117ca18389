"""Timer-triggered retention: delete what each store keeps past its retention (audit rows and
their id index, received labels, dead letters, the monitoring aggregates, applied-transaction
rows and the profiles of inactive customers).

The schedule is the app setting FRAUD_RETENTION_SCHEDULE (NCRONTAB, UTC). The timer is a
singleton across instances (the host holds a blob lease); each run does a bounded amount
and the next run goes on where it stopped. A repeated run deletes nothing more.
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.composition import app_services

bp = func.Blueprint()
log = logging.getLogger("fraud.retention")


@bp.function_name("retention_timer")
@bp.timer_trigger(arg_name="timer", schedule="%FRAUD_RETENTION_SCHEDULE%", run_on_startup=False, use_monitor=True)
def retention_timer(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("retention run is past due; running now")
    report = app_services().retention.run()
    log.info(json.dumps({"event": "retention_run", **report}))
    if report["errors"]:  # the run fails visibly; what the other steps deleted stays deleted
        raise RuntimeError(f"retention steps failed: {report['errors']}")
