"""In-memory fakes of the service ports (``shared/service/ports.py``).

Each fake passes the same contract suite (``tests/contracts.py``) as its Azure adapter,
so a service tested on fakes (``tests/unit/``) behaves as it does on Azurite. They keep
the adapters' semantics that matter to the services: the profile store's ETag condition
and create-only transaction rows, the audit log's write-once decisions and id index, the
dead-letter store's one letter per event.
"""
from __future__ import annotations

import itertools
import threading
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from shared.domain.dead_letter import DeadLetter
from shared.domain.decision_record import DecisionRecord, index_decision_fields, scored_elsewhere_fields
from shared.domain.monitoring_aggregate import LabelledDecision
from shared.domain.features import CustomerProfile
from shared.domain.labels import Label, append_to_history, current_fields, history_order
from shared.domain.merchant_risk import MerchantHistory
from shared.domain.model import ModelArtifact
from shared.domain.pseudonym import Pseudonyms
from shared.domain.retention import letter_day
from shared.service.merchant_risk_book import MerchantRiskBook
from shared.service.ports import (MAX_TXNS_PER_COMMIT, CommitConflict, CurrentPointer, ScoredElsewhere, StalePointer, StoredProfile,
                                  VersionExists)

# The tests' pseudonym key, in FRAUD_PSEUDONYM_KEY's text form (what a resolved Key Vault
# reference gives); tests/conftest.py sets it for every test.
TEST_PSEUDONYM_KEY = "test-pseudonym-key:not-a-secret-0123456789"
TEST_PSEUDONYMS = Pseudonyms(TEST_PSEUDONYM_KEY.encode())


class FakeProfiles:
    """Profiles with ETags: a commit names the ETag it read (None: no profile yet) and
    creates its transaction rows; any mismatch or existing row refuses the whole commit.
    Rows remember when they were written (``clock``, as the adapter's), for retention."""

    def __init__(self) -> None:
        self._profiles: dict[str, tuple[str, str]] = {}  # customer -> (state JSON, etag)
        self._recent: dict[str, tuple[str, ...]] = {}  # customer -> the profile row's recent ids
        self._rows: dict[str, dict[str, tuple[DecisionRecord, str]]] = {}  # customer -> txn id -> (record, alert state)
        self._updated: dict[str, datetime] = {}  # customer -> profile written at
        self._applied: dict[str, dict[str, datetime]] = {}  # customer -> txn id -> row written at
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self._etags = itertools.count(1)
        self._lock = threading.Lock()
        self.commits = 0

    def load(self, customer_id: str) -> StoredProfile:
        with self._lock:
            found = self._profiles.get(customer_id)
        if found is None:
            return StoredProfile(customer_id, CustomerProfile(), None)
        return StoredProfile(customer_id, CustomerProfile.from_json(found[0]), found[1], self._recent.get(customer_id, ()))

    def applied(self, customer_id: str, transaction_ids: Iterable[str],
                arriving: Any = None) -> dict[str, DecisionRecord]:  # the fake keeps device ids as they came
        with self._lock:
            rows = self._rows.get(customer_id, {})
            return {t: rows[t][0] for t in transaction_ids if t in rows}

    def commit(self, stored: StoredProfile, records: Sequence[DecisionRecord]) -> None:
        if not 0 < len(records) <= MAX_TXNS_PER_COMMIT:
            raise ValueError(f"a commit takes 1-{MAX_TXNS_PER_COMMIT} transactions, got {len(records)}")
        with self._lock:
            current = self._profiles.get(stored.customer_id)
            if (current[1] if current else None) != stored.etag:
                raise CommitConflict(f"profile of {stored.customer_id} changed since it was read")
            rows = self._rows.setdefault(stored.customer_id, {})
            if any(r.transaction_id in rows for r in records):
                raise CommitConflict("a transaction was already applied")
            now = self.clock()
            self._profiles[stored.customer_id] = (stored.profile.to_json(), f"W/\"{next(self._etags)}\"")
            self._recent[stored.customer_id] = stored.with_applied([r.transaction_id for r in records])
            self._updated[stored.customer_id] = now
            for record in records:
                rows[record.transaction_id] = (record, "pending" if record.alert else "none")
                self._applied.setdefault(stored.customer_id, {})[record.transaction_id] = now
            self.commits += 1

    def pending_alert(self, customer_id: str, transaction_id: str) -> bool:
        with self._lock:
            row = self._rows.get(customer_id, {}).get(transaction_id)
        return row is not None and row[1] == "pending"

    def mark_alert_sent(self, customer_id: str, transaction_id: str) -> None:
        with self._lock:
            record, _ = self._rows[customer_id][transaction_id]
            self._rows[customer_id][transaction_id] = (record, "sent")

    def recent_transactions(self, customer_id: str, limit: int = 20) -> list[DecisionRecord]:
        with self._lock:
            records = [r for r, _ in self._rows.get(customer_id, {}).values()]
        records.sort(key=lambda r: r.transaction.timestamp, reverse=True)
        return records[:limit]

    def partition_of(self, customer_id: str) -> str:
        """The fake keeps customers by their id (the adapter by their pseudonym)."""
        return customer_id

    def new_profile(self) -> CustomerProfile:
        return CustomerProfile()

    def backfill(self, customer_id: str, profile: CustomerProfile, overwrite: bool = False) -> bool:
        with self._lock:
            if customer_id in self._profiles and not overwrite:
                return False
            self._profiles[customer_id] = (profile.to_json(), f"W/\"{next(self._etags)}\"")
            self._recent.pop(customer_id, None)  # the adapter replaces the whole row
            self._updated[customer_id] = self.clock()
            return True

    # -- retention ---------------------------------------------------------------------------
    def expired_transactions(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            found = [(customer, f"txn:{txn_id}") for customer, rows in self._applied.items()
                     for txn_id, at in rows.items() if at < before]
        return found[:limit]

    def delete_transactions(self, keys: Sequence[tuple[str, str]]) -> int:
        deleted = 0
        with self._lock:
            for customer, row_key in dict.fromkeys(keys):
                txn_id = row_key[len("txn:"):]
                if txn_id in self._rows.get(customer, {}):
                    del self._rows[customer][txn_id]
                    del self._applied[customer][txn_id]
                    deleted += 1
        return deleted

    def inactive_profiles(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            found = [(customer, self._profiles[customer][1]) for customer, at in self._updated.items() if at < before]
        return found[:limit]

    def remove_profiles(self, profiles: Sequence[tuple[str, str]]) -> int:
        removed = 0
        with self._lock:
            for customer, etag in profiles:
                current = self._profiles.get(customer)
                if current is not None and current[1] == etag:
                    del self._profiles[customer]
                    self._recent.pop(customer, None)
                    del self._updated[customer]
                    removed += 1
        return removed

    def rows(self) -> dict[str, set[str]]:
        """customer -> the row keys of their partition (``profile`` and ``txn:<id>``), for tests."""
        with self._lock:
            customers = set(self._profiles) | {c for c, rows in self._rows.items() if rows}
            return {c: ({"profile"} if c in self._profiles else set()) | {f"txn:{t}" for t in self._rows.get(c, {})}
                    for c in customers}


class FakeAuditLog:
    """Decisions by transaction id, written once (an existing row or index entry is never
    touched by a write), with an id index that ``claim`` may write ahead of the decision;
    labels merge onto a row."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._index: dict[str, dict[str, Any]] = {}  # the id index: what ``locate`` finds
        self._lock = threading.Lock()

    @staticmethod
    def _index_entry(record: DecisionRecord) -> dict[str, Any]:
        event_time = record.transaction.timestamp.astimezone(timezone.utc)
        return {"customer_id": record.customer_id, "PartitionKey": event_time.strftime("%Y%m%d%H"),
                "event_time": event_time.isoformat(),
                "merchant_id": record.transaction.merchant_id or "", **index_decision_fields(record)}

    def _create_row(self, record: DecisionRecord) -> int:
        if record.transaction_id in self._rows:
            return 0
        fields = record.audit_fields()
        self._rows[record.transaction_id] = {**fields, "RowKey": record.transaction_id,
                                             "PartitionKey": fields["event_time"].strftime("%Y%m%d%H")}
        return 1

    def write(self, records: Iterable[DecisionRecord]) -> int:
        created = 0  # the rows and id index entries created, as the adapter counts
        with self._lock:
            for record in records:
                created += self._create_row(record)
                if record.transaction_id not in self._index:
                    self._index[record.transaction_id] = self._index_entry(record)
                    created += 1
        return created

    def write_decisions(self, records: Iterable[DecisionRecord]) -> int:
        with self._lock:
            return sum(self._create_row(record) for record in records)

    def claim(self, records: Sequence[DecisionRecord]) -> dict[str, ScoredElsewhere]:
        found: dict[str, ScoredElsewhere] = {}
        with self._lock:
            for record in records:
                entry = self._index.get(record.transaction_id)
                if entry is None:
                    self._index[record.transaction_id] = self._index_entry(record)
                elif record.transaction_id not in found:
                    found[record.transaction_id] = self._located(entry)
        return found

    def update_index(self, records: Sequence[DecisionRecord]) -> int:
        with self._lock:
            for record in records:
                self._index[record.transaction_id] = self._index_entry(record)
        return len(records)

    @staticmethod
    def _located(entry: dict[str, Any]) -> ScoredElsewhere:
        return ScoredElsewhere(entry["customer_id"], entry["PartitionKey"], **scored_elsewhere_fields(entry))

    def locate(self, transaction_ids: list[str]) -> dict[str, ScoredElsewhere]:
        with self._lock:
            return {t: self._located(self._index[t]) for t in dict.fromkeys(transaction_ids) if t in self._index}

    def read(self, start: datetime, end: datetime, select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        with self._lock:
            rows = [dict(r) for r in self._rows.values() if start <= r["event_time"] < end]
        for row in rows:
            yield {k: row[k] for k in select if k in row} if select else row

    def decisions(self, keys: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {t: dict(self._rows[t]) for pk, t in keys if t in self._rows and self._rows[t]["PartitionKey"] == pk}

    def scored(self, keys: list[tuple[str, str]]) -> set[str]:
        with self._lock:
            return {t for pk, t in keys if t in self._rows and self._rows[t]["PartitionKey"] == pk}

    def set_labels(self, labelled: list[tuple[str, str, dict[str, Any]]]) -> int:
        with self._lock:
            for _, txn_id, fields in labelled:
                self._rows.setdefault(txn_id, {}).update(fields)
        return len(labelled)

    # -- retention ---------------------------------------------------------------------------
    def expired_decisions(self, before_hour: str, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            found = sorted((r["PartitionKey"], t) for t, r in self._rows.items() if r["PartitionKey"] < before_hour)
        return found[:limit]

    def delete_index(self, transaction_ids: Sequence[str]) -> int:
        with self._lock:
            present = set(self._index) & set(transaction_ids)
            for txn_id in present:
                del self._index[txn_id]
        return len(present)

    def delete_decisions(self, keys: Sequence[tuple[str, str]]) -> int:
        deleted = 0
        with self._lock:
            for partition, txn_id in dict.fromkeys(keys):
                if txn_id in self._rows and self._rows[txn_id]["PartitionKey"] == partition:
                    del self._rows[txn_id]
                    deleted += 1
        return deleted

    def indexed(self) -> set[str]:
        with self._lock:
            return set(self._index)


class FakeAlertQueue:
    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, record: DecisionRecord) -> None:
        with self._lock:
            self._messages.append(record.alert_message())

    def count(self) -> int:
        return len(self._messages)

    def receive_all(self) -> list[dict[str, Any]]:
        with self._lock:
            out, self._messages = self._messages, []
        return out


class FakeDeadLetters:
    """One letter per event, named as the adapter names it (``DeadLetter.blob_name``)."""

    def __init__(self) -> None:
        self._letters: dict[str, dict[str, Any]] = {}

    def put(self, letter: DeadLetter, now: datetime | None = None) -> str:
        now = now or datetime.now(timezone.utc)
        name = letter.blob_name(now)
        self._letters[name] = letter.document(now)
        return name

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from list(self._letters.items())

    def list(self) -> Iterator[dict[str, Any]]:
        for _, document in self.items():
            yield document

    def delete(self, name: str) -> None:
        del self._letters[name]

    def expired_letters(self, before_day: date, limit: int) -> list[str]:
        return sorted(n for n in self._letters if (day := letter_day(n)) is not None and day < before_day)[:limit]

    def discard(self, names: Sequence[str]) -> int:
        present = [n for n in dict.fromkeys(names) if n in self._letters]
        for name in present:
            del self._letters[name]
        return len(present)


@dataclass
class FakeModel:
    """A model with the real one's surface (version, thresholds, merchant label delay, predict on float32 rows);
    its score is a fixed function of the features, so tests know what to expect."""

    version: str = "fake-v1"
    thresholds: dict[str, float] = field(default_factory=lambda: {"high": 0.8, "medium": 0.5, "alert": 0.7})
    score: Callable[[np.ndarray], np.ndarray] = lambda X: np.full(len(X), 0.1, dtype=np.float32)
    merchant_label_delay_days: float = 7.0
    calls: int = 0

    def predict(self, features: np.ndarray) -> np.ndarray:
        assert features.dtype == np.float32 and features.ndim == 2
        self.calls += 1
        return self.score(features)


@dataclass
class FakeModelSource:
    model: FakeModel = field(default_factory=FakeModel)
    shadow_model: FakeModel | None = None  # a challenger scored beside the champion, logged only

    def get(self) -> FakeModel:
        return self.model

    def shadow(self) -> FakeModel | None:
        return self.shadow_model


class FakeModelRegistry:
    """Immutable versions and two pointers (current, shadow) that move only from the pointer read."""

    def __init__(self) -> None:
        self._versions: dict[str, ModelArtifact] = {}
        self._pointers = {"current": CurrentPointer(None, None, {}), "shadow": CurrentPointer(None, None, {}),
                          "retrain-log": CurrentPointer(None, None, {})}
        self._releases: dict[str, dict[str, Any]] = {}
        self._etags = itertools.count(1)

    def publish(self, artifact: ModelArtifact) -> str:
        if "/" in artifact.version or not artifact.version:
            raise ValueError(f"bad model version {artifact.version!r}")
        if artifact.version in self._versions:
            raise VersionExists(f"model version {artifact.version} is already published")
        self._versions[artifact.version] = artifact
        return artifact.version

    def load(self, version: str) -> ModelArtifact:
        return self._versions[version]

    def manifest(self, version: str) -> dict[str, Any]:
        return json.loads(json.dumps(self._versions[version].manifest))

    def list_versions(self) -> list[str]:
        return sorted(self._versions)

    def _move(self, name: str, document: dict[str, Any], expected: CurrentPointer) -> CurrentPointer:
        version = document.get("version")
        if version is not None and version not in self._versions:
            raise ValueError(f"model version {version} is not published")
        if expected.etag != self._pointers[name].etag:
            raise StalePointer(f"the model pointer {name} moved since it was read (expected {expected.version})")
        self._pointers[name] = CurrentPointer(version, f"\"{next(self._etags)}\"", document)
        return self._pointers[name]

    def current(self) -> CurrentPointer:
        return self._pointers["current"]

    def set_current(self, version: str, expected: CurrentPointer, **details: Any) -> CurrentPointer:
        return self._move("current", {"version": version, "updated_at": datetime.now(timezone.utc).isoformat(),
                                      "previous": expected.version, **details}, expected)

    def shadow(self) -> CurrentPointer:
        return self._pointers["shadow"]

    def set_shadow(self, version: str | None, expected: CurrentPointer | None = None, **details: Any) -> CurrentPointer:
        expected = self.shadow() if expected is None else expected
        return self._move("shadow", {"version": version, "set_at": datetime.now(timezone.utc).isoformat(),
                                     "previous": expected.version, **details}, expected)

    def clear_shadow(self, expected: CurrentPointer | None = None, **details: Any) -> CurrentPointer:
        return self.set_shadow(None, expected, **details)

    def release(self, version: str) -> dict[str, Any] | None:
        found = self._releases.get(version)
        return None if found is None else json.loads(json.dumps(found))

    def put_release(self, version: str, document: dict[str, Any]) -> None:
        if version not in self._versions:
            raise ValueError(f"model version {version} is not published")
        if version in self._releases:
            raise VersionExists(f"model version {version} is signed already")
        self._releases[version] = json.loads(json.dumps(document))

    def retrain_log(self) -> CurrentPointer:
        return self._pointers["retrain-log"]

    def set_retrain_log(self, document: dict[str, Any], expected: CurrentPointer) -> CurrentPointer:
        return self._move("retrain-log", dict(document), expected)


class FakeLabelStore:
    """Label histories (append-only, keyed by content) and current labels with their join status,
    label files read, compromised customers."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}  # current labels by transaction id
        self._history: dict[str, dict[str, dict[str, Any]]] = {}  # transaction id -> content key -> entry
        self._files: set[tuple[str, str]] = set()
        self._compromised: dict[str, str] = {}

    def history(self, transaction_id: str) -> list[dict[str, Any]]:
        return sorted((dict(e) for e in self._history.get(transaction_id, {}).values()), key=history_order)

    def put(self, labels: Iterable[Label], now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or datetime.now(timezone.utc)
        groups: dict[str, list[Label]] = {}
        for label in labels:
            groups.setdefault(label.transaction_id, []).append(label)
        result = []
        for txn_id, group in groups.items():
            history = self.history(txn_id)
            added = append_to_history(history, group, now)
            for entry in added:
                self._history.setdefault(txn_id, {}).setdefault(entry["key"], dict(entry))
            fields = current_fields(history + added)
            projection = self._rows.get(txn_id)
            if projection is not None and projection.get("current_key") == fields["current_key"]:
                projection.update(history=fields["history"], received_at=fields["received_at"])
            else:
                self._rows[txn_id] = {"PartitionKey": "lbl", "RowKey": txn_id, **fields, "status": "pending"}
            result.append(dict(self._rows[txn_id]))
        return result

    def awaiting(self) -> Iterator[dict[str, Any]]:
        yield from [dict(r) for r in self._rows.values() if r.get("status") != "joined"]

    def mark(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        for _, txn_id, fields in rows:
            self._rows.setdefault(txn_id, {"PartitionKey": "lbl", "RowKey": txn_id}).update(fields)

    def get(self, transaction_id: str) -> dict[str, Any] | None:
        row = self._rows.get(transaction_id)
        return dict(row) if row is not None else None

    def file_seen(self, name: str, etag: str) -> bool:
        return (name, etag) in self._files

    def record_file(self, name: str, etag: str, labels: int, rejected: list[dict[str, Any]]) -> None:
        self._files.add((name, etag))

    def mark_compromised(self, customer_id: str, since: datetime) -> None:
        since_text = since.astimezone(timezone.utc).isoformat()
        if self._compromised.get(customer_id, "9999") > since_text:
            self._compromised[customer_id] = since_text

    def compromised_since(self, customer_id: str) -> str | None:
        return self._compromised.get(customer_id)

    def expired_labels(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        keys = [("lbh", f"{t}~{k}") for t, entries in self._history.items() for k, e in entries.items()
                if e["received_at"] < before]
        keys += [(r["PartitionKey"], t) for t, r in self._rows.items()
                 if r.get("received_at") is not None and r["received_at"] < before]
        return sorted(keys)[:limit]

    def delete_labels(self, keys: Sequence[tuple[str, str]]) -> int:
        deleted = 0
        for partition, row_key in dict.fromkeys(keys):
            if partition == "lbh":
                txn_id, _, key = row_key.partition("~")
                deleted += self._history.get(txn_id, {}).pop(key, None) is not None
            elif self._rows.pop(row_key, None) is not None:
                deleted += 1
        return deleted


class FakeMerchantRiskStore(MerchantRiskBook):
    """Merchant histories in memory; the updates are the table adapter's (``MerchantRiskBook``)."""

    def __init__(self) -> None:
        self.histories: dict[str, MerchantHistory] = {}
        self.as_of: dict[str, float] = {}
        self.counted: float | None = None

    def counted_as_of(self) -> float | None:
        return self.counted

    def save_counted_as_of(self, as_of: float) -> None:
        self.counted = float(as_of)

    def load(self, merchant_id: str) -> tuple[MerchantHistory, float | None]:
        history = self.histories.get(merchant_id)
        if history is None:
            return MerchantHistory(), None
        return MerchantHistory.from_properties(history.to_properties()), self.as_of.get(merchant_id)

    def save(self, histories: dict[str, MerchantHistory], as_of: float | None) -> int:
        for merchant_id, history in histories.items():
            self.histories[merchant_id] = MerchantHistory.from_properties(history.to_properties())
            if as_of is not None:
                self.as_of[merchant_id] = float(as_of)
        return len(histories)


class FakeLabelFiles:
    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})

    def new_files(self) -> list[tuple[str, str]]:
        return [(name, str(hash(content))) for name, content in sorted(self.files.items())]

    def read(self, name: str) -> bytes:
        return self.files[name]


class FakeReports:
    """Monitoring reports and retrain requests, with the cooldown the blob adapter keeps."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._last_request: datetime | None = None

    def write_report(self, report: dict[str, Any], at: datetime) -> str:
        self.reports.append(json.loads(json.dumps(report, default=str)))
        return f"monitoring/{at:%Y-%m-%d}/{at:%H%M%S}.json"

    def latest(self) -> dict[str, Any] | None:
        return self.reports[-1] if self.reports else None

    def request_retrain(self, request: dict[str, Any], at: datetime, cooldown: timedelta) -> str | None:
        if self._last_request is not None and at - self._last_request < cooldown:
            return None
        self._last_request = at
        self.requests.append(request)
        return f"retrain-requests/requests/{at:%Y%m%dT%H%M%S}.json"


class FakeMonitoringAggregates:
    """Hour documents by (hour, row key), replaced whole; labelled decisions by transaction id."""

    def __init__(self) -> None:
        self.documents: dict[tuple[int, str], dict[str, Any]] = {}
        self.labelled: dict[str, LabelledDecision] = {}
        self._lock = threading.Lock()

    def put(self, hour: int, row_key: str, document: dict[str, Any]) -> None:
        with self._lock:
            self.documents[(hour, row_key)] = json.loads(json.dumps(document))  # stored, not shared

    def read(self, first_hour: int, end_hour: int) -> Iterator[dict[str, Any]]:
        with self._lock:
            found = [d for (hour, _), d in sorted(self.documents.items()) if first_hour <= hour < end_hour]
        yield from (json.loads(json.dumps(d)) for d in found)

    def put_labelled(self, rows: Sequence[LabelledDecision]) -> None:
        with self._lock:
            self.labelled.update({r.transaction_id: r for r in rows})

    def read_labelled(self, first_hour: int, end_hour: int) -> Iterator[LabelledDecision]:
        with self._lock:
            found = [r for r in self.labelled.values() if first_hour <= r.hour < end_hour]
        yield from found

class FakeHourlyRows:
    """A table partitioned by UTC hour (``YYYYMMDDHH``), as the monitoring aggregates are."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, partition: str, row: str, **fields: Any) -> None:
        self.rows[(partition, row)] = dict(fields)

    def expired_hours(self, before_hour: str, limit: int) -> list[tuple[str, str]]:
        def hour(partition: str) -> str | None:
            key = partition[1:] if partition.startswith("L") else partition
            return key if len(key) == 10 and key.isdigit() else None

        return sorted(k for k in self.rows if hour(k[0]) is not None and hour(k[0]) < before_hour)[:limit]

    def delete_rows(self, keys: Sequence[tuple[str, str]]) -> int:
        present = [k for k in dict.fromkeys(keys) if k in self.rows]
        for key in present:
            del self.rows[key]
        return len(present)


class FakeTrainingSample:
    """The training sample's hourly streams in memory: per (stream, UTC hour), the appended
    blocks in order (one block per ``append`` per hour, as the adapter's one append per blob)."""

    def __init__(self) -> None:
        self.blocks: dict[tuple[str, datetime], list[bytes]] = {}
        self.appends = 0
        self.fail_next = False  # the next append raises, as a storage outage would
        self._lock = threading.Lock()

    def append(self, stream: str, lines_by_hour) -> int:
        with self._lock:
            if self.fail_next:
                self.fail_next = False
                raise OSError("storage unavailable")
            for hour, lines in lines_by_hour.items():
                key = (stream, hour.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0))
                self.blocks.setdefault(key, []).append("".join(f"{line}\n" for line in lines).encode())
                self.appends += 1
            return len(lines_by_hour)

    def hours(self, stream: str, start: datetime, end: datetime) -> list[datetime]:
        first = start.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
        with self._lock:
            return sorted(h for s, h in self.blocks if s == stream and first <= h < end)

    def lines(self, stream: str, hour: datetime) -> Iterator[bytes]:
        with self._lock:
            blocks = list(self.blocks.get((stream, hour), []))
        for block in blocks:
            yield from block.splitlines()

    def all_lines(self, stream: str) -> list[bytes]:
        with self._lock:
            return [line for (s, _), blocks in sorted(self.blocks.items()) if s == stream
                    for block in blocks for line in block.splitlines()]


class FakeDecisionStaging:
    """``DecisionStagingPort`` in memory: append blobs as byte strings (one block per append)."""

    def __init__(self, max_blocks: int = 50_000) -> None:
        self.data: dict[str, bytearray] = {}
        self.blocks: dict[str, int] = {}
        self.appends = 0
        self.max_blocks = max_blocks
        self.fail_next: Exception | None = None
        self._lock = threading.Lock()

    def append(self, name: str, data: bytes, create: bool) -> None:
        from shared.service.ports import MAX_APPEND_BYTES, StagingBlobFull

        with self._lock:
            if self.fail_next is not None:
                exc, self.fail_next = self.fail_next, None
                raise exc
            if create:
                self.data.setdefault(name, bytearray())
                self.blocks.setdefault(name, 0)
            if name not in self.data:
                raise KeyError(f"append blob {name} does not exist")
            if len(data) > MAX_APPEND_BYTES:
                raise ValueError(f"an append of {len(data)} bytes is over 4 MiB")
            if self.blocks[name] >= self.max_blocks:
                raise StagingBlobFull(name)
            self.data[name] += data
            self.blocks[name] += 1
            self.appends += 1

    def staged_hours(self) -> list[datetime]:
        from shared.domain.decision_archive import parse_hour_dir

        return sorted({parse_hour_dir(name) for name in self.data})

    def blobs(self, hour: datetime):
        from shared.domain.decision_archive import hour_dir
        from shared.service.ports import StagedBlob

        prefix = hour_dir(hour) + "/"
        return sorted((StagedBlob(n, len(b), f"etag-{len(b)}") for n, b in self.data.items() if n.startswith(prefix)),
                      key=lambda b: b.name)

    def read(self, name: str, start: int, end: int, chunk: int = 1000) -> Iterator[bytes]:
        data = bytes(self.data[name][start:end])
        for offset in range(0, len(data), chunk):  # small chunks: lines cross chunk ends
            yield data[offset:offset + chunk]


class FakeDecisionArchive:
    """``DecisionArchivePort`` in memory: files created once, never overwritten."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def manifests(self, hour: datetime) -> list[dict[str, Any]]:
        from shared.domain.decision_archive import manifest_name

        prefix = manifest_name(hour, 0).rsplit("/", 1)[0] + "/"
        return [json.loads(self.files[n]) for n in sorted(self.files) if n.startswith(prefix)]

    def write_manifest(self, hour: datetime, part: int, manifest: dict[str, Any]) -> None:
        from shared.domain.decision_archive import manifest_name

        self._create(manifest_name(hour, part), json.dumps(manifest).encode())

    def _create(self, name: str, data: bytes) -> None:
        from shared.service.ports import ArchiveFileExists

        if name in self.files:
            raise ArchiveFileExists(name)
        self.files[name] = data

    def part_exists(self, hour: datetime, part: int) -> bool:
        from shared.domain.decision_archive import part_name

        return part_name(hour, part) in self.files

    def create_part(self, hour: datetime, part: int):
        import contextlib
        import io

        from shared.domain.decision_archive import part_name
        from shared.service.ports import ArchiveFileExists

        name = part_name(hour, part)
        if name in self.files:
            raise ArchiveFileExists(name)

        @contextlib.contextmanager
        def stream():
            buffer = io.BytesIO()
            buffer.close = lambda: None  # a writer closing its sink does not lose the bytes
            yield buffer
            self._create(name, buffer.getvalue())

        return stream()

    def open_part(self, hour: datetime, part: int):
        import io

        from shared.domain.decision_archive import part_name

        return io.BytesIO(self.files[part_name(hour, part)])

    def parquet_names(self) -> list[str]:
        return sorted(n for n in self.files if n.endswith(".parquet"))
