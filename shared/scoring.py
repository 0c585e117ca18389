"""The scoring service: one path for the Event Hub and HTTP entry points.

validate -> load the customers' profiles -> features -> one ONNX call for the batch ->
decide -> persist exactly once -> audit -> alert.

The service talks to storage only through the small interfaces below (``ProfileStore``,
``AuditLog``, ``AlertQueue``, ``DeadLetterStore`` adapters satisfy them).
"""
from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence


from shared.dead_letter import DeadLetter
from shared.decision import DecisionPolicy, verdict_to_dict
from shared.features import CustomerProfile, as_matrix, score_and_apply
from shared.merchant_risk import NO_MERCHANT
from shared.model import FraudModel
from shared.request_fanout import RequestFanout
from shared.schema import FieldError, Transaction, ValidationOutcome, validate_transaction

log = logging.getLogger(__name__)

MAX_TXNS_PER_COMMIT = 99


# -- the ports ------------------------------------------------------------------------
class StoredProfileLike(Protocol):
    customer_id: str
    profile: CustomerProfile
    etag: str | None


class ProfilePort(Protocol):
    def load(self, customer_id: str) -> StoredProfileLike: ...
    def applied(self, customer_id: str, transaction_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def commit(self, stored: StoredProfileLike, decisions: list[Mapping[str, Any]]) -> None: ...
    def pending_alert(self, customer_id: str, transaction_id: str) -> bool: ...
    def mark_alert_sent(self, customer_id: str, transaction_id: str) -> None: ...


class AuditPort(Protocol):
    def write(self, records: Iterable[Mapping[str, Any]]) -> int: ...
    def locate(self, transaction_ids: list[str]) -> dict[str, dict[str, Any]]: ...


class AlertPort(Protocol):
    def send(self, record: Mapping[str, Any]) -> None: ...


class DeadLetterPort(Protocol):
    def put(self, letter: DeadLetter) -> str: ...


class ModelPort(Protocol):
    def get(self) -> FraudModel: ...


class CommitConflictLike(Exception):
    pass


class ScoringContention(Exception):
    """A customer's profile kept changing under us for every allowed attempt."""


# -- inputs and outputs -----------------------------------------------------------------
@dataclass(frozen=True)
class IncomingEvent:
    """One Event Hub event as plain data."""

    body: bytes
    partition: str | None = None
    sequence_number: int | None = None
    enqueued_time: str | None = None

    @property
    def fallback_id(self) -> str | None:
        if self.partition is None or self.sequence_number is None:
            return None
        return f"{self.partition}:{self.sequence_number}"

    def metadata(self) -> dict[str, Any]:
        return {"partition": self.partition, "sequence_number": self.sequence_number, "enqueued_time": self.enqueued_time}


@dataclass
class EventBatchOutcome:
    decisions: list[dict[str, Any]] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)  # blob names
    duplicates: int = 0


@dataclass
class RequestOutcome:
    decision: dict[str, Any] | None
    errors: tuple[FieldError, ...] = ()
    generated: tuple[str, ...] = ()
    conflict: bool = False  # the transaction id was scored before with other content


def response_body(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The public decision document (HTTP responses)."""
    return {
        "transaction_id": decision["transaction_id"],
        "fraud_probability": decision["fraud_score"],
        "risk_level": decision["risk_level"],
        "action": decision["action"],
        "is_fraud": decision["is_fraud"],
        "reasons": decision["reasons"],
        "rules_fired": decision["rules_fired"],
        "model_version": decision["model_version"],
        "latency_ms": decision["latency_ms"],
        "duplicate": bool(decision.get("duplicate", False)),
        "generated_fields": list(decision.get("generated", [])),
    }


def _record(txn: Transaction, score: float, features: Sequence[float], verdict: dict[str, Any],
            model_version: str, source: str, scored_at: str) -> dict[str, Any]:
    return {
        "transaction_id": txn.transaction_id,
        "customer_id": txn.customer_id,
        "transaction_amount": txn.transaction_amount,
        "currency": txn.currency,
        "timestamp": txn.timestamp.isoformat(),
        "channel": txn.channel,
        "merchant_id": txn.merchant_id,
        "merchant_category": txn.merchant_category,
        "device_id": txn.device_id,
        "country": txn.country,
        "fraud_score": round(float(score), 6),
        **verdict,
        "model_version": model_version,
        "features": [float(v) for v in features],
        "scored_at": scored_at,
        "source": source,
        "alert": verdict["risk_level"] == "High",
    }


def parse_event_body(body: bytes) -> tuple[Any, FieldError | None]:
    try:
        return json.loads(body), None
    except UnicodeDecodeError:
        return None, FieldError("$", "event body is not UTF-8 text")
    except ValueError as exc:
        return None, FieldError("$", f"event body is not valid JSON: {exc}")
    except RecursionError:
        return None, FieldError("$", "event body is not valid JSON: nested too deeply")


CONTENT_FIELDS = tuple(f.name for f in fields(Transaction) if f.name != "transaction_id")


def differing_fields(txn: Transaction, record: Mapping[str, Any]) -> list[str]:
    """The fields in which ``txn`` differs from the already-scored ``record`` of the same id
    (timestamps compare as instants). Empty: a true duplicate delivery."""
    mine = txn.to_dict()
    differ = []
    for name in CONTENT_FIELDS:
        theirs = record.get(name)
        if name == "timestamp":
            same = theirs is not None and datetime.fromisoformat(theirs) == txn.timestamp
        elif name == "transaction_amount":
            same = theirs is not None and float(theirs) == txn.transaction_amount
        else:
            same = (theirs or None) == mine[name]
        if not same:
            differ.append(name)
    return differ


def conflict_error(record: Mapping[str, Any], ignore: Iterable[str] = ()) -> FieldError | None:
    """A FieldError on ``transaction_id`` when the id was scored before with other content."""
    fields = [f for f in record.get("conflict_fields", ()) if f not in set(ignore)]
    if not fields:
        return None
    return FieldError("transaction_id", f"was already scored with different content (differs in: {', '.join(fields)}); "
                                        "a transaction id must identify one transaction")


@dataclass
class FraudScoringService:
    profiles: ProfilePort
    audit: AuditPort
    alerts: AlertPort
    dead_letters: DeadLetterPort
    model: ModelPort
    policy_for: Callable[[FraudModel], DecisionPolicy]
    conflict_error: type[Exception] = CommitConflictLike
    webhook: Any = None
    merchants: Any = None  # MerchantRiskCache: merchant risk values at a transaction's time
    default_currency: str = "NGN"
    max_amount: float = 1e9
    max_conflicts: int = 25
    io_workers: int = 8
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    _fanout: RequestFanout = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fanout = RequestFanout(self.io_workers, "scoring-io")

    # -- entry: Event Hub ---------------------------------------------------------------
    def score_events(self, events: Sequence[IncomingEvent]) -> EventBatchOutcome:
        """Score a batch; invalid events are dead-lettered with the reason, the rest scored."""
        now = self.clock()
        outcome = EventBatchOutcome()
        valid: list[tuple[Transaction, IncomingEvent]] = []
        for event in events:
            payload, parse_error = parse_event_body(event.body)
            if parse_error is not None:
                outcome.dead_lettered.append(self._dead_letter(event, (parse_error,)))
                continue
            if isinstance(payload, dict) and payload.get("transaction_id") is None and event.fallback_id:
                payload = {**payload, "transaction_id": event.fallback_id}
            checked = self.validate(payload, now=now, fill_missing=False)
            if not checked.ok:
                outcome.dead_lettered.append(self._dead_letter(event, checked.errors))
                continue
            valid.append((checked.transaction, event))
        if valid:
            records = self.score_transactions([t for t, _ in valid], source="eventhub")
            for (txn, event), record in zip(valid, records):
                conflict = conflict_error(record)
                if conflict is not None:
                    outcome.dead_lettered.append(self._dead_letter(event, (conflict,)))
                else:
                    outcome.decisions.append(record)
            outcome.duplicates = sum(1 for d in outcome.decisions if d.get("duplicate"))
        return outcome

    def dead_letter_events(self, events: Sequence[IncomingEvent], reason: str) -> list[str]:
        """Keep events that could not be processed at all (e.g. retries exhausted)."""
        return [self._dead_letter(e, (FieldError("$", reason),)) for e in events]

    def _dead_letter(self, event: IncomingEvent, errors: Sequence[FieldError]) -> str:
        letter = DeadLetter(event.body, [e.to_dict() for e in errors], "eventhub", event.metadata())
        name = self.dead_letters.put(letter)
        log.warning("dead-lettered event %s: %s", event.fallback_id, "; ".join(f"{e.field}: {e.problem}" for e in errors))
        return name

    # -- entry: HTTP --------------------------------------------------------------------
    def score_request(self, payload: Any) -> RequestOutcome:
        checked = self.validate(payload, now=self.clock(), fill_missing=True)
        if not checked.ok:
            return RequestOutcome(None, checked.errors)
        (decision,) = self.score_transactions([checked.transaction], source="http")
        conflict = conflict_error(decision, ignore=checked.generated)  # a generated timestamp is not a difference
        if conflict is not None:
            return RequestOutcome(None, (conflict,), checked.generated, conflict=True)
        decision = {**decision, "generated": list(checked.generated)}
        return RequestOutcome(decision, (), checked.generated)

    def validate(self, payload: Any, *, now: datetime, fill_missing: bool) -> ValidationOutcome:
        return validate_transaction(payload, now=now, default_currency=self.default_currency,
                                    max_amount=self.max_amount, fill_missing=fill_missing)

    # -- the shared core ----------------------------------------------------------------
    def score_transactions(self, transactions: Sequence[Transaction], source: str) -> list[dict[str, Any]]:
        """Decisions for valid transactions, in input order; each applied exactly once."""
        started = time.perf_counter()
        model = self.model.get()  # one model for the whole batch, even if a swap happens meanwhile
        policy = self.policy_for(model)
        first_seen: dict[str, Transaction] = {}
        for txn in transactions:
            first_seen.setdefault(txn.transaction_id, txn)
        # An id already scored for another customer (its audit index row says whose) is a
        # conflict, never a second transaction: it would overwrite the other's audit row.
        # Looked up while the profiles load (one round trip of latency, not two).
        lookup = self._fanout.submit(self._scored_for_other_customers, dict(first_seen))
        elsewhere: set[str] | None = None
        pending: dict[str, list[Transaction]] = defaultdict(list)
        for txn in first_seen.values():
            pending[txn.customer_id].append(txn)
        for txns in pending.values():
            txns.sort(key=lambda t: t.epoch_seconds)  # one customer's events in event-time order

        decided: dict[str, dict[str, Any]] = {}
        conflicts: dict[str, int] = defaultdict(int)
        while pending:
            chunks = {c: txns[:MAX_TXNS_PER_COMMIT] for c, txns in pending.items()}
            stored = dict(zip(chunks, self._fanout.map(self.profiles.load, list(chunks))))
            if elsewhere is None:
                elsewhere = lookup.result()
                if elsewhere:  # rare: drop those transactions, then load again for the rest
                    for txn_id in elsewhere:
                        del first_seen[txn_id]
                    for customer in list(pending):
                        pending[customer] = [t for t in pending[customer] if t.transaction_id not in elsewhere]
                        if not pending[customer]:
                            del pending[customer]
                    continue
            if self.merchants is not None:
                merchant_ids = sorted({t.merchant_id for chunk in chunks.values() for t in chunk if t.merchant_id})
                self._fanout.map(lambda m: self.merchants.prefetch([m]), merchant_ids)
            rows, owners = [], []
            for customer, chunk in chunks.items():
                profile = stored[customer].profile
                for txn in chunk:
                    merchant_values = (self.merchants.values(txn.merchant_id, txn.epoch_seconds)
                                       if self.merchants is not None else NO_MERCHANT)
                    rows.append(score_and_apply(profile, txn, merchant_values))
                    owners.append(txn)
            features = as_matrix(rows)
            scores = model.predict(features)
            scored_at = self.clock().isoformat()
            by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for txn, vector, score in zip(owners, features, scores):
                verdict = verdict_to_dict(policy.decide(txn, float(score), vector))
                by_customer[txn.customer_id].append(
                    _record(txn, float(score), vector, verdict, model.version, source, scored_at))

            def commit(customer: str) -> tuple[str, bool]:
                records = by_customer[customer]
                for r in records:
                    r["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
                try:
                    self.profiles.commit(stored[customer], records)
                    return customer, True
                except self.conflict_error:
                    return customer, False

            for customer, ok in self._fanout.map(commit, list(chunks)):
                if ok:
                    for r in by_customer[customer]:
                        decided[r["transaction_id"]] = {**r, "duplicate": False}
                    del pending[customer][:len(chunks[customer])]
                else:
                    conflicts[customer] += 1
                    if conflicts[customer] > self.max_conflicts:
                        raise ScoringContention(f"customer {customer}: profile kept changing over {self.max_conflicts} attempts")
                    already = self.profiles.applied(customer, [t.transaction_id for t in pending[customer]])
                    for txn_id, record in already.items():
                        decided[txn_id] = {**record, "duplicate": True}
                    pending[customer] = [t for t in pending[customer] if t.transaction_id not in already]
                    if not already:  # a concurrent writer: back off a little, with jitter
                        time.sleep(random.uniform(0, 0.01 * min(conflicts[customer], 10)))
                if not pending[customer]:
                    del pending[customer]

        if elsewhere is None:
            elsewhere = lookup.result()
        results = [decided[t.transaction_id] for t in first_seen.values()]
        self.audit.write(results)  # idempotent upserts, also for duplicates (repairs a lost write)
        self._alert(results)
        by_id = {r["transaction_id"]: r for r in results}
        out = []
        seen: set[str] = set()
        for txn in transactions:
            if txn.transaction_id in elsewhere:
                out.append({"transaction_id": txn.transaction_id, "customer_id": txn.customer_id,
                            "conflict_fields": ["customer_id"], "duplicate": True})
                continue
            record = by_id[txn.transaction_id]
            if txn.transaction_id in seen:
                record = {**record, "duplicate": True}
            if record.get("duplicate"):
                differ = differing_fields(txn, record)
                if differ:
                    record = {**record, "conflict_fields": differ}
            seen.add(txn.transaction_id)
            out.append(record)
        return out

    def _scored_for_other_customers(self, first_seen: Mapping[str, Transaction]) -> set[str]:
        if not first_seen:
            return set()
        found = self.audit.locate(list(first_seen))
        return {txn_id for txn_id, where in found.items() if where["customer_id"] != first_seen[txn_id].customer_id}

    def _alert(self, records: list[dict[str, Any]]) -> None:
        """Outbox: a High decision's row says 'pending' until its alert is on the queue."""
        for record in records:
            if not record.get("alert"):
                continue
            if record.get("duplicate") and not self.profiles.pending_alert(record["customer_id"], record["transaction_id"]):
                continue
            self.alerts.send(record)
            self.profiles.mark_alert_sent(record["customer_id"], record["transaction_id"])
            if self.webhook is not None:
                self.webhook.post(record)
