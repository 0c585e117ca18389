"""The bounded training sample, pure: which decisions it keeps, the form of its rows and
labels, and the weight a kept row carries.

A decision is kept when the stable hash of its transaction id (``sample_hash``: blake2b, not
Python's per-process ``hash``) is below the sampling rate in force (``included``), so every
process, every redelivery and every later reader agree on it without coordination. A
decision later labelled fraud is kept whatever its hash (the label join appends it with
inclusion 1.0), so the sample holds every labelled fraud of its window.

Rows carry what training needs without the audit log: the transaction and customer ids,
the event time, the feature vector exactly as served (``pack_features``: base64 of its
float32 bytes), the score and the model version; and the sampling that applies, so training
re-weights and calibration stays right:

* ``inclusion``: the probability this row was written with: the rate for a hash-sampled
  row, 1.0 for one kept because it was labelled fraud;
* ``rate``: the hash rate in force when it was written (what applies to a legitimate
  outcome whatever the reason the row was written: a row forced in by a fraud label that
  was later corrected to legitimate is, as legitimate, only a hash sample).

``row_weight`` is the rule: a fraud row weighs 1 / the fraud keep rate of the reader (1
unless the reader had to thin frauds too), every other row 1 / (its hash rate x the
reader's further keep rate), i.e. 1 / min(rate, legitimate threshold) since the reader
thins with the same hash.

Labels travel in a separate small stream per event hour (``SampleLabel``): every joined
verdict, fraud or legitimate, so a reader knows each sampled row's outcome.

Both are JSON lines; ``to_line`` / ``from_line`` round-trip exactly (floats in Python's
shortest repr, features as their bytes).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np

from shared.domain import json_text
from shared.domain.decision_record import DecisionRecord, pack_features, unpack_features

_HASH_PERSON = b"fraud-sample"  # a personalised hash: independent of the audit shard's
_HASH_SCALE = float(2 ** 64)


def sample_hash(transaction_id: str) -> float:
    """A uniform number in [0, 1) fixed by the transaction id alone (same in every process)."""
    digest = hashlib.blake2b(transaction_id.encode("utf-8"), digest_size=8, person=_HASH_PERSON).digest()
    return int.from_bytes(digest, "big") / _HASH_SCALE


def included(transaction_id: str, rate: float) -> bool:
    """Is this decision in the hash sample at ``rate``? (rate 1: all, 0: none)."""
    return sample_hash(transaction_id) < rate


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a decision's event time falls in (its sample blobs' hour)."""
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, eq=False)
class SampleRow:
    """One decision of the training sample (see the module docstring)."""

    transaction_id: str
    customer_id: str
    event_time: datetime  # UTC
    features: np.ndarray  # float32, as served
    fraud_score: float
    model_version: str
    inclusion: float  # the rate for a hash-sampled row, 1.0 for one kept because labelled fraud
    rate: float  # the hash rate in force when it was written

    @classmethod
    def of(cls, record: DecisionRecord, rate: float, inclusion: float | None = None) -> "SampleRow":
        return cls(record.transaction_id, record.customer_id, record.transaction.timestamp.astimezone(timezone.utc),
                   record.features, float(record.fraud_score), record.model_version,
                   rate if inclusion is None else inclusion, rate)

    @classmethod
    def from_audit(cls, entity: Mapping[str, Any], rate: float) -> "SampleRow":
        """An audit row (fields of ``DecisionRecord.audit_fields``) kept because it was labelled fraud."""
        event_time = entity["event_time"]
        if isinstance(event_time, str):
            event_time = datetime.fromisoformat(event_time)
        return cls(entity.get("transaction_id") or entity["RowKey"], entity.get("customer_id") or "",
                   event_time.astimezone(timezone.utc), unpack_features(entity["features"]),
                   float(entity.get("fraud_score") or 0.0), entity.get("model_version") or "", 1.0, rate)

    @property
    def hour(self) -> datetime:
        return hour_of(self.event_time)

    def to_line(self) -> str:
        return json_text.dumps({"transaction_id": self.transaction_id, "customer_id": self.customer_id,
                           "event_time": self.event_time.isoformat(), "features": pack_features(self.features),
                           "fraud_score": self.fraud_score, "model_version": self.model_version,
                           "inclusion": self.inclusion, "rate": self.rate})

    @classmethod
    def from_line(cls, line: str | bytes) -> "SampleRow":
        d = json_text.loads(line)
        return cls(d["transaction_id"], d["customer_id"], datetime.fromisoformat(d["event_time"]),
                   unpack_features(d["features"]), float(d["fraud_score"]), d["model_version"],
                   float(d["inclusion"]), float(d["rate"]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleRow):
            return NotImplemented
        return self.to_line() == other.to_line()


@dataclass(frozen=True)
class SampleLabel:
    """A joined verdict on a decision, in the labels stream of the decision's event hour."""

    transaction_id: str
    label: int  # 1 fraud, 0 legitimate
    labelled_at: str  # ISO 8601, or "" when the label arrived without one

    def to_line(self) -> str:
        return json.dumps({"transaction_id": self.transaction_id, "label": int(self.label),
                           "labelled_at": self.labelled_at}, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str | bytes) -> "SampleLabel":
        d = json.loads(line)
        return cls(d["transaction_id"], int(d["label"]), d.get("labelled_at") or "")


def latest_labels(labels: "list[SampleLabel] | Any") -> dict[str, int]:
    """transaction id -> its verdict, the latest ``labelled_at`` winning (a correction), ties
    to the later line."""
    best: dict[str, tuple[str, int]] = {}
    for item in labels:
        seen = best.get(item.transaction_id)
        if seen is None or item.labelled_at >= seen[0]:
            best[item.transaction_id] = (item.labelled_at, item.label)
    return {txn: label for txn, (_, label) in best.items()}


def row_weight(fraud: bool, rate: float, legitimate_threshold: float = 1.0, fraud_threshold: float = 1.0) -> float:
    """A kept row's sample weight: 1 / the probability a row like it is in what the reader kept.

    Every labelled fraud is in the sample, so a fraud row is kept with the reader's fraud
    threshold (1 unless frauds alone overflowed it); a legitimate or unlabelled row is in the
    sample with its hash ``rate`` and the reader keeps it when its hash is also below its
    legitimate threshold: probability min(rate, threshold)."""
    if fraud:
        return 1.0 / fraud_threshold
    keep = min(rate, legitimate_threshold)
    if keep <= 0:
        raise ValueError("a kept legitimate row cannot have a keep probability of 0")
    return 1.0 / keep
