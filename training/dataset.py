"""Reading labelled transactions from CSV into the canonical schema (training side).

Any CSV with the canonical columns works: the generator's, or a bank's own export
(``column_map`` renames columns; optional columns may be absent). Rows that fail the
schema are counted and skipped, never silently coerced.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from shared.domain.merchant_risk import MerchantRiskReplay, label_known_at
from shared.domain.transaction import Transaction, parse_timestamp, validate_transaction

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)
NUMERIC = ("transaction_amount",)


@dataclass
class LabelledTransactions:
    transactions: list[Transaction]
    labels: np.ndarray  # int8, 1 = fraud
    scenarios: list[str]
    rejected: Counter = field(default_factory=Counter)
    labelled_at: list[float | None] = field(default_factory=list)  # epoch seconds, when the bank says
    incidents: list[str] = field(default_factory=list)  # the simulator's fraud_incident ("" when absent)

    def __len__(self) -> int:
        return len(self.transactions)

    @property
    def times(self) -> np.ndarray:
        return np.fromiter((t.epoch_seconds for t in self.transactions), dtype=np.float64, count=len(self))


def _coerce(row: Mapping[str, str]) -> dict:
    out: dict = {k: (v if v != "" else None) for k, v in row.items() if k}
    for key in NUMERIC:
        value = out.get(key)
        if value is not None:
            try:
                out[key] = float(value)
            except ValueError:
                pass  # left as text: validation reports it
    return out


def parse_label(value: str | None) -> int | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("1", "true", "fraud", "yes", "1.0"):
        return 1
    if text in ("0", "false", "legit", "legitimate", "no", "0.0"):
        return 0
    return None


def with_offset(text: str | None, offset: str | None) -> str | None:
    """``text`` with ``offset`` appended when it is an ISO timestamp written without one."""
    if not text or not offset:
        return text
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return text  # validation reports it
    return text.strip() + offset if parsed.tzinfo is None else text


def read_labelled_csv(
    path: str | Path, column_map: Mapping[str, str] | None = None, label_column: str = "is_fraud",
    assume_offset: str | None = None, now: datetime | None = None, oldest: datetime | None = None,
) -> LabelledTransactions:
    """Rows in event-time order. ``assume_offset`` (e.g. "+00:00") is given to timestamps
    written without a UTC offset; without it such rows are rejected on ``timestamp``. With
    ``now`` (a retrain's time), rows dated more than 5 minutes after it are rejected on
    ``timestamp``: whoever drops a file must not pick the newest rows, hence the holdout. With
    ``oldest`` (the retrain's time less FRAUD_TRAINING_MAX_AGE_DAYS), rows dated before it are
    rejected on ``timestamp_too_old``."""
    column_map = dict(column_map or {})
    transactions: list[Transaction] = []
    labels: list[int] = []
    scenarios: list[str] = []
    labelled: list[float | None] = []
    incidents: list[str] = []
    rejected: Counter = Counter()
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        for raw in reader:
            row = {column_map.get(k, k): v for k, v in raw.items()}
            if "transaction_id" not in row:  # a plain export without ids: the line number is one
                row["transaction_id"] = f"line{reader.line_num}"
            label = parse_label(row.pop(label_column, None))
            scenario = row.pop("fraud_scenario", None) or ""
            labelled_text = with_offset(row.pop("labelled_at", None), assume_offset)
            incident = row.pop("fraud_incident", None) or ""
            if assume_offset and "timestamp" in row:
                row["timestamp"] = with_offset(row["timestamp"], assume_offset)
            try:
                labelled_at = parse_timestamp(labelled_text).timestamp() if labelled_text else None
            except ValueError:
                rejected["labelled_at"] += 1
                continue
            outcome = validate_transaction(_coerce(row), now=now or FAR_FUTURE)
            if not outcome.ok:
                rejected[outcome.errors[0].field] += 1
                continue
            if label is None:
                rejected[label_column] += 1
                continue
            if oldest is not None and outcome.transaction.epoch_seconds < oldest.timestamp():
                rejected["timestamp_too_old"] += 1
                continue
            transactions.append(outcome.transaction)
            labels.append(label)
            scenarios.append(scenario)
            labelled.append(labelled_at)
            incidents.append(incident)
    order = sorted(range(len(transactions)), key=lambda i: (transactions[i].epoch_seconds, i))
    return LabelledTransactions(
        [transactions[i] for i in order],
        np.asarray([labels[i] for i in order], dtype=np.int8),
        [scenarios[i] for i in order],
        rejected,
        [labelled[i] for i in order],
        [incidents[i] for i in order],
    )


def parse_column_map(pairs: Iterable[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"--map takes old=new, got {pair!r}")
        mapping[old] = new
    return mapping


def merchant_risk_replay(data: LabelledTransactions, delay_days: float) -> MerchantRiskReplay:
    """Merchant risk as serving would have known it: fraud labels known at labelled_at or
    at event time + delay."""
    frauds: dict[str, list[tuple[str, float, float]]] = {}
    for txn, label, labelled_at in zip(data.transactions, data.labels, data.labelled_at):
        if label == 1 and txn.merchant_id:
            t = txn.epoch_seconds
            frauds.setdefault(txn.merchant_id, []).append((txn.transaction_id, t, label_known_at(t, labelled_at, delay_days)))
    return MerchantRiskReplay(frauds, delay_days)
