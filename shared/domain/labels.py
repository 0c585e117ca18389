"""Fraud outcomes (labels) that arrive late: parsing and validation, pure.

A label says whether a scored transaction turned out to be fraud: chargebacks, bank
investigations, analyst verdicts. Files in the ``labels`` container are CSV or JSON lines
with ``transaction_id``, ``label`` and optional ``customer_id``, ``labelled_at``,
``source``; ``POST /api/labels`` takes the same fields as JSON.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from shared.domain.transaction import ID_PATTERN, FieldError, check_id, parse_timestamp

FRAUD_WORDS = {"1", "true", "fraud", "yes", "1.0"}
LEGIT_WORDS = {"0", "false", "legit", "legitimate", "genuine", "no", "0.0"}
MAX_SOURCE = 64


@dataclass(frozen=True)
class Label:
    transaction_id: str
    is_fraud: bool
    customer_id: str | None
    labelled_at: datetime | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "label": int(self.is_fraud), "customer_id": self.customer_id,
                "labelled_at": self.labelled_at.isoformat() if self.labelled_at else None, "source": self.source}


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
