"""Timer-triggered monitoring: join late labels, measure drift and live performance,
write the report, and ask for retraining when a threshold is crossed.

The schedule is the app setting FRAUD_MONITOR_SCHEDULE (NCRONTAB, UTC). The timer is a
singleton across instances (the host holds a blob lease); a repeated or overlapping run is
harmless because every step is idempotent.
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.composition import app_services

bp = func.Blueprint()
log = logging.getLogger("fraud.monitor")


@bp.function_name("monitor_timer")
@bp.timer_trigger(arg_name="timer", schedule="%FRAUD_MONITOR_SCHEDULE%", run_on_startup=False, use_monitor=True)
def monitor_timer(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("monitoring run is past due; running now")
    services = app_services()
    services.monitoring_aggregator.flush()  # this instance's own unwritten counts, if it scored since its last flush
    report = services.monitoring.run()
    summary = {
        "event": "monitoring_run",
        "decisions": report["window"]["decisions"],
        "labelled": report["window"]["labelled"],
        "labels": report["labels"],
        "drift_alerts": sorted(n for n, d in report["drift"]["features"].items() if d["status"] == "alert"),
        "score_psi": (report["drift"]["score"] or {}).get("psi"),
        "breaches": report["breaches"],
        "retrain_request": report["retrain_request"],
        "seconds": report["seconds"],
        "report": report["report_blob"],
    }
    log.info(json.dumps(summary))
