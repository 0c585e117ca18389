"""The retrain's reader of the training sample: bounded memory whatever the traffic.

``read_sample`` streams the hourly blobs of the lookback (``TrainingSampleStorePort``),
hour by hour and line by line, into a ``BoundedSample`` of at most ``capacity`` rows (the
retrain's ``FRAUD_RETRAIN_MAX_ROWS``), so memory is the cap's whatever the volume:

* each hour's labels stream is read first (small): a row's outcome is its latest verdict,
  or legitimate when it has none once matured (as the audit-log retrain did);
* repeats of a transaction id within the hour (redeliveries, a re-run label join) are
  dropped: a decision's rows all lie in its event hour;
* when the buffer is full, a hash threshold tightens: legitimate rows are kept while their
  ``sample_hash`` is below ``legitimate_threshold`` (halved, and the rows above it dropped),
  so the kept rows stay a uniform sample, deterministic for given blobs. Every labelled
  fraud is kept, unless frauds alone fill more than half the buffer: then frauds are thinned
  the same way with their own threshold (the only way to bound memory at any volume; the
  summary says when it happened);
* a row whose hash is above its current threshold is dropped before its JSON is parsed
  (the id is read from the line's fixed prefix), so a 10x volume costs mostly the download.

Each kept row's weight is ``shared.domain.training_sample.row_weight``: a fraud 1 / the
fraud threshold (1 unless frauds were thinned), any other row 1 / min(its hash rate, the
legitimate threshold). The rows go out as a ``TrainingSet`` in time order with those weights.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Iterable

import numpy as np

from shared.domain.features import FEATURE_NAMES
from shared.domain.training_sample import SampleLabel, SampleRow, latest_labels, row_weight, sample_hash
from training.train import TrainingSet

ID_PREFIX = b'{"transaction_id":"'


def line_transaction_id(line: bytes) -> str | None:
    """The transaction id of a sample line from its fixed prefix, without parsing the JSON
    (None when the line does not start so or the id holds an escape: parse it then)."""
    if not line.startswith(ID_PREFIX):
        return None
    end = line.find(b'"', len(ID_PREFIX))
    raw = line[len(ID_PREFIX):end]
    if end < 0 or b"\\" in raw:
        return None
    return raw.decode("utf-8")


class BoundedSample:
    """At most ``capacity`` rows, thinned by hash thresholds (see the module docstring)."""

    def __init__(self, capacity: int, n_features: int = len(FEATURE_NAMES)) -> None:
        if capacity < 2:
            raise ValueError("a bounded sample needs room for at least 2 rows")
        self.capacity = capacity
        self.X = np.zeros((capacity, n_features), dtype=np.float32)
        self.times = np.zeros(capacity)
        self.y = np.zeros(capacity, dtype=np.int8)
        self.hashes = np.zeros(capacity)
        self.rates = np.zeros(capacity)
        self.customers = np.empty(capacity, dtype=object)
        self.size = 0
        self.legitimate_threshold = 1.0
        self.fraud_threshold = 1.0
        self.tightened = 0
        self.dropped_by_tightening = 0

    def admits(self, fraud: bool, hash_value: float, rate: float = 1.0) -> bool:
        if fraud:
            return hash_value < self.fraud_threshold
        return hash_value < min(rate, self.legitimate_threshold)

    def add(self, x: np.ndarray, time: float, fraud: bool, hash_value: float, rate: float, customer: str) -> bool:
        """Keep this row if its hash is below its threshold (tightening first when full)."""
        if not self.admits(fraud, hash_value, rate):
            return False
        if self.size == self.capacity:
            self._tighten()
            if not self.admits(fraud, hash_value, rate):
                return False
        i = self.size
        self.X[i], self.times[i], self.y[i] = x, time, 1 if fraud else 0
        self.hashes[i], self.rates[i], self.customers[i] = hash_value, rate, customer
        self.size += 1
        return True

    def _tighten(self) -> None:
        """Halve a threshold and drop the rows above it until there is room."""
        while self.size >= self.capacity:
            n = self.size
            fraud = self.y[:n] == 1
            if fraud.sum() * 2 > n:
                self.fraud_threshold /= 2
            else:
                self.legitimate_threshold = min(self.legitimate_threshold, float(self.rates[:n][~fraud].max())) / 2
            keep = np.where(fraud, self.hashes[:n] < self.fraud_threshold,
                            self.hashes[:n] < np.minimum(self.rates[:n], self.legitimate_threshold))
            kept = np.flatnonzero(keep)
            for array in (self.X, self.times, self.y, self.hashes, self.rates, self.customers):
                array[:kept.size] = array[kept]
            self.customers[kept.size:n] = None
            self.size = int(kept.size)
            self.tightened += 1
            self.dropped_by_tightening += n - self.size

    def weights(self) -> np.ndarray:
        n = self.size
        return np.array([row_weight(bool(f), r, self.legitimate_threshold, self.fraud_threshold)
                         for f, r in zip(self.y[:n], self.rates[:n])], dtype=np.float64)

    def training_set(self) -> TrainingSet:
        """The kept rows in time order, with their weights."""
        n = self.size
        order = np.argsort(self.times[:n], kind="mergesort")
        return TrainingSet(self.X[:n][order], self.y[:n][order].copy(), self.times[:n][order],
                           np.full(n, "", dtype=object), self.customers[:n][order], weights=self.weights()[order])

    def summary(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "rows": self.size, "fraud": int(self.y[:self.size].sum()),
                "legitimate_threshold": self.legitimate_threshold, "fraud_threshold": self.fraud_threshold,
                "frauds_thinned": self.fraud_threshold < 1.0, "tightened": self.tightened,
                "dropped_by_tightening": self.dropped_by_tightening}


def _labels_of(lines: Iterable[bytes]) -> dict[str, int]:
    return latest_labels(SampleLabel.from_line(line) for line in lines if line.strip())


def read_sample(store: Any, start: datetime, matured_before: datetime, capacity: int,
                n_features: int = len(FEATURE_NAMES)) -> tuple[TrainingSet, dict[str, Any]]:
    """The sample's rows with event time in [start, matured_before), bounded and weighted (see
    the module docstring), and what was read, kept and left out."""
    buffer = BoundedSample(capacity, n_features)
    counts: Counter = Counter()
    end = matured_before + timedelta(hours=1)  # the hour matured_before falls in, filtered by row
    hours = store.hours("rows", start, end)
    for hour in hours:
        labels = _labels_of(store.lines("labels", hour))
        seen: set[str] = set()
        for line in store.lines("rows", hour):
            if not line.strip():
                continue
            counts["lines"] += 1
            txn_id = line_transaction_id(line)
            row = None
            if txn_id is None:
                row = SampleRow.from_line(line)
                txn_id = row.transaction_id
            if txn_id in seen:
                counts["duplicates_dropped"] += 1
                continue
            label = labels.get(txn_id)
            fraud = label == 1
            hash_value = sample_hash(txn_id)
            if not buffer.admits(fraud, hash_value):  # below every rate it could carry: cheap skip
                counts["thinned"] += 1
                continue
            row = row or SampleRow.from_line(line)
            if not (start <= row.event_time < matured_before):
                counts["outside_window" if row.event_time < start else "fresh_left_out"] += 1
                continue
            if row.features.size != n_features:
                counts["other_feature_schema_left_out"] += 1
                continue
            seen.add(txn_id)
            if buffer.add(row.features, row.event_time.timestamp(), fraud, hash_value, row.rate, row.customer_id):
                counts["labelled_fraud" if fraud else "labelled_legitimate" if label == 0
                       else "matured_unlabelled_as_legitimate"] += 1
            else:
                counts["thinned"] += 1
    data = buffer.training_set()
    kept = Counter({"fraud": int(data.y.sum()), "legitimate": int(data.y.size - data.y.sum())})
    return data, {**counts, "hours": len(hours), "kept": dict(kept), "buffer": buffer.summary(),
                  "weighted_rows": float(data.weights.sum()) if data.weights is not None else 0.0,
                  "matured_before": matured_before.isoformat()}
