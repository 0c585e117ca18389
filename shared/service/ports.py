"""The ports the services depend on: small Protocols, and the exceptions they raise.

Adapters in ``shared/adapters/`` implement them on Azure Storage; ``tests/fakes.py`` holds
in-memory fakes. One contract suite (``tests/contracts/``) runs against both, so a service
tested on the fakes behaves the same on Azure.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO, ContextManager, Iterable, Iterator, Mapping, Protocol, Sequence

from shared.domain.dead_letter import DeadLetter
from shared.domain.decision_record import DecisionRecord, Delivery
from shared.domain.features import CustomerProfile
from shared.domain.labels import Label
from shared.domain.model import FraudModel, ModelArtifact
from shared.domain.monitoring_aggregate import LabelledDecision
from shared.domain.transaction import Transaction


class StalePointer(Exception):
    """A registry pointer (current or shadow model) moved since it was read."""


class VersionExists(Exception):
    """A model version is published once; its files never change."""


@dataclass(frozen=True)
class CurrentPointer:
    """A registry pointer as read: the current (champion) or the shadow model's."""

    version: str | None
    etag: str | None  # None: no pointer yet
    document: dict[str, Any]


class BadSignature(Exception):
    """A signature that the release key did not make (or over other bytes)."""


class ReleaseSigner(Protocol):
    """Signs releases (models, rules) with the release key: a Key Vault key in Azure (the release
    identity and admins may sign), a local PEM key file for ``make run`` and tests."""

    @property
    def key_id(self) -> str:
        """The key that signs, as recorded in the statement (Key Vault: the key's versioned id)."""

    def sign(self, payload: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 signature of ``payload``, raw ``r || s`` (64 bytes)."""

    def signed_in(self) -> str | None:
        """Who is signing, when the key's side knows it (the ``az login`` user; locally the OS user)."""


class ReleaseVerifier(Protocol):
    """Checks release signatures with the release key's public half only (the scoring identity
    may read it, never sign)."""

    def verify(self, payload: bytes, signature: bytes, key_id: str) -> None:
        """Raise ``BadSignature`` unless the release key (``key_id`` naming it) signed ``payload``."""


MAX_TXNS_PER_COMMIT = 99  # an entity-group transaction holds 100 operations: the profile row and 99 transactions


class CommitConflict(Exception):
    """The profile changed, or a transaction was already applied, since the profile was read."""


RECENT_IDS_KEPT = 32  # transaction ids a profile row remembers as applied (newest last)


@dataclass
class StoredProfile:
    customer_id: str
    profile: CustomerProfile
    etag: str | None  # None: no profile row yet
    # The last RECENT_IDS_KEPT transaction ids applied to this profile, oldest first, as the row
    # read says: an id here was applied (a redelivery needs no commit to find out); an id not
    # here may still have been (older), which the commit's create-only rows settle.
    recent: tuple[str, ...] = ()

    def with_applied(self, transaction_ids: Sequence[str]) -> tuple[str, ...]:
        """``recent`` after applying ``transaction_ids`` (what the commit stores)."""
        return (tuple(t for t in self.recent if t not in transaction_ids) + tuple(transaction_ids))[-RECENT_IDS_KEPT:]


@dataclass(frozen=True)
class ScoredElsewhere:
    """Where an already-scored transaction id lives (the audit log's id index)."""

    customer_id: str
    audit_pk: str
    event_time: str | None = None
    merchant_id: str = ""
    fraud_score: float | None = None  # None: indexed before the index carried the decision
    model_version: str = ""
    shadow_version: str = ""
    shadow_score: float | None = None

    def view(self) -> tuple:
        """Comparable with ``index_view(record)`` of the decision it indexes."""
        return (self.customer_id, self.event_time, self.merchant_id, self.fraud_score, self.model_version,
                self.shadow_version, self.shadow_score)


class ProfilePort(Protocol):
    """Customer profiles and their applied transactions, committed exactly once."""

    def load(self, customer_id: str) -> StoredProfile: ...

    def applied(self, customer_id: str, transaction_ids: Iterable[str],
                arriving: Mapping[str, Transaction] | None = None) -> dict[str, DecisionRecord]:
        """The decisions of those transactions already applied to the customer's profile (point
        reads: one per id). A store may keep a decision's device id as its keyed pseudonym:
        given the ``arriving`` transactions (by id), it puts back the arriving device id where
        its pseudonym is the stored one, so a true redelivery compares equal field by field."""

    def commit(self, stored: StoredProfile, records: Sequence[DecisionRecord]) -> None:
        """The updated profile (its ``recent`` ids extended by the records') and the new
        transactions' decisions, atomically; at most 99. Raises ``CommitConflict`` when the
        profile changed or a transaction was applied since ``load``."""

    def pending_alert(self, customer_id: str, transaction_id: str) -> bool: ...

    def mark_alert_sent(self, customer_id: str, transaction_id: str) -> None: ...

    def recent_transactions(self, customer_id: str, limit: int = 20) -> list[DecisionRecord]: ...


class AuditPort(Protocol):
    """Every decision, for analysts, monitoring and retraining; a decision is written once
    (a second write of the same transaction id changes nothing stored)."""

    def write(self, records: Iterable[DecisionRecord]) -> int:
        """Create the decisions' rows and id-index rows that do not exist yet."""

    def claim(self, records: Sequence[DecisionRecord]) -> dict[str, ScoredElsewhere]:
        """Create the id-index rows of ``records`` that do not exist yet; return the existing
        ones (by transaction id): an id claimed before, perhaps for another customer."""

    def write_decisions(self, records: Iterable[DecisionRecord]) -> int:
        """Create the decision rows that do not exist yet (``claim`` wrote the index rows)."""

    def update_index(self, records: Sequence[DecisionRecord]) -> int:
        """Rewrite the id-index rows of ``records`` (claimed by this caller) with these decisions."""

    def locate(self, transaction_ids: list[str]) -> dict[str, ScoredElsewhere]: ...


class DecisionOutletPort(Protocol):
    """Where a scored batch's decisions go besides the audit log: the monitoring aggregates,
    the open decision archive, the training sample.

    Called once per scoring call, after the audit write and before alerts, with every
    delivery of the call (``Delivery.duplicate`` marks a transaction applied by an earlier
    delivery: its record is the stored one). So an outlet sees each decision at least once:
    an outlet that must count once skips duplicates (and may lose what a crash between the
    profile commit and this call did not pass); one that must keep everything keeps
    duplicates too and drops repeats by transaction id when it reads. An outlet that raises
    fails the call, which the caller retries (Event Hub) or reports (HTTP): nothing is lost.
    """

    def record(self, deliveries: Sequence[Delivery]) -> None: ...


class TrainingSampleStorePort(Protocol):
    """The training sample's append-only hourly streams: ``rows`` (sampled decisions and
    labelled frauds) and ``labels`` (every joined verdict), by the decisions' event hour."""

    def append(self, stream: str, lines_by_hour: Mapping[datetime, Sequence[str]]) -> int:
        """Append each hour's lines (one storage append per blob touched); raises on failure.
        Returns the storage appends made."""

    def hours(self, stream: str, start: datetime, end: datetime) -> list[datetime]:
        """The UTC hours in [start, end) with lines in ``stream``, oldest first."""

    def lines(self, stream: str, hour: datetime) -> Iterator[bytes]:
        """One hour's lines of ``stream``, streamed (never a whole blob in memory)."""


class AuditRowPort(Protocol):
    """Point reads of decisions of the audit log (the label join knows their partitions)."""

    def decisions(self, keys: Sequence[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        """(audit partition key, transaction id) pairs -> transaction id -> its audit row, for those found."""


class AlertPort(Protocol):
    def send(self, record: DecisionRecord) -> None: ...


class WebhookPort(Protocol):
    def post(self, record: DecisionRecord) -> Any: ...


class DeadLetterPort(Protocol):
    def put(self, letter: DeadLetter) -> str: ...

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]: ...

    def delete(self, name: str) -> None: ...


class ModelPort(Protocol):
    def get(self) -> FraudModel:
        """The champion: its scores decide."""

    def shadow(self) -> FraudModel | None:
        """The shadow challenger scored beside the champion, logged only (None: no shadow)."""


class MerchantRiskPort(Protocol):
    """Merchant risk values at a transaction's time (a read cache over the timer's table)."""

    def prefetch(self, merchant_ids: Iterable[str]) -> None: ...

    def values(self, merchant_id: str | None, t: float, delay_days: float) -> Sequence[float]: ...


class ModelRegistryPort(Protocol):
    """Published model versions (immutable) and two ETag-guarded pointers: ``current`` (the
    champion, which decides) and ``shadow`` (a challenger scored beside it, logged only)."""

    def publish(self, artifact: ModelArtifact) -> str: ...

    def load(self, version: str) -> ModelArtifact: ...

    def manifest(self, version: str) -> dict[str, Any]: ...

    def list_versions(self) -> list[str]: ...

    def current(self) -> CurrentPointer: ...

    def set_current(self, version: str, expected: CurrentPointer, **details: Any) -> CurrentPointer:
        """Raises ``StalePointer`` if the pointer is no longer ``expected``; ValueError for an unpublished version."""

    def shadow(self) -> CurrentPointer:
        """The shadow pointer; version None when no shadow is set."""

    def set_shadow(self, version: str | None, expected: CurrentPointer | None = None, **details: Any) -> CurrentPointer:
        """Point the shadow at a published version (None clears it) if the pointer is still ``expected``
        (default: as read now). Raises ``StalePointer`` / ValueError as ``set_current``."""

    def clear_shadow(self, expected: CurrentPointer | None = None, **details: Any) -> CurrentPointer: ...

    def release(self, version: str) -> dict[str, Any] | None:
        """A version's signed release envelope (``<version>/release.json``); None when unsigned."""

    def put_release(self, version: str, document: dict[str, Any]) -> None:
        """Store a published version's release, once; ``VersionExists`` when it is signed already,
        ValueError for an unpublished version."""

    def retrain_log(self) -> CurrentPointer:
        """The retrain log (last start, skipped triggers) as read with its ETag (version unused)."""

    def set_retrain_log(self, document: dict[str, Any], expected: CurrentPointer) -> CurrentPointer:
        """Write the retrain log if it is still ``expected``; ``StalePointer`` otherwise."""


class LabelPort(Protocol):
    """Labels as an append-only history per transaction with the current label derived (and its
    join status), label files read, compromised customers."""

    def put(self, labels: Iterable[Label], now: datetime | None = None) -> list[dict[str, Any]]:
        """Append to the histories (an exact redelivery or a repeat of the current label adds
        nothing); the current label row of every transaction named (status pending unless it
        stands joined)."""

    def history(self, transaction_id: str) -> list[dict[str, Any]]:
        """Every label received for the transaction, oldest first: the last is the current one."""

    def awaiting(self) -> Iterator[dict[str, Any]]: ...

    def mark(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None: ...

    def get(self, transaction_id: str) -> dict[str, Any] | None: ...

    def file_seen(self, name: str, etag: str) -> bool: ...

    def record_file(self, name: str, etag: str, labels: int, rejected: list[dict[str, Any]]) -> None: ...

    def mark_compromised(self, customer_id: str, since: datetime) -> None: ...

    def compromised_since(self, customer_id: str) -> str | None: ...


class AuditReadPort(Protocol):
    """What monitoring needs of the audit log besides writing."""

    def read(self, start: datetime, end: datetime, select: list[str] | None = None) -> Iterator[dict[str, Any]]: ...

    def locate(self, transaction_ids: list[str]) -> dict[str, ScoredElsewhere]: ...

    def scored(self, keys: list[tuple[str, str]]) -> set[str]:
        """Which of the (audit partition key, transaction id) have a decision row (an id-index
        row alone is a claim whose commit may not have happened)."""

    def set_labels(self, labelled: list[tuple[str, str, dict[str, Any]]]) -> int: ...


class MerchantRiskStorePort(Protocol):
    """The timer's per-merchant risk table."""

    def add_frauds(self, frauds: Iterable[tuple[str, str, float, float]]) -> int: ...

    def refresh_counts(self, hourly: dict[str, dict[int, list[int]]], first_hour: int, as_of: float) -> int: ...


class LabelFilesPort(Protocol):
    def new_files(self) -> list[tuple[str, str]]: ...  # (name, etag)

    def read(self, name: str) -> bytes: ...


class MonitoringAggregatePort(Protocol):
    """The scoring processes' hourly aggregates and the labelled decisions, for the monitor.

    Aggregate rows: partition = the event hour, one row per process and generation, replaced
    at each flush with the process's running totals (writers never share a row). Labelled
    decisions: one row per transaction id, upserted by the label join (idempotent)."""

    def put(self, hour: int, row_key: str, document: dict[str, Any]) -> None: ...

    def read(self, first_hour: int, end_hour: int) -> Iterator[dict[str, Any]]:
        """The documents of the hours in ``[first_hour, end_hour)``."""

    def put_labelled(self, rows: Sequence[LabelledDecision]) -> None: ...

    def read_labelled(self, first_hour: int, end_hour: int) -> Iterator[LabelledDecision]: ...


class ReportsPort(Protocol):
    def write_report(self, report: dict[str, Any], at: datetime) -> str: ...

    def request_retrain(self, request: dict[str, Any], at: datetime, cooldown: timedelta) -> str | None: ...


# -- retention (issue #15): what each store gives up once past its retention ------------------
# A store lists the keys of what lies before a cut-off (keys only, at most ``limit``) and
# deletes by key. Deleting is idempotent: a key already gone is skipped, not an error, and
# is not counted. ``TableKey`` is (PartitionKey, RowKey).
TableKey = tuple[str, str]


class AuditRetentionPort(Protocol):
    """The audit log's decision rows by hour, and their id index."""

    def expired_decisions(self, before_hour: str, limit: int) -> list[TableKey]:
        """Keys of decision rows in UTC hours before ``before_hour`` (``YYYYMMDDHH``); the RowKey
        is the transaction id."""

    def delete_index(self, transaction_ids: Sequence[str]) -> int:
        """Remove the id-index entries of those transactions (before their rows: a crash in
        between leaves the rows, which the next run finds again)."""

    def delete_decisions(self, keys: Sequence[TableKey]) -> int: ...


class LabelRetentionPort(Protocol):
    def expired_labels(self, before: datetime, limit: int) -> list[TableKey]:
        """Keys of label rows received before ``before``: history entries, and current labels
        (joined or not) whose latest entry was."""

    def delete_labels(self, keys: Sequence[TableKey]) -> int: ...


class DeadLetterRetentionPort(Protocol):
    def expired_letters(self, before_day: date, limit: int) -> list[str]:
        """Names of dead letters filed under days before ``before_day``."""

    def discard(self, names: Sequence[str]) -> int: ...


class ProfileRetentionPort(Protocol):
    """One profile store (of possibly several accounts): applied-transaction rows and profiles."""

    def expired_transactions(self, before: datetime, limit: int) -> list[TableKey]:
        """Keys (customer id, ``txn:`` row key) of transaction rows applied before ``before``."""

    def delete_transactions(self, keys: Sequence[TableKey]) -> int: ...

    def inactive_profiles(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """(customer id, ETag) of profiles last updated before ``before``."""

    def remove_profiles(self, profiles: Sequence[tuple[str, str]]) -> int:
        """Delete each profile row if its ETag is unchanged: a customer who came back since
        the listing keeps theirs. Returns the number removed."""


class HourlyRowsRetentionPort(Protocol):
    """A table partitioned by UTC hour (``YYYYMMDDHH``): the monitoring aggregates."""

    def expired_hours(self, before_hour: str, limit: int) -> list[TableKey]: ...

    def delete_rows(self, keys: Sequence[TableKey]) -> int: ...


# -- the open decision archive ------------------------------------------------------------
MAX_APPEND_BYTES = 4 * 1024 * 1024  # an append blob's block: at most 4 MiB
MAX_APPEND_BLOCKS = 50_000  # an append blob holds at most 50,000 blocks


class StagingBlobFull(Exception):
    """An append blob holds its last block (or its size limit): the writer rolls to its next blob."""


class ArchiveFileExists(Exception):
    """An archive file (part or manifest) is written once: the container is immutable in Azure."""


@dataclass(frozen=True)
class StagedBlob:
    """A staging append blob as listed: its committed length ends on a line (appends are whole lines)."""

    name: str
    length: int
    etag: str


class DecisionStagingPort(Protocol):
    """The scoring processes' hourly append blobs of decision lines (``decision_archive``)."""

    def append(self, name: str, data: bytes, create: bool) -> None:
        """Append ``data`` (whole lines, at most ``MAX_APPEND_BYTES``) to the append blob ``name`` in
        one call; with ``create`` the blob is created first when missing (never emptied when it
        exists). Raises ``StagingBlobFull`` when the blob can take no more blocks."""

    def staged_hours(self) -> list[datetime]:
        """The hours (UTC) that have staging blobs, oldest first."""

    def blobs(self, hour: datetime) -> list[StagedBlob]:
        """The hour's staging blobs, by name."""

    def read(self, name: str, start: int, end: int) -> Iterator[bytes]:
        """The bytes [start, end) of a staging blob, in chunks (ranged reads)."""


class DecisionArchivePort(Protocol):
    """The archive container: Parquet parts and the manifests that say what each part compacted.
    Every file is created once and never rewritten."""

    def manifests(self, hour: datetime) -> list[dict[str, Any]]:
        """The hour's manifests, in part order."""

    def write_manifest(self, hour: datetime, part: int, manifest: dict[str, Any]) -> None:
        """Raises ``ArchiveFileExists`` when the hour's manifest ``part`` exists."""

    def part_exists(self, hour: datetime, part: int) -> bool: ...

    def create_part(self, hour: datetime, part: int) -> ContextManager[BinaryIO]:
        """A writable stream of the part file, uploaded as it is written and created when the block
        closes without an error (an error leaves no file). Raises ``ArchiveFileExists``."""

    def open_part(self, hour: datetime, part: int) -> BinaryIO:
        """The part file for reading, seekable (ranged reads: a reader takes only the columns it needs)."""
