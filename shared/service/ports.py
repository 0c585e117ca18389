"""The ports the services depend on: small Protocols, and the exceptions they raise.

Adapters in ``shared/adapters/`` implement them on Azure Storage; ``tests/fakes.py`` holds
in-memory fakes. One contract suite (``tests/contracts/``) runs against both, so a service
tested on the fakes behaves the same on Azure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol, Sequence

from shared.domain.dead_letter import DeadLetter
from shared.domain.decision_record import DecisionRecord
from shared.domain.features import CustomerProfile
from shared.domain.model import FraudModel


class CommitConflict(Exception):
    """The profile changed, or a transaction was already applied, since the profile was read."""


@dataclass
class StoredProfile:
    customer_id: str
    profile: CustomerProfile
    etag: str | None  # None: no profile row yet


@dataclass(frozen=True)
class ScoredElsewhere:
    """Where an already-scored transaction id lives (the audit log's id index)."""

    customer_id: str
    audit_pk: str
    event_time: str | None = None
    merchant_id: str = ""


class ProfilePort(Protocol):
    """Customer profiles and their applied transactions, committed exactly once."""

    def load(self, customer_id: str) -> StoredProfile: ...

    def applied(self, customer_id: str, transaction_ids: Iterable[str]) -> dict[str, DecisionRecord]:
        """The decisions of those transactions already applied to the customer's profile."""

    def commit(self, stored: StoredProfile, records: Sequence[DecisionRecord]) -> None:
        """The updated profile and the new transactions' decisions, atomically; at most 99.
        Raises ``CommitConflict`` when the profile changed or a transaction was applied since ``load``."""

    def pending_alert(self, customer_id: str, transaction_id: str) -> bool: ...

    def mark_alert_sent(self, customer_id: str, transaction_id: str) -> None: ...

    def recent_transactions(self, customer_id: str, limit: int = 20) -> list[DecisionRecord]: ...


class AuditPort(Protocol):
    """Every decision, for analysts, monitoring and retraining; writes are idempotent upserts."""

    def write(self, records: Iterable[DecisionRecord]) -> int: ...

    def locate(self, transaction_ids: list[str]) -> dict[str, ScoredElsewhere]: ...


class AlertPort(Protocol):
    def send(self, record: DecisionRecord) -> None: ...


class WebhookPort(Protocol):
    def post(self, record: DecisionRecord) -> Any: ...


class DeadLetterPort(Protocol):
    def put(self, letter: DeadLetter) -> str: ...

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]: ...

    def delete(self, name: str) -> None: ...


class ModelPort(Protocol):
    def get(self) -> FraudModel: ...


class MerchantRiskPort(Protocol):
    """Merchant risk values at a transaction's time (a read cache over the timer's table)."""

    def prefetch(self, merchant_ids: Iterable[str]) -> None: ...

    def values(self, merchant_id: str | None, t: float) -> Sequence[float]: ...
