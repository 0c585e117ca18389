"""Server-side queries for the fraud analysts' dashboard.

* ``alert_queue``: High and Medium decisions awaiting review, newest first, one page at a
  time. It reads the audit log hour by hour backwards from the cursor (only the partitions
  of that hour, High/Medium filtered by the table service) and stops as soon as a page is
  full, so its cost follows the page size, not the size of the log.
* ``dashboard_stats``: the latest monitoring report reshaped for the charts, plus the model
  registry; without a report, a capped aggregate over the audit log window (said so).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass
from typing import Any

from shared.domain.drift import score_distribution
from shared.domain.metrics import percentiles
from shared.domain.decision_record import ALERT_ITEM_COLUMNS, alert_item, recent_activity_item
from shared.service.fanout import RequestFanout
from shared.domain.monitoring_aggregate import ServingReference
from shared.service.monitoring_scan import WindowTally

log = logging.getLogger("fraud.dashboard")

ALERT_LEVELS = ("High", "Medium")
RECENT_ACTIVITY = 5
MAX_LIMIT = 200
MAX_HOURS = 24 * 31
FALLBACK_ROW_CAP = 20_000
_fanout = RequestFanout(8, "dashboard")


class BadCursor(ValueError):
    pass


# -- cursors -------------------------------------------------------------------------------
# A cursor is base64url(JSON) "." base64url(HMAC-SHA-256(key, JSON)): an edited or forged one is
# refused before it is decoded, let alone read with. The key is derived from FRAUD_PSEUDONYM_KEY
# (``cursor_key``) so every instance accepts the others' cursors; without it, a random key of this
# process (cursors then end with the process: the queue starts again from the top).
_PROCESS_CURSOR_KEY = secrets.token_bytes(32)
CURSOR_KEY_PURPOSE = b"alert-cursor"


def cursor_key(secret: bytes | None) -> bytes:
    """The cursors' HMAC key: HMAC(secret, "alert-cursor"), or this process's random key."""
    if not secret:
        return _PROCESS_CURSOR_KEY
    return hmac.new(secret, CURSOR_KEY_PURPOSE, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(event_time: datetime, transaction_id: str, window_start: datetime, key: bytes | None = None) -> str:
    raw = json.dumps({"t": event_time.astimezone(timezone.utc).isoformat(), "id": transaction_id,
                      "s": window_start.astimezone(timezone.utc).isoformat()}, separators=(",", ":")).encode()
    signature = hmac.new(key or _PROCESS_CURSOR_KEY, raw, hashlib.sha256).digest()
    return _b64(raw) + "." + _b64(signature)


def decode_cursor(cursor: str, key: bytes | None = None) -> tuple[datetime, str, datetime]:
    payload, dot, signature = cursor.partition(".")
    try:
        raw, given = _unb64(payload), _unb64(signature)
    except Exception:
        raw, given = b"", b""
    if not dot or not raw or not hmac.compare_digest(hmac.new(key or _PROCESS_CURSOR_KEY, raw, hashlib.sha256).digest(),
                                                     given):
        raise BadCursor("cursor is not one this endpoint returned (its signature does not match)")
    try:
        doc = json.loads(raw)
        return datetime.fromisoformat(doc["t"]), str(doc["id"]), datetime.fromisoformat(doc["s"])
    except Exception as exc:
        raise BadCursor(f"cursor is not one this endpoint returned: {exc}") from None


# -- the alert queue -----------------------------------------------------------------------
def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value)).astimezone(timezone.utc)


def _hour_rows(audit: Any, hour: datetime, upper: datetime, lower: datetime) -> list[dict[str, Any]]:
    """One hour's High/Medium decisions in [lower, upper] not yet labelled, newest first."""
    rows = audit.read_hour(hour, lower, upper, list(ALERT_ITEM_COLUMNS), ALERT_LEVELS)
    out = [r for r in rows if r.get("label") in (None, "")]
    for row in out:
        row["event_time"] = _as_utc(row["event_time"])
    out.sort(key=lambda r: (r["event_time"], r["RowKey"]), reverse=True)
    return out


def _recent_activity(profiles: Any, customer_id: str) -> list[dict[str, Any]]:
    try:
        records = profiles.recent_transactions(customer_id, RECENT_ACTIVITY)
    except Exception as exc:  # the queue is still useful without the history
        log.warning("a customer's recent activity is unavailable: %s", type(exc).__name__)  # no id in the logs
        return []
    return [recent_activity_item(r) for r in records[:RECENT_ACTIVITY]]


def alert_queue(views: "DashboardViews", limit: int = 50, hours: float = 72, cursor: str | None = None,
                now: datetime | None = None, key: bytes | None = None) -> dict[str, Any]:
    limit = max(1, min(int(limit), MAX_LIMIT))
    hours = max(1.0, min(float(hours), MAX_HOURS))
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if cursor:
        after_time, after_id, window_start = decode_cursor(cursor, key)
        after_time, window_start = _as_utc(after_time), _as_utc(window_start)
        if not now - timedelta(hours=MAX_HOURS) <= window_start <= after_time <= now + timedelta(minutes=5):
            # a forged cursor (2030 -> 2000) would otherwise walk 260,000 hours of partitions
            raise BadCursor(f"cursor is outside the alert queue's window (at most {MAX_HOURS} hours back, "
                            "not in the future)")
        upper = after_time
    else:
        after_time, after_id = None, None
        window_start = now - timedelta(hours=hours)
        upper = now
    labels = views.label_store
    items: list[dict[str, Any]] = []
    hour = upper.replace(minute=0, second=0, microsecond=0)
    scanned_hours = 0
    exhausted = True
    while hour + timedelta(hours=1) > window_start:
        rows = _hour_rows(views.audit, hour, upper, window_start)
        scanned_hours += 1
        if after_time is not None:
            rows = [r for r in rows if (r["event_time"], r["RowKey"]) < (after_time, after_id)]
        # the label store too: a label recorded but not yet joined still takes the item off the queue
        for row, label in zip(rows, _fanout.map(lambda r: labels.get(r["RowKey"]), rows)):
            if label is None:
                items.append(row)
                if len(items) > limit:
                    break
        if len(items) > limit:
            exhausted = False
            break
        hour -= timedelta(hours=1)
    page, more = items[:limit], len(items) > limit
    next_cursor = encode_cursor(page[-1]["event_time"], page[-1]["RowKey"], window_start, key) if more else None
    activity: dict[str, list] = {}
    customers = list(dict.fromkeys(r["customer_id"] for r in page))
    for customer, recent in zip(customers, _fanout.map(lambda c: _recent_activity(views.profiles, c), customers)):
        activity[customer] = recent
    alerts = [alert_item(r, r["event_time"], [a for a in activity.get(r.get("customer_id"), [])
                                              if a["transaction_id"] != r["RowKey"]]) for r in page]
    return {"alerts": alerts, "count": len(alerts), "next_cursor": next_cursor,
            "window": {"start": window_start.isoformat(), "end": now.isoformat(), "hours": hours},
            "scanned_hours": scanned_hours, "complete": exhausted and not more}


# -- stats ---------------------------------------------------------------------------------
def model_summary(views: "DashboardViews") -> dict[str, Any]:
    pointer = views.registry.current()
    serving = views.serving_model.loaded
    history = []
    for version in views.registry.list_versions():
        try:
            manifest = views.registry.manifest(version)
        except Exception:
            continue
        test = manifest.get("metrics", {}).get("test", {})
        promotion = manifest.get("promotion") or {}
        history.append({"version": version, "created_at": manifest.get("created_at"),
                        "roc_auc": test.get("roc_auc"), "average_precision": test.get("average_precision"),
                        "promoted": promotion.get("promoted"), "promotion_reason": promotion.get("reason"),
                        "current": version == pointer.version})
    history.sort(key=lambda v: (v.get("created_at") or "", v["version"]), reverse=True)
    return {"version": pointer.version, "serving_version": serving.version if serving else None,
            "promoted_at": pointer.document.get("updated_at"), "previous": pointer.document.get("previous"),
            "pointer": pointer.document, "swap_history": [e.__dict__ for e in views.serving_model.history],
            "history": history}


def _psi_thresholds(views: "DashboardViews") -> dict[str, float]:
    return {"warn": views.psi_warn, "alert": views.psi_alert}


def _from_report(report: dict[str, Any]) -> dict[str, Any]:
    drift = report.get("drift") or {}
    performance = report.get("performance") or None
    live = None
    if performance:
        live = {"view": performance.get("view"), "start": performance.get("start"), "end": performance.get("end"),
                "rows": performance.get("rows"), "positives": performance.get("positives"),
                "roc_auc": performance.get("roc_auc"), "average_precision": performance.get("average_precision"),
                "at_thresholds": performance.get("at_thresholds") or {}}
    return {
        "source": "monitoring_report",
        "run_at": report.get("run_at"),
        "window": report.get("window"),
        "volume_per_hour": report.get("volume_per_hour") or {},
        "alert_rate_per_hour": report.get("alert_rate_per_hour") or {},
        "score_distribution": report.get("score_distribution"),
        "drift": {"features": drift.get("features") or {}, "score": drift.get("score"),
                  "alert_rate": drift.get("alert_rate"), "reference_alert_rate": drift.get("reference_alert_rate")},
        "performance": live,
        "latency_ms": report.get("latency_ms") or {},
        "breaches": report.get("breaches") or [],
        "report_blob": report.get("report_blob"),
    }


def _from_audit(views: "DashboardViews", now: datetime, cap: int) -> dict[str, Any]:
    """The monitoring window's newest decisions, hour by hour backwards, at most ``cap`` rows."""
    hours = views.window_hours
    start = now - timedelta(hours=hours)
    tally = WindowTally(ServingReference.from_manifest(None))  # monitoring's aggregation, without drift
    rows = 0
    capped = False
    oldest = now
    upper = now
    while upper > start and not capped:
        lower = max(start, upper.replace(minute=0, second=0, microsecond=0) if upper.minute or upper.second
                    or upper.microsecond else upper - timedelta(hours=1))
        for row in views.audit.read(lower, upper, select=["fraud_score", "risk_level", "latency_ms", "event_time"]):
            if rows >= cap:
                capped = True
                break
            rows += 1
            row["event_time"] = _as_utc(row["event_time"])
            oldest = min(oldest, row["event_time"])
            tally.add(row)
        upper = lower
    covered = f"the newest {rows} decisions of the last {hours:g} hours"
    return {
        "source": "audit_log_aggregate",
        "note": (f"no monitoring report yet: aggregated {covered}"
                 + (f" (capped at {cap}: back to {oldest:%Y-%m-%d %H:%M} UTC only)" if capped else "")),
        "capped": capped, "row_cap": cap, "rows_read": rows,
        "run_at": None,
        "window": {"start": (oldest if capped else start).isoformat(), "end": now.isoformat(), "decisions": rows},
        "volume_per_hour": tally.volume_per_hour(),
        "alert_rate_per_hour": tally.alert_rate_per_hour(),
        "score_distribution": score_distribution(tally.scores) if tally.scores else None,
        "drift": {"features": {}, "score": None, "alert_rate": None, "reference_alert_rate": None},
        "performance": None,
        "latency_ms": percentiles(tally.latencies, (50, 95, 99)),
        "breaches": [],
        "report_blob": None,
    }


_fallback_cache: dict[tuple, tuple[float, dict[str, Any]]] = {}
FALLBACK_CACHE_SECONDS = 60.0


def _cached_from_audit(views: "DashboardViews", now: datetime, cap: int) -> dict[str, Any]:
    """The fallback aggregate, reused for a minute per audit table (it is the slow path)."""
    key = (views.audit.name, cap)
    hit = _fallback_cache.get(key)
    if hit and time.monotonic() - hit[0] < FALLBACK_CACHE_SECONDS:
        return {**hit[1], "cached": True}
    body = _from_audit(views, now, cap)
    _fallback_cache.clear()
    _fallback_cache[key] = (time.monotonic(), body)
    return {**body, "cached": False}


def dashboard_stats(views: "DashboardViews", now: datetime | None = None, cap: int = FALLBACK_ROW_CAP) -> dict[str, Any]:
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    report = views.monitoring_blobs.latest()
    body = _from_report(report) if report else _cached_from_audit(views, now, cap)
    body["psi_thresholds"] = _psi_thresholds(views)
    body["model"] = model_summary(views)
    body["generated_at"] = now.isoformat()
    return body


@dataclass
class DashboardViews:
    """What the dashboard reads, and how it is judged: the read models' only dependencies."""

    audit: Any
    label_store: Any
    profiles: Any
    registry: Any
    serving_model: Any
    monitoring_blobs: Any
    psi_warn: float
    psi_alert: float
    window_hours: float
    cursor_key: bytes | None = None  # ``cursor_key(secret)``; None: this process's random key

    def alert_queue(self, limit: int = 50, hours: float = 72, cursor: str | None = None,
                    now: datetime | None = None) -> dict[str, Any]:
        return alert_queue(self, limit=limit, hours=hours, cursor=cursor, now=now, key=self.cursor_key)

    def stats(self, now: datetime | None = None, cap: int = FALLBACK_ROW_CAP) -> dict[str, Any]:
        return dashboard_stats(self, now=now, cap=cap)
