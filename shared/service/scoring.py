"""The scoring service: one path for the Event Hub and HTTP entry points.

validate -> load the customers' profiles -> features -> one ONNX call for the batch ->
decide -> persist exactly once -> audit -> alert.

With a shadow challenger set (``ModelPort.shadow()``), each chunk's feature matrix is
scored once more by it: its score goes into the audit entry only (``ShadowScore``), never
into a decision, and a failing shadow is logged and never fails the batch.

The service talks to storage only through the ports of ``shared.service.ports``; the
Azure adapters and the in-memory fakes of the tests both satisfy them.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from shared.domain.dead_letter import DeadLetter
from shared.domain.decision import DecisionPolicy
from shared.domain.decision_record import DecisionRecord, Delivery, ShadowScore, index_view
from shared.domain.features import as_matrix, features_then_record
from shared.domain.merchant_risk import NO_MERCHANT
from shared.domain.model import FraudModel
from shared.domain.transaction import FieldError, Transaction, ValidationOutcome, validate_transaction
from shared.service.fanout import RequestFanout
from shared.service.request_combiner import RequestCombiner
from shared.service.ports import (MAX_TXNS_PER_COMMIT, AlertPort, AuditPort, CommitConflict, DeadLetterPort,
                                  DecisionOutletPort, MerchantRiskPort, ModelPort, ProfilePort, StoredProfile, WebhookPort)

log = logging.getLogger(__name__)



class ScoringContention(Exception):
    """A customer's profile kept changing under us for every allowed attempt."""


class RecentIds:
    """The last ``capacity`` ids added (a bounded set, oldest forgotten first); thread safe."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: dict[str, None] = {}
        self._lock = threading.Lock()

    def __contains__(self, item: str) -> bool:
        return item in self._ids

    def add_all(self, ids: Iterable[str]) -> None:
        with self._lock:
            for item in ids:
                self._ids.pop(item, None)
                self._ids[item] = None
            for _ in range(len(self._ids) - self.capacity):
                del self._ids[next(iter(self._ids))]


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
    deliveries: list[Delivery] = field(default_factory=list)  # scored (new or duplicate), in batch order
    dead_lettered: list[str] = field(default_factory=list)  # blob names

    @property
    def duplicates(self) -> int:
        return sum(1 for d in self.deliveries if d.duplicate)


@dataclass(frozen=True)
class RequestOutcome:
    delivery: Delivery | None
    errors: tuple[FieldError, ...] = ()

    @property
    def conflict(self) -> bool:
        """The transaction id was scored before with other content."""
        return self.delivery is not None and self.delivery.conflict


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


def differing_fields(txn: Transaction, earlier: Transaction) -> tuple[str, ...]:
    """The fields in which ``txn`` differs from the already-scored ``earlier`` transaction of the
    same id (timestamps compare as instants). Empty: a true duplicate delivery."""
    return tuple(name for name in CONTENT_FIELDS
                 if (getattr(txn, name) or None) != (getattr(earlier, name) or None))


def conflict_error(delivery: Delivery) -> FieldError | None:
    """A FieldError on ``transaction_id`` when the id was scored before with other content."""
    if not delivery.conflict_fields:
        return None
    return FieldError("transaction_id", f"was already scored with different content "
                                        f"(differs in: {', '.join(delivery.conflict_fields)}); "
                                        "a transaction id must identify one transaction")


@dataclass
class _Pending:
    """One scoring call's state: what is left to apply per customer, and what was decided."""

    by_customer: dict[str, list[Transaction]]
    decided: dict[str, Delivery] = field(default_factory=dict)
    conflicts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def drop(self, transaction_ids: set[str]) -> None:
        for customer in list(self.by_customer):
            self.by_customer[customer] = [t for t in self.by_customer[customer] if t.transaction_id not in transaction_ids]
            if not self.by_customer[customer]:
                del self.by_customer[customer]


@dataclass
class FraudScoringService:
    profiles: ProfilePort
    audit: AuditPort
    alerts: AlertPort
    dead_letters: DeadLetterPort
    model: ModelPort
    policy_for: Callable[[FraudModel], DecisionPolicy]
    webhook: WebhookPort | None = None
    merchants: MerchantRiskPort | None = None
    default_currency: str = "NGN"
    max_amount: float = 1e9
    outlets: Sequence[DecisionOutletPort] = ()  # aggregates, archive, training sample (after the audit write)
    max_conflicts: int = 25
    io_workers: int = 8
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    audited_ids_kept: int = 20_000  # ids whose audit rows this process wrote, remembered (redeliveries)
    _fanout: RequestFanout = field(init=False, repr=False)
    _audited: "RecentIds" = field(init=False, repr=False)
    _requests: RequestCombiner = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fanout = RequestFanout(self.io_workers, "scoring-io")
        self._audited = RecentIds(self.audited_ids_kept)
        self._requests = RequestCombiner(lambda txns: self.score_transactions(txns, source="http"))

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
            deliveries = self.score_transactions([t for t, _ in valid], source="eventhub")
            for (_, event), delivery in zip(valid, deliveries):
                conflict = conflict_error(delivery)
                if conflict is not None:
                    outcome.dead_lettered.append(self._dead_letter(event, (conflict,)))
                else:
                    outcome.deliveries.append(delivery)
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
        delivery = self._requests.submit(checked.transaction)  # scored with the concurrent requests
        # a generated timestamp is not a difference: a retry without one is still a repeat
        conflict_fields = tuple(f for f in delivery.conflict_fields if f not in checked.generated)
        delivery = Delivery(delivery.record, delivery.duplicate, conflict_fields, checked.generated)
        conflict = conflict_error(delivery)
        return RequestOutcome(delivery, (conflict,) if conflict is not None else ())

    def validate(self, payload: Any, *, now: datetime, fill_missing: bool) -> ValidationOutcome:
        return validate_transaction(payload, now=now, default_currency=self.default_currency,
                                    max_amount=self.max_amount, fill_missing=fill_missing)

    # -- the shared core ----------------------------------------------------------------
    def score_transactions(self, transactions: Sequence[Transaction], source: str) -> list[Delivery]:
        """One delivery per input transaction, in input order; each transaction applied exactly once.

        Per round, for each customer's next chunk: load the profile; a transaction whose id the
        profile row lists as recently applied is a redelivery, answered from its stored decision
        (a point read, no commit); the others are scored, their ids claimed in the id index
        (create-only, a round trip per index partition), and committed with the profile. An id
        the index already gives to another customer is a conflict, never a second transaction
        (it would overwrite the other's audit row): it is dropped and its customer re-scored.
        """
        started = time.perf_counter()
        model = self.model.get()  # one model for the whole batch, even if a swap happens meanwhile
        shadow = self.model.shadow()  # and one shadow challenger (or None), logged only
        policy = self.policy_for(model)
        first_seen: dict[str, Transaction] = {}
        for txn in transactions:
            first_seen.setdefault(txn.transaction_id, txn)
        pending = _Pending(self._group_by_customer(first_seen.values()))
        elsewhere: set[str] = set()
        indexed: dict[str, tuple] = {}  # transaction id -> what its id-index row holds (``index_view``)
        while pending.by_customer:
            customers = list(pending.by_customer)
            stored = dict(zip(customers, self._fanout.map(self.profiles.load, customers)))
            self._take_redeliveries(pending, stored)
            chunks = {c: pending.by_customer[c][:MAX_TXNS_PER_COMMIT] for c in customers if c in pending.by_customer}
            if not chunks:
                break
            records = self._score_chunk(model, shadow, policy, chunks, stored, source)
            taken = self._claim(records, indexed)
            if taken:  # rare: drop those transactions; their customers' chunks are scored again
                elsewhere |= taken
                pending.drop(taken)
                for customer in {first_seen[t].customer_id for t in taken}:
                    chunks.pop(customer, None)
            self._commit_chunk(pending, chunks, stored, records, started)
        decided = [pending.decided[t] for t in first_seen if t not in elsewhere]
        stale = [d.record for d in decided if not d.duplicate and indexed.get(d.record.transaction_id) != index_view(d.record)]
        if stale:  # a claim made before a retry re-scored it (or by a delivery that never committed)
            self.audit.update_index(stale)
        # written once: a redelivery creates only what a lost write left missing (unless this
        # process wrote it already)
        unwritten = [d.record for d in decided if not (d.duplicate and d.record.transaction_id in self._audited)]
        if unwritten:
            self.audit.write_decisions(unwritten)
            self._audited.add_all(r.transaction_id for r in unwritten)
        for outlet in self.outlets:
            outlet.record(decided)
        self._alert(decided)
        return self._assemble(transactions, pending.decided, elsewhere)

    def _take_redeliveries(self, pending: _Pending, stored: Mapping[str, StoredProfile]) -> None:
        """Transactions the loaded profile lists as applied: their stored decisions (point reads,
        in parallel), as duplicates; no commit, no claim."""
        known = {c: [t for t in pending.by_customer[c] if t.transaction_id in stored[c].recent]
                 for c in stored if stored[c].recent}
        known = {c: txns for c, txns in known.items() if txns}
        if not known:
            return

        def read(customer: str) -> dict[str, DecisionRecord]:
            txns = known[customer]
            return self.profiles.applied(customer, [t.transaction_id for t in txns], {t.transaction_id: t for t in txns})

        taken: set[str] = set()
        for customer, found in zip(known, self._fanout.map(read, list(known))):
            for txn_id, record in found.items():
                pending.decided[txn_id] = Delivery(record, duplicate=True)
                taken.add(txn_id)
        pending.drop(taken)  # one the row lists but not found (retention removed it) is scored anew

    def _claim(self, records: Mapping[str, list[DecisionRecord]], indexed: dict[str, tuple]) -> set[str]:
        """Claim the new ids in the id index; return those it gives to another customer."""
        new = [r for rs in records.values() for r in rs if r.transaction_id not in indexed]
        if not new:
            return set()
        found = self.audit.claim(new)
        taken = set()
        for record in new:
            where = found.get(record.transaction_id)
            if where is None:
                indexed[record.transaction_id] = index_view(record)
            elif where.customer_id != record.customer_id:
                taken.add(record.transaction_id)
            else:  # claimed for this customer before: by a delivery that committed it, or never did
                indexed[record.transaction_id] = where.view()
        return taken

    @staticmethod
    def _group_by_customer(transactions: Iterable[Transaction]) -> dict[str, list[Transaction]]:
        """Each customer's transactions in event-time order."""
        grouped: dict[str, list[Transaction]] = defaultdict(list)
        for txn in transactions:
            grouped[txn.customer_id].append(txn)
        for txns in grouped.values():
            txns.sort(key=lambda t: t.epoch_seconds)
        return dict(grouped)

    def _score_chunk(self, model: FraudModel, shadow: FraudModel | None, policy: DecisionPolicy,
                     chunks: Mapping[str, list[Transaction]], stored: Mapping[str, StoredProfile],
                     source: str) -> dict[str, list[DecisionRecord]]:
        """Features in event-time order per customer, one ONNX call for them all (and one for
        the shadow), then decide."""
        merchants = self.merchants
        if merchants is not None:
            merchant_ids = sorted({t.merchant_id for chunk in chunks.values() for t in chunk if t.merchant_id})
            self._fanout.map(lambda m: merchants.prefetch([m]), merchant_ids)
        rows, owners = [], []
        delay_days = model.merchant_label_delay_days
        for customer, chunk in chunks.items():
            profile = stored[customer].profile
            for txn in chunk:
                merchant_values = (merchants.values(txn.merchant_id, txn.epoch_seconds, delay_days)
                                   if merchants is not None else NO_MERCHANT)
                rows.append(features_then_record(profile, txn, merchant_values))
                owners.append(txn)
        features = as_matrix(rows)
        scores = model.predict(features)
        shadow_scores = self._shadow_scores(shadow, features)
        scored_at = self.clock()
        records: dict[str, list[DecisionRecord]] = defaultdict(list)
        for txn, vector, score, shadow_score in zip(owners, features, scores, shadow_scores):
            records[txn.customer_id].append(DecisionRecord(
                transaction=txn, fraud_score=round(float(score), 6), verdict=policy.decide(txn, float(score), vector),
                model_version=model.version, features=vector, scored_at=scored_at, source=source, shadow=shadow_score))
        return records

    @staticmethod
    def _shadow_scores(shadow: FraudModel | None, features: np.ndarray) -> list[ShadowScore | None]:
        """The shadow challenger's score of each row (one ONNX call on the same matrix), or
        None for every row: without a shadow, or when it fails (logged; the batch goes on)."""
        if shadow is None:
            return [None] * len(features)
        try:
            scores = np.asarray(shadow.predict(features), dtype=np.float64)
            if scores.shape != (len(features),) or not np.all(np.isfinite(scores)):
                raise ValueError(f"gave scores of shape {scores.shape} for {len(features)} rows, or non-finite ones")
        except Exception as exc:
            log.error("shadow model %s failed to score %d transactions (decisions unaffected): %s",
                      shadow.version, len(features), exc)
            return [None] * len(features)
        return [ShadowScore(shadow.version, round(float(s), 6)) for s in scores]

    def _commit_chunk(self, pending: _Pending, chunks: Mapping[str, list[Transaction]],
                      stored: Mapping[str, StoredProfile], records: Mapping[str, list[DecisionRecord]],
                      started: float) -> None:
        """Commit each customer's chunk; on a conflict, take what was already applied and retry the rest."""
        def commit(customer: str) -> tuple[str, list[DecisionRecord] | None]:
            latency_ms = (time.perf_counter() - started) * 1000
            timed = [r.with_latency(latency_ms) for r in records[customer]]
            try:
                self.profiles.commit(stored[customer], timed)
                return customer, timed
            except CommitConflict:
                return customer, None

        for customer, committed in self._fanout.map(commit, list(chunks)):
            left = pending.by_customer[customer]
            if committed is not None:
                for record in committed:
                    pending.decided[record.transaction_id] = Delivery(record)
                del left[:len(chunks[customer])]
            else:
                pending.conflicts[customer] += 1
                if pending.conflicts[customer] > self.max_conflicts:
                    # named by its transactions, not the customer id: the message reaches the logs (docs/DATA.md)
                    raise ScoringContention(f"a customer's profile kept changing over {self.max_conflicts} attempts "
                                            f"(transactions {', '.join(t.transaction_id for t in left[:5])})")
                already = self.profiles.applied(customer, [t.transaction_id for t in left],
                                                {t.transaction_id: t for t in left})
                for txn_id, record in already.items():
                    pending.decided[txn_id] = Delivery(record, duplicate=True)
                left[:] = [t for t in left if t.transaction_id not in already]
                if not already:  # a concurrent writer: back off a little, with jitter
                    time.sleep(random.uniform(0, 0.01 * min(pending.conflicts[customer], 10)))
            if not left:
                del pending.by_customer[customer]

    @staticmethod
    def _assemble(transactions: Sequence[Transaction], decided: Mapping[str, Delivery],
                  elsewhere: set[str]) -> list[Delivery]:
        """One delivery per input, in input order: a repeat within the batch is a duplicate, and a
        duplicate whose content differs from the transaction first scored is a conflict."""
        out = []
        seen: set[str] = set()
        for txn in transactions:
            if txn.transaction_id in elsewhere:
                out.append(Delivery(None, duplicate=True, conflict_fields=("customer_id",)))
                continue
            delivery = decided[txn.transaction_id]
            duplicate = delivery.duplicate or txn.transaction_id in seen
            differ = differing_fields(txn, delivery.record.transaction) if duplicate else ()
            out.append(Delivery(delivery.record, duplicate, differ))
            seen.add(txn.transaction_id)
        return out

    def _alert(self, decided: list[Delivery]) -> None:
        """Outbox: a High decision's row says 'pending' until its alert is on the queue."""
        for delivery in decided:
            record = delivery.record
            if not record.alert:
                continue
            if delivery.duplicate and not self.profiles.pending_alert(record.customer_id, record.transaction_id):
                continue
            self.alerts.send(record)
            self.profiles.mark_alert_sent(record.customer_id, record.transaction_id)
            if self.webhook is not None:
                self.webhook.post(record)
