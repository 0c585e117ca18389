"""Fraud outcomes (labels) that arrive late: parsing and validation, pure.

A label says whether a scored transaction turned out to be fraud: chargebacks, bank
investigations, analyst verdicts. Files in the ``labels`` container are CSV or JSON lines
with ``transaction_id``, ``label`` and optional ``customer_id``, ``labelled_at``,
``source``; ``POST /api/labels`` takes the same fields as JSON.

Labels are an append-only history per transaction: every label received is a new entry
(who gave it, when, what the current value was before it, its source), keyed by a hash of
its content so that an exact redelivery adds nothing; the current label is derived from the
history (``current_entry``). ``labelled_by`` is the signed-in analyst for a verdict given on
the dashboard, ``file:<name>`` for a label file: never what a caller claims.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from shared.domain.transaction import ID_PATTERN, FieldError, check_id, parse_timestamp

FRAUD_WORDS = {"1", "true", "fraud", "yes", "1.0"}
LEGIT_WORDS = {"0", "false", "legit", "legitimate", "genuine", "no", "0.0"}
MAX_SOURCE = 64
MAX_LABELLED_BY = 160


@dataclass(frozen=True)
class Label:
    transaction_id: str
    is_fraud: bool
    customer_id: str | None
    labelled_at: datetime | None
    source: str
    labelled_by: str = ""  # the analyst (principal name) or "file:<name>"; set by the app, never by the caller
    labelled_by_id: str = ""  # the analyst's Entra object id, when known

    def to_dict(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "label": int(self.is_fraud), "customer_id": self.customer_id,
                "labelled_at": self.labelled_at.isoformat() if self.labelled_at else None, "source": self.source,
                "labelled_by": self.labelled_by}

    @property
    def content_key(self) -> str:
        """A hash of everything the label says: the same label delivered again has the same key."""
        labelled_at = self.labelled_at.astimezone(timezone.utc).isoformat() if self.labelled_at else ""
        content = [self.transaction_id, int(self.is_fraud), self.customer_id or "", labelled_at, self.source,
                   self.labelled_by, self.labelled_by_id]
        return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()[:32]


# -- the append-only history ---------------------------------------------------------------
HISTORY_FIELDS = ("transaction_id", "label", "customer_id", "labelled_at", "source", "labelled_by", "labelled_by_id",
                  "previous_label", "ordinal", "received_at", "key")


def _moment(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def history_order(entry: Mapping[str, Any]) -> tuple:
    """Entries sort by when the label was given (``labelled_at``, else when it was received), then
    when it was received, then the order it was appended in, then its key: the last is current."""
    received = _moment(entry.get("received_at")) or datetime.min.replace(tzinfo=timezone.utc)
    return (_moment(entry.get("labelled_at")) or received, received, int(entry.get("ordinal") or 0), str(entry["key"]))


def current_entry(history: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The current label of a transaction: the latest entry of its history (None without one)."""
    return max(history, key=history_order, default=None)


def repeats_current(label: Label, current: Mapping[str, Any] | None) -> bool:
    """The label says what the current one says, from the same source and person: a resent verdict
    (an analyst's retry), not a new one."""
    return (current is not None and int(current["label"]) == int(label.is_fraud)
            and str(current.get("source") or "") == label.source and str(current.get("labelled_by") or "") == label.labelled_by)


def append_to_history(history: Sequence[Mapping[str, Any]], labels: Iterable[Label], now: datetime) -> list[dict[str, Any]]:
    """The new entries ``labels`` add to one transaction's ``history`` (in the order given): none for
    a label already in it (same content key) or one repeating the current label; each new entry
    records the current value before it (``previous_label``, None for the first)."""
    entries = [dict(e) for e in history]
    added: list[dict[str, Any]] = []
    for label in labels:
        key = label.content_key
        current = current_entry(entries)
        if any(e["key"] == key for e in entries) or repeats_current(label, current):
            continue
        entry = {"transaction_id": label.transaction_id, "label": int(label.is_fraud), "customer_id": label.customer_id or "",
                 "labelled_at": label.labelled_at.isoformat() if label.labelled_at else "", "source": label.source,
                 "labelled_by": label.labelled_by, "labelled_by_id": label.labelled_by_id,
                 "previous_label": int(current["label"]) if current is not None else None,
                 "ordinal": len(entries), "received_at": now, "key": key}
        entries.append(entry)
        added.append(entry)
    return added


def current_fields(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the store keeps as a transaction's current label (its latest entry, with the count)."""
    current = current_entry(history)
    if current is None:
        return {}
    latest_received = max((_moment(e.get("received_at")) for e in history if e.get("received_at") is not None), default=None)
    return {"label": int(current["label"]), "customer_id": current.get("customer_id") or "",
            "labelled_at": current.get("labelled_at") or "", "source": current.get("source") or "",
            "labelled_by": current.get("labelled_by") or "", "labelled_by_id": current.get("labelled_by_id") or "",
            "previous_label": current.get("previous_label"), "current_key": current["key"], "history": len(history),
            "received_at": latest_received}


def parse_label(raw: Any, default_source: str) -> tuple[Label | None, list[FieldError]]:
    if not isinstance(raw, dict):
        return None, [FieldError("$", "a label must be a JSON object")]
    errors: list[FieldError] = []
    txn_id, err = check_id(raw.get("transaction_id"), "transaction_id") if raw.get("transaction_id") is not None else (
        None, FieldError("transaction_id", "is required"))
    if err:
        errors.append(err)
    value = raw.get("label", raw.get("is_fraud"))
    word = str(value).strip().lower() if value is not None and not isinstance(value, bool) else (
        str(int(value)) if isinstance(value, bool) else None)
    if word in FRAUD_WORDS:
        is_fraud = True
    elif word in LEGIT_WORDS:
        is_fraud = False
    else:
        is_fraud = False
        errors.append(FieldError("label", "must be fraud/legitimate (1/0, true/false)"))
    customer = raw.get("customer_id")
    if customer in ("", None):
        customer = None
    else:
        customer, err = check_id(customer, "customer_id")
        if err:
            errors.append(err)
    labelled_at = None
    if raw.get("labelled_at") not in (None, ""):
        try:
            labelled_at = parse_timestamp(raw["labelled_at"])
        except ValueError as exc:
            errors.append(FieldError("labelled_at", str(exc)))
    source = raw.get("source")
    if source in (None, ""):
        source = default_source
    elif not isinstance(source, str):
        errors.append(FieldError("source", f"must be a string, got {type(source).__name__}"))
    source = str(source)[:MAX_SOURCE]
    if errors:
        return None, errors
    return Label(txn_id, is_fraud, customer, labelled_at, source), []


def label_json_schema() -> dict[str, Any]:
    """The JSON Schema of what ``parse_label`` accepts (functions/openapi.json is derived from it)."""
    return {
        "type": "object",
        "required": ["transaction_id", "label"],
        "properties": {
            "transaction_id": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
            "label": {"description": "fraud/legitimate, 1/0 or true/false", "type": ["string", "integer", "boolean"]},
            "customer_id": {"type": ["string", "null"], "pattern": f"^({ID_PATTERN})?$", "description": "Empty or null when unknown."},
            "labelled_at": {"type": ["string", "null"], "format": "date-time", "description": "Empty or null when unknown."},
            "source": {"type": ["string", "null"], "description": f"Who labelled (analyst, chargeback, ...); 'api' when absent, "
                                                                  f"empty or null; first {MAX_SOURCE} characters kept."},
        },
    }


def parse_label_file(name: str, content: bytes, default_source: str = "file") -> tuple[list[Label], list[dict[str, Any]]]:
    """Labels and the rejected lines (line number, errors) of a CSV or JSON-lines file."""
    text = content.decode("utf-8-sig")
    rows: Iterable[tuple[int, Any]]
    if name.endswith((".jsonl", ".ndjson", ".json")):
        parsed = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                parsed.append((number, json.loads(line)))
            except ValueError as exc:
                parsed.append((number, {"__error__": str(exc)}))
            except RecursionError:  # '[[[[…' deeper than the parser's recursion limit
                parsed.append((number, {"__error__": "nested too deeply"}))
        rows = parsed
    else:
        rows = ((number + 1, row) for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=1))
    labels, rejected = [], []
    for number, row in rows:
        if isinstance(row, dict) and "__error__" in row:
            rejected.append({"line": number, "errors": [{"field": "$", "problem": f"not valid JSON: {row['__error__']}"}]})
            continue
        label, errors = parse_label(row, default_source)
        if label is None:
            rejected.append({"line": number, "errors": [e.to_dict() for e in errors]})
        else:
            labels.append(label)
    return labels, rejected
