"""The decision as a value, and every form it takes outside the process.

``DecisionRecord`` says what was decided, about which transaction, by which model, with
which features. ``Delivery`` carries the facts of one delivery of a transaction
(a duplicate, an id reused with other content, fields the schema generated) that are not
part of the decision. This module is the one place that maps a record to each of its
representations — the stored document (profile rows), the audit entity, the alert
message and the webhook's, the HTTP body, the export row and the dashboard's alert item — so adding a field
to the audit log is a change to this file only.

A record may carry the score a shadow challenger gave the same features (``ShadowScore``).
It is not part of the decision: it appears in the audit entity only (``shadow_score``,
``shadow_version``), never in the stored document, the alert, the HTTP body or equality.

Feature vectors are float32 end to end; stored, they are the base64 of their little-endian
float32 bytes (``pack_features`` / ``unpack_features``), not JSON text of floats.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, fields, replace
from functools import cached_property
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np

from shared.domain import json_text
from shared.domain.decision import Verdict
from shared.domain.transaction import Transaction

FEATURE_DTYPE = np.dtype("<f4")


def pack_features(vector: np.ndarray) -> str:
    """float32 vector -> base64 text of its little-endian bytes (4 bytes per feature)."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype=FEATURE_DTYPE).tobytes()).decode("ascii")


def unpack_features(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=FEATURE_DTYPE).astype(np.float32)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class ShadowScore:
    """What a shadow challenger scored for the decision's features: logged, never decided on."""

    version: str
    score: float


@dataclass(frozen=True, eq=False)
class DecisionRecord:
    transaction: Transaction
    fraud_score: float
    verdict: Verdict
    model_version: str
    features: np.ndarray  # float32, in FEATURE_NAMES order
    scored_at: datetime
    source: str  # "eventhub" | "http" | ...
    latency_ms: float = 0.0
    shadow: ShadowScore | None = None  # the audit entity's only: not part of the decision

    # -- what callers ask of a decision ---------------------------------------------------
    @property
    def transaction_id(self) -> str:
        return self.transaction.transaction_id

    @property
    def customer_id(self) -> str:
        return self.transaction.customer_id

    @property
    def risk_level(self) -> str:
        return self.verdict.risk_level

    @property
    def alert(self) -> bool:
        """High decisions are alerted (outbox: see the scoring service)."""
        return self.verdict.risk_level == "High"

    @cached_property
    def packed_features(self) -> str:
        """The stored form of ``features``, computed once for the profile row and the audit entity."""
        return pack_features(self.features)

    def with_latency(self, latency_ms: float) -> "DecisionRecord":
        return replace(self, latency_ms=round(latency_ms, 3))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DecisionRecord):
            return NotImplemented
        return self.document() == other.document()

    # -- the stored document (profile rows: a redelivery returns it) ----------------------
    def document(self) -> dict[str, Any]:
        """A new dict each call (callers add and remove keys); built once per record, as the
        profile's transaction row and the archive line both start from it."""
        return dict(self._document)

    @cached_property
    def _document(self) -> dict[str, Any]:
        txn = self.transaction
        return {
            **txn.to_dict(),
            "fraud_score": self.fraud_score,
            "risk_level": self.verdict.risk_level,
            "action": self.verdict.action,
            "is_fraud": self.verdict.is_fraud,
            "reasons": list(self.verdict.reasons),
            "rules_fired": list(self.verdict.rules_fired),
            "model_version": self.model_version,
            "features": self.packed_features,
            "scored_at": self.scored_at.isoformat(),
            "source": self.source,
            "latency_ms": self.latency_ms,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "DecisionRecord":
        values = {f.name: doc.get(f.name) for f in fields(Transaction)}
        values.update(timestamp=datetime.fromisoformat(doc["timestamp"]), transaction_amount=float(doc["transaction_amount"]))
        return cls(
            transaction=Transaction(**values),
            fraud_score=float(doc["fraud_score"]),
            verdict=Verdict(doc["risk_level"], doc["action"], bool(doc["is_fraud"]),
                            tuple(doc.get("reasons") or ()), tuple(doc.get("rules_fired") or ())),
            model_version=doc["model_version"],
            features=unpack_features(doc["features"]),
            scored_at=datetime.fromisoformat(doc["scored_at"]),
            source=doc.get("source") or "",
            latency_ms=float(doc.get("latency_ms") or 0.0),
        )

    # -- the audit log's entity (without its keys: the adapter adds those) ----------------
    def audit_fields(self) -> dict[str, Any]:
        txn = self.transaction
        return {
            "transaction_id": txn.transaction_id,
            "customer_id": txn.customer_id,
            "transaction_amount": float(txn.transaction_amount),
            "currency": txn.currency or "",
            "fraud_score": float(self.fraud_score),
            "risk_level": self.verdict.risk_level,
            "action": self.verdict.action,
            "is_fraud": bool(self.verdict.is_fraud),
            "reasons": _json_list(self.verdict.reasons),
            "rules_fired": _json_list(self.verdict.rules_fired),
            "model_version": self.model_version,
            "features": self.packed_features,
            "latency_ms": float(self.latency_ms),
            "timestamp": txn.timestamp.isoformat(),
            "event_time": _utc(txn.timestamp),
            "scored_at": self.scored_at.isoformat(),
            "channel": txn.channel or "",
            "merchant_id": txn.merchant_id or "",
            "merchant_category": txn.merchant_category or "",
            "device_id": txn.device_id or "",
            "country": txn.country or "",
            "source": self.source or "",
            **self._shadow_fields(),
        }

    def _shadow_fields(self) -> dict[str, Any]:
        """The audit entity's shadow columns; none without a shadow, so a rewrite of the decision
        (a redelivery) keeps the shadow score logged when it was first made."""
        if self.shadow is None:
            return {}
        return {"shadow_score": float(self.shadow.score), "shadow_version": self.shadow.version}

    # -- the alert queue's message and the webhook's (docs/DATA.md) ------------------------
    def alert_message(self) -> dict[str, Any]:
        """The alert queue's message: what an analyst's case tool needs to open a case, no more.
        No customer, device or merchant id and no amount: the tool reads those, for the analysts
        allowed to see them, from the audit log by ``transaction_id`` (the bank's record)."""
        txn = self.transaction
        return {
            "transaction_id": txn.transaction_id,
            "timestamp": txn.timestamp.isoformat(),
            "fraud_score": self.fraud_score,
            "risk_level": self.verdict.risk_level,
            "action": self.verdict.action,
            "reasons": list(self.verdict.reasons),
            "rules_fired": list(self.verdict.rules_fired),
            "model_version": self.model_version,
        }

    def webhook_message(self, customer_pseudonym: str) -> dict[str, Any]:
        """What the webhook sends out of the bank: the alert message and the customer's keyed
        pseudonym (so a channel can tell one customer's alerts together), never a raw id."""
        return {**self.alert_message(), "customer_pseudonym": customer_pseudonym}


@dataclass(frozen=True)
class Delivery:
    """One delivery of a transaction and what came of it.

    ``record`` is the decision (new, or the one made at the first delivery when
    ``duplicate``); ``conflict_fields`` is non-empty when the id was scored before with other
    content (then the delivery is refused, and ``record`` is the earlier decision, if known).
    """

    record: DecisionRecord | None
    duplicate: bool = False
    conflict_fields: tuple[str, ...] = ()
    generated: tuple[str, ...] = ()

    @property
    def conflict(self) -> bool:
        return bool(self.conflict_fields)

    def http_body(self) -> dict[str, Any]:
        """The public decision document (HTTP responses)."""
        r = self.record
        assert r is not None
        return {
            "transaction_id": r.transaction_id,
            "fraud_probability": round(float(r.fraud_score), 6),
            "risk_level": r.verdict.risk_level,
            "action": r.verdict.action,
            "is_fraud": r.verdict.is_fraud,
            "reasons": list(r.verdict.reasons),
            "rules_fired": list(r.verdict.rules_fired),
            "model_version": r.model_version,
            "latency_ms": r.latency_ms,
            "duplicate": self.duplicate,
            "generated_fields": list(self.generated),
        }


def _json_list(items: tuple[str, ...]) -> str:
    """``items`` as a JSON list (compact; the empty list, the common case, without an encoder)."""
    return json_text.dumps(list(items)) if items else "[]"


# -- rows read back from the audit log ------------------------------------------------------
AUDIT_EXPORT_COLUMNS = (
    # The seed's log structure first, then what we add.
    "transaction_id", "customer_id", "transaction_amount", "fraud_score", "risk_level", "timestamp", "label",
    "action", "is_fraud", "reasons", "rules_fired", "model_version", "latency_ms", "scored_at",
    "currency", "channel", "merchant_id", "merchant_category", "device_id", "country", "source",
)
ALERT_ITEM_COLUMNS = ("RowKey", "transaction_id", "customer_id", "transaction_amount", "currency", "fraud_score",
                      "risk_level", "action", "reasons", "timestamp", "event_time", "label", "model_version",
                      "channel", "merchant_id", "device_id")
RECENT_ACTIVITY_FIELDS = ("transaction_id", "transaction_amount", "currency", "timestamp", "risk_level", "fraud_score",
                          "action", "merchant_id", "channel", "device_id")


def index_decision_fields(record: DecisionRecord) -> dict[str, Any]:
    """What the id index keeps of a decision besides where it lives: the label join hands it to
    the monitor with the label (``LabelledDecision``), so no audit row is read for it."""
    return {"fraud_score": float(record.fraud_score), "model_version": record.model_version,
            **record._shadow_fields()}


def index_view(record: DecisionRecord) -> tuple:
    """What an id-index row says of a decision, comparable with ``ScoredElsewhere.view()``: a
    claim whose row says otherwise than the committed decision is rewritten."""
    shadow = record.shadow
    return (record.customer_id, _utc(record.transaction.timestamp).isoformat(), record.transaction.merchant_id or "",
            float(record.fraud_score), record.model_version, shadow.version if shadow else "",
            float(shadow.score) if shadow else None)


def scored_elsewhere_fields(entity: Mapping[str, Any]) -> dict[str, Any]:
    """``ScoredElsewhere``'s optional fields from an index entity (older entities lack some)."""
    score, shadow = entity.get("fraud_score"), entity.get("shadow_score")
    return {"event_time": entity.get("event_time"), "merchant_id": entity.get("merchant_id") or "",
            "fraud_score": None if score in (None, "") else float(score),
            "model_version": entity.get("model_version") or "", "shadow_version": entity.get("shadow_version") or "",
            "shadow_score": None if shadow in (None, "") else float(shadow)}


def export_row(entity: Mapping[str, Any]) -> dict[str, Any]:
    """An audit entity as a row of the export (CSV columns ``AUDIT_EXPORT_COLUMNS``)."""
    row = {column: _inert(entity.get(column, "")) for column in AUDIT_EXPORT_COLUMNS}
    row["label"] = "" if entity.get("label") in (None, "") else entity.get("label")
    return row


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(...)`` in a merchant name)
    gets a leading apostrophe (OWASP's CSV injection advice); numbers stay numbers."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def alert_item(entity: Mapping[str, Any], event_time: datetime, recent_activity: list[dict[str, Any]]) -> dict[str, Any]:
    """An audit entity (columns ``ALERT_ITEM_COLUMNS``) as an item of the analysts' alert queue."""
    return {
        "transaction_id": entity["RowKey"],
        "customer_id": entity.get("customer_id"),
        "amount": entity.get("transaction_amount"),
        "currency": entity.get("currency") or "",
        "score": entity.get("fraud_score"),
        "risk_level": entity.get("risk_level"),
        "action": entity.get("action"),
        "reasons": json_text.loads(entity.get("reasons") or "[]"),
        "time": event_time.isoformat(),
        "timestamp": entity.get("timestamp"),
        "channel": entity.get("channel") or "",
        "merchant_id": entity.get("merchant_id") or "",
        "device_id": entity.get("device_id") or "",
        "model_version": entity.get("model_version"),
        "recent_activity": recent_activity,
    }


def recent_activity_item(record: DecisionRecord) -> dict[str, Any]:
    """A customer's earlier decision as the dashboard shows it beside an alert."""
    doc = record.document()
    return {k: doc[k] for k in RECENT_ACTIVITY_FIELDS}
