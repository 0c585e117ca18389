"""What the monitor needs of an hour of decisions, as counts a scoring process keeps as it goes.

The monitoring timer used to re-read every decision of its windows from the audit log (173
million rows a run at 1,000 tx/s). Instead each scoring process adds each decision it makes
to an ``HourAggregate`` of its event hour (per model version and shadow version) and writes
it every minute; the timer adds the hour rows of its windows up. A run costs O(hours x bins x
processes), whatever the traffic.

An aggregate holds, for its decisions:

- rows, counts by risk level and by action, a latency histogram;
- each feature's counts in the serving reference's bins and the rows' calendar strata (the
  drift check's sufficient statistics: ``DriftAccumulator`` over them gives the same report
  as over the rows themselves);
- the champion's (and the shadow's) scores in fine bins: ``FINE_BINS`` equal bins of [0, 1]
  plus the model's own thresholds as extra edges, right-closed like every score histogram
  here, with each bin's count and score sum; and the top ``TOP_KEPT`` customers and
  transactions by score (for card precision@k and top-k precision per day);
- each merchant's visit stats of the hour (what the merchant-risk refresh recounts).

Label-based figures come from these plus the labelled decisions (few: frauds and analysts'
verdicts), each with its exact score. Unlabelled decisions count as legitimate after
maturity, so a bin's unlabelled rows enter the metrics as one weighted row at their mean
score (``binned_outcomes``). The figures are then exact for counts at the thresholds,
precision, recall, F1, calibration (ECE), card precision@k and top-k precision; ROC AUC and
average precision are exact up to the order of a labelled decision and unlabelled ones in
the same 1/1000-wide bin.

Pure: no I/O. ``shared/adapters/aggregate_table.py`` stores the documents.
"""
from __future__ import annotations

import base64
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from shared.domain.drift import CALENDAR_STRATA, DriftAccumulator, ReferenceHistogram, SCORE_BINS, bin_counts, calendar_strata
from shared.domain.features import N_FEATURES, feature_index, merchant_visit
from shared.domain.merchant_risk import HOUR, tally_visit
from shared.domain.metrics import (average_precision, card_precision_at_k_per_day, expected_calibration_error,
                                   recall_at_fpr, roc_auc, threshold_report, top_k_precision_per_day)
from shared.domain.model import DEFAULT_THRESHOLDS

FINE_BINS = 1000
TOP_KEPT = 50  # customers and transactions kept per aggregate by score: card precision@k is exact for k (plus the
# customers excluded as already compromised) <= this; the monitor and the gate use k = 20
LATENCY_EDGES_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 30000.0)
_HOUR_OF_DAY = feature_index("hour_of_day")
_WEEKEND = feature_index("is_weekend")


def hour_of(moment: datetime) -> int:
    """The UTC hour index (epoch seconds // 3600) of an instant."""
    return int(moment.timestamp() // HOUR)


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * HOUR, timezone.utc)


def fine_edges(thresholds: Iterable[float]) -> np.ndarray:
    """The fine score bins' edges: 0, 1/1000, ..., 1 and the model's thresholds in (0, 1)."""
    return _fine_edges(tuple(sorted(float(t) for t in thresholds if t is not None and 0.0 < float(t) < 1.0)))


@lru_cache(maxsize=64)
def _fine_edges(extra: tuple[float, ...]) -> np.ndarray:
    edges = np.unique(np.r_[np.linspace(0.0, 1.0, FINE_BINS + 1), extra])
    edges.flags.writeable = False  # shared by every ScoreBins of these thresholds
    return edges


def _pack(array: np.ndarray, dtype: str) -> str:
    """A dense array as base64 of its little-endian bytes: the same size and decoding cost
    however many bins are used, so reading a window costs the same at any traffic."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unpack(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


@dataclass(frozen=True)
class ServingReference:
    """What a model's manifest says its decisions should look like: the drift reference, the
    thresholds, the expected alert rate."""

    version: str | None
    feature_names: tuple[str, ...]
    features: dict[str, ReferenceHistogram]
    train_rows: int
    score: ReferenceHistogram | None
    thresholds: dict[str, float]
    alert_rate: float | None

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any] | None) -> "ServingReference":
        if not manifest:
            return cls(None, (), {}, 0, None, dict(DEFAULT_THRESHOLDS), None)
        names = tuple(manifest["feature_names"])
        reference = manifest.get("reference", {})
        stored = reference.get("features", {})
        return cls(
            version=manifest.get("version"),
            feature_names=names,
            features={n: ReferenceHistogram.from_dict(stored[n]) for n in names if n in stored},
            train_rows=int(reference.get("rows") or manifest.get("rows", {}).get("train", 0)),
            score=ReferenceHistogram.from_dict(reference["score"]) if "score" in reference else None,
            thresholds=dict(manifest.get("thresholds", {})),
            alert_rate=reference.get("alert_rate"),
        )


# -- one model's scores over the fine bins ------------------------------------------------
@dataclass
class ScoreBins:
    """Counts and score sums per fine bin (``(e[i-1], e[i]]``, edges from ``fine_edges``), and
    the highest-scored customers (their highest score) and transactions."""

    thresholds: tuple[float, ...] = ()
    counts: np.ndarray | None = None
    sums: np.ndarray | None = None
    top_cards: dict[str, float] = field(default_factory=dict)
    top_txns: dict[str, tuple[float, str]] = field(default_factory=dict)  # transaction id -> (score, customer)
    cards_dropped: bool = False  # customers beyond the top TOP_KEPT were dropped

    def __post_init__(self) -> None:
        self.thresholds = tuple(sorted(float(t) for t in self.thresholds if t is not None and 0.0 < float(t) < 1.0))
        self.edges = fine_edges(self.thresholds)
        if self.counts is None:
            self.counts = np.zeros(self.edges.size + 1, dtype=np.int64)
            self.sums = np.zeros(self.edges.size + 1, dtype=np.float64)

    def index(self, scores: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, np.asarray(scores, dtype=np.float64), side="left")

    def above(self, threshold: float) -> int:
        """Decisions scored above ``threshold`` (exact when it is one of the edges)."""
        return int(self.counts[int(np.searchsorted(self.edges, threshold, side="left")) + 1:].sum())

    def add(self, scores: np.ndarray, customers: Sequence[str], transaction_ids: Sequence[str]) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        idx = self.index(scores)
        self.counts += np.bincount(idx, minlength=self.counts.size)
        self.sums += np.bincount(idx, weights=scores, minlength=self.sums.size)
        for score, customer, txn_id in zip(scores.tolist(), customers, transaction_ids):
            if score > self.top_cards.get(customer, -1.0):
                self.top_cards[customer] = score
            self.top_txns[txn_id] = (score, customer)
        self._trim()

    def _trim(self, slack: int = TOP_KEPT) -> None:
        if len(self.top_cards) > TOP_KEPT + slack:
            self.top_cards = dict(sorted(self.top_cards.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_KEPT])
            self.cards_dropped = True
        if len(self.top_txns) > TOP_KEPT + slack:
            self.top_txns = dict(sorted(self.top_txns.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP_KEPT])

    def copy(self) -> "ScoreBins":
        return ScoreBins(self.thresholds, self.counts.copy(), self.sums.copy(), dict(self.top_cards),
                         dict(self.top_txns), self.cards_dropped)

    def merge(self, other: "ScoreBins") -> None:
        if other.thresholds != self.thresholds:
            raise ValueError("score bins with different edges cannot be added up")
        self.counts += other.counts
        self.sums += other.sums
        for customer, score in other.top_cards.items():
            if score > self.top_cards.get(customer, -1.0):
                self.top_cards[customer] = score
        self.top_txns.update(other.top_txns)
        self.cards_dropped = self.cards_dropped or other.cards_dropped
        self._trim()

    def to_dict(self) -> dict[str, Any]:
        self._trim(slack=0)
        return {"thresholds": list(self.thresholds), "counts": _pack(self.counts, "<i8"),
                "sums": _pack(self.sums, "<f8"), "cards_dropped": self.cards_dropped,
                "top_cards": [[c, s] for c, s in self.top_cards.items()],
                "top_txns": [[t, s, c] for t, (s, c) in self.top_txns.items()]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ScoreBins":
        bins = cls(tuple(d["thresholds"]), _unpack(d["counts"], "<i8"), _unpack(d["sums"], "<f8"))
        bins.top_cards = {c: float(s) for c, s in d["top_cards"]}
        bins.top_txns = {t: (float(s), c) for t, s, c in d["top_txns"]}
        bins.cards_dropped = bool(d.get("cards_dropped"))
        return bins


# -- an hour of one model version's decisions -------------------------------------------------
AggregateKey = tuple[int, str, str]  # (hour, model version, shadow version or "")


@dataclass
class HourAggregate:
    """An event hour's decisions by one model version (and one shadow version, or none)."""

    hour: int
    version: str
    shadow_version: str
    champion: ScoreBins
    shadow: ScoreBins | None = None
    rows: int = 0
    risk_levels: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    latency: np.ndarray = field(default_factory=lambda: np.zeros(len(LATENCY_EDGES_MS) + 1, dtype=np.int64))
    strata: np.ndarray = field(default_factory=lambda: np.zeros(CALENDAR_STRATA, dtype=np.int64))
    features: dict[str, np.ndarray] = field(default_factory=dict)  # counts in the reference's bins
    score_reference: np.ndarray | None = None  # counts in the reference's score bins
    merchants: dict[str, list[int]] = field(default_factory=dict)  # merchant -> the hour's visit stats

    @property
    def key(self) -> AggregateKey:
        return self.hour, self.version, self.shadow_version

    @classmethod
    def start(cls, hour: int, reference: ServingReference, version: str, shadow_version: str,
              shadow_thresholds: Mapping[str, float] | None) -> "HourAggregate":
        own = reference.version == version
        thresholds = reference.thresholds.values() if own else ()
        return cls(hour, version, shadow_version, ScoreBins(tuple(thresholds)),
                   ScoreBins(tuple((shadow_thresholds or {}).values())) if shadow_version else None,
                   features={n: np.zeros(len(h.proportions), dtype=np.int64) for n, h in reference.features.items()} if own else {},
                   score_reference=(np.zeros(len(reference.score.proportions), dtype=np.int64)
                                    if own and reference.score is not None else None))

    def add(self, rows: Sequence[Mapping[str, Any]], reference: ServingReference) -> None:
        """Add decisions (``decision_row`` dicts) made by this aggregate's model in its hour;
        ``reference`` is that model's (its bins are what the features are counted in)."""
        if not rows:
            return
        self.rows += len(rows)
        scores = np.fromiter((r["fraud_score"] for r in rows), dtype=np.float64, count=len(rows))
        customers = [r["customer_id"] for r in rows]
        txn_ids = [r["transaction_id"] for r in rows]
        self.champion.add(scores, customers, txn_ids)
        if self.shadow is not None:
            self.shadow.add(np.fromiter((r["shadow_score"] for r in rows), dtype=np.float64, count=len(rows)),
                            customers, txn_ids)
        for r in rows:
            self.risk_levels[r["risk_level"]] += 1
            self.actions[r["action"]] += 1
        self.latency += bin_counts(np.fromiter((r["latency_ms"] for r in rows), dtype=np.float64, count=len(rows)),
                                   LATENCY_EDGES_MS)
        vectors = [r["features"] for r in rows if r["features"] is not None and len(r["features"]) == N_FEATURES]
        if not vectors:
            return
        matrix = np.stack(vectors).astype(np.float32, copy=False)
        for r, vector in zip((r for r in rows if r["features"] is not None and len(r["features"]) == N_FEATURES), matrix):
            if r.get("merchant_id"):  # tally_visit adds to the stats list in place
                stats = self.merchants.setdefault(r["merchant_id"], [0, 0, 0, 0])
                tally_visit({self.hour: stats}, self.hour * HOUR, merchant_visit(vector))
        if self.features and tuple(reference.feature_names) and len(reference.feature_names) == matrix.shape[1]:
            strata = calendar_strata(matrix[:, _HOUR_OF_DAY], matrix[:, _WEEKEND])
            self.strata += np.bincount(np.asarray(strata, dtype=np.int64), minlength=CALENDAR_STRATA)
            for i, name in enumerate(reference.feature_names):
                if name in self.features:
                    self.features[name] += bin_counts(matrix[:, i], reference.features[name].edges)
            if self.score_reference is not None and reference.score is not None:
                mine = np.fromiter((r["fraud_score"] for r in rows if r["features"] is not None
                                    and len(r["features"]) == N_FEATURES), dtype=np.float64, count=len(vectors))
                self.score_reference += bin_counts(mine, reference.score.edges)

    def copy(self) -> "HourAggregate":
        return HourAggregate(self.hour, self.version, self.shadow_version, self.champion.copy(),
                             None if self.shadow is None else self.shadow.copy(), self.rows, Counter(self.risk_levels),
                             Counter(self.actions), self.latency.copy(), self.strata.copy(),
                             {n: c.copy() for n, c in self.features.items()},
                             None if self.score_reference is None else self.score_reference.copy(),
                             {m: list(v) for m, v in self.merchants.items()})

    def merge(self, other: "HourAggregate") -> None:
        if other.key != self.key:
            raise ValueError(f"cannot add aggregate {other.key} to {self.key}")
        self.rows += other.rows
        self.risk_levels.update(other.risk_levels)
        self.actions.update(other.actions)
        self.latency += other.latency
        self.strata += other.strata
        for name, counts in other.features.items():
            if name in self.features:
                self.features[name] += counts
            else:
                self.features[name] = counts.copy()
        if other.score_reference is not None:
            self.score_reference = (other.score_reference.copy() if self.score_reference is None
                                    else self.score_reference + other.score_reference)
        self.champion.merge(other.champion)
        if other.shadow is not None:
            if self.shadow is None:
                self.shadow = ScoreBins(other.shadow.thresholds)
            self.shadow.merge(other.shadow)
        for merchant, stats in other.merchants.items():
            mine = self.merchants.setdefault(merchant, [0, 0, 0, 0])
            for i, v in enumerate(stats):
                mine[i] += v

    def to_dict(self) -> dict[str, Any]:
        return {"hour": self.hour, "version": self.version, "shadow_version": self.shadow_version, "rows": self.rows,
                "risk_levels": dict(self.risk_levels), "actions": dict(self.actions),
                "latency": self.latency.tolist(), "strata": self.strata.tolist(),
                "features": {n: c.tolist() for n, c in self.features.items()},
                "score_reference": None if self.score_reference is None else self.score_reference.tolist(),
                "champion": self.champion.to_dict(), "shadow": None if self.shadow is None else self.shadow.to_dict(),
                "merchants": self.merchants}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "HourAggregate":
        return cls(
            hour=int(d["hour"]), version=d["version"], shadow_version=d["shadow_version"],
            champion=ScoreBins.from_dict(d["champion"]),
            shadow=ScoreBins.from_dict(d["shadow"]) if d.get("shadow") else None,
            rows=int(d["rows"]), risk_levels=Counter(d["risk_levels"]), actions=Counter(d["actions"]),
            latency=np.asarray(d["latency"], dtype=np.int64), strata=np.asarray(d["strata"], dtype=np.int64),
            features={n: np.asarray(c, dtype=np.int64) for n, c in d["features"].items()},
            score_reference=None if d.get("score_reference") is None else np.asarray(d["score_reference"], dtype=np.int64),
            merchants={m: list(s) for m, s in d["merchants"].items()},
        )


def decision_row(record: Any) -> dict[str, Any]:
    """The fields of a ``DecisionRecord`` an aggregate counts (plain data, for ``HourAggregate.add``)."""
    shadow = record.shadow
    return {"transaction_id": record.transaction_id, "customer_id": record.customer_id,
            "merchant_id": record.transaction.merchant_id or "",
            "fraud_score": float(record.fraud_score), "risk_level": record.verdict.risk_level,
            "action": record.verdict.action, "latency_ms": float(record.latency_ms or 0.0),
            "features": record.features, "model_version": record.model_version,
            "shadow_version": shadow.version if shadow is not None else "",
            "shadow_score": shadow.score if shadow is not None else None}


# -- a window: the hour aggregates summed ----------------------------------------------------
@dataclass(frozen=True)
class LabelledDecision:
    """A decision with its label, as the label join records it for the monitor."""

    transaction_id: str
    customer_id: str
    event_time: datetime
    label: int
    fraud_score: float
    model_version: str
    shadow_version: str = ""
    shadow_score: float | None = None

    @property
    def hour(self) -> int:
        return hour_of(self.event_time)

    @property
    def day(self) -> int:
        return self.event_time.astimezone(timezone.utc).date().toordinal()

    @property
    def key(self) -> AggregateKey:
        return self.hour, self.model_version, self.shadow_version

    def to_dict(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "customer_id": self.customer_id,
                "event_time": self.event_time.astimezone(timezone.utc).isoformat(), "label": self.label,
                "fraud_score": self.fraud_score, "model_version": self.model_version,
                "shadow_version": self.shadow_version, "shadow_score": self.shadow_score}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LabelledDecision":
        moment = d["event_time"]
        if not isinstance(moment, datetime):
            moment = datetime.fromisoformat(str(moment))
        shadow = d.get("shadow_score")
        return cls(str(d["transaction_id"]), str(d.get("customer_id") or ""), moment.astimezone(timezone.utc),
                   int(d["label"]), float(d["fraud_score"]), str(d.get("model_version") or ""),
                   str(d.get("shadow_version") or ""), None if shadow in (None, "") else float(shadow))


def day_of_hour(hour: int) -> int:
    return hour_start(hour).date().toordinal()


@dataclass
class WindowAggregate:
    """The hour aggregates of a window of whole UTC hours ``[first_hour, end_hour)``, summed per key."""

    first_hour: int
    end_hour: int
    parts: dict[AggregateKey, HourAggregate] = field(default_factory=dict)
    documents: int = 0

    def add(self, aggregate: HourAggregate) -> None:
        if not self.first_hour <= aggregate.hour < self.end_hour:
            return
        self.documents += 1
        mine = self.parts.get(aggregate.key)
        if mine is None:
            self.parts[aggregate.key] = aggregate.copy()  # windows never share an aggregate they add to
        else:
            mine.merge(aggregate)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts.values())

    def versions(self) -> dict[str, int]:
        out: Counter = Counter()
        for p in self.parts.values():
            out[p.version] += p.rows
        return dict(out)

    def volume_per_hour(self) -> dict[str, int]:
        out: Counter = Counter()
        for p in self.parts.values():
            out[_hour_label(p.hour)] += p.rows
        return dict(sorted(out.items()))

    def alert_rate_per_hour(self) -> dict[str, float]:
        rows: Counter = Counter()
        high: Counter = Counter()
        for p in self.parts.values():
            rows[_hour_label(p.hour)] += p.rows
            high[_hour_label(p.hour)] += p.risk_levels.get("High", 0)
        return {h: high[h] / n for h, n in sorted(rows.items()) if n}

    def by(self, what: str) -> dict[str, int]:
        out: Counter = Counter()
        for p in self.parts.values():
            out.update(getattr(p, what))
        return dict(sorted(out.items()))

    def latency_percentiles(self, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float | None]:
        """Percentiles read off the latency histogram: the upper edge of the bin holding the
        quantile (an upper bound, to the bin's resolution; the last bin reports its lower edge)."""
        counts = sum((p.latency for p in self.parts.values()), np.zeros(len(LATENCY_EDGES_MS) + 1, dtype=np.int64))
        total = int(counts.sum())
        if not total:
            return {f"p{int(q)}": None for q in qs}
        cumulative = np.cumsum(counts)
        edges = LATENCY_EDGES_MS + (LATENCY_EDGES_MS[-1],)
        return {f"p{int(q)}": float(edges[int(np.searchsorted(cumulative, q / 100 * total, side="left"))]) for q in qs}

    def score_distribution(self) -> dict[str, list] | None:
        """Every decision's score in SCORE_BINS right-closed bins of [0, 1] (the report's chart)."""
        counts = np.zeros(SCORE_BINS, dtype=np.int64)
        coarse = np.linspace(0.0, 1.0, SCORE_BINS + 1)
        for p in self.parts.values():
            upper = np.r_[p.champion.edges, np.inf]  # each fine bin's upper edge
            target = np.clip(np.searchsorted(coarse[1:-1], upper, side="left"), 0, SCORE_BINS - 1)
            counts += np.bincount(target, weights=p.champion.counts, minlength=SCORE_BINS).astype(np.int64)
        if not counts.sum():
            return None
        return {"edges": [round(float(e), 4) for e in coarse], "counts": counts.tolist()}

    def alert_rate(self, high: float) -> float | None:
        """Share of the decisions scored above ``high`` (exact for the versions whose thresholds include it)."""
        rows = self.rows
        return sum(p.champion.above(high) for p in self.parts.values()) / rows if rows else None

    def drift(self, reference: ServingReference) -> tuple[DriftAccumulator | None, DriftAccumulator | None]:
        """The drift accumulators of the serving model's own decisions in the window."""
        own = [p for p in self.parts.values() if p.version == reference.version]
        features = score = None
        if reference.features:
            features = DriftAccumulator(reference.features, reference.train_rows)
            for p in own:
                for name in features.counts:
                    if name in p.features:
                        features.counts[name] += p.features[name]
                features.stratum_rows += p.strata
        if reference.score is not None:
            score = DriftAccumulator({"score": reference.score}, reference.train_rows)
            for p in own:
                if p.score_reference is not None:
                    score.counts["score"] += p.score_reference
                    score.stratum_rows += p.strata
        return features, score

    def merchant_hourly(self, first_hour: int, end_hour: int) -> dict[str, dict[int, list[int]]]:
        """Each merchant's visit stats per hour in ``[first_hour, end_hour)`` (the merchant-risk refresh's input)."""
        out: dict[str, dict[int, list[int]]] = {}
        for p in self.parts.values():
            if not first_hour <= p.hour < end_hour:
                continue
            for merchant, stats in p.merchants.items():
                mine = out.setdefault(merchant, {}).setdefault(p.hour, [0, 0, 0, 0])
                for i, v in enumerate(stats):
                    mine[i] += v
        return out


def _hour_label(hour: int) -> str:
    return hour_start(hour).strftime("%Y-%m-%dT%H:00Z")


# -- label-based figures from bins and labelled decisions --------------------------------------
@dataclass
class BinnedOutcomes:
    """Decisions as metric rows: each labelled decision exactly (weight 1), and each fine bin's
    unlabelled decisions as one row at their mean score, weighted by how many they are."""

    y: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    days: np.ndarray
    labelled: int
    unmatched: int  # labelled decisions whose aggregate is missing (e.g. a process died before its flush)
    versions: dict[str, int]
    top_cards: dict[int, dict[str, float]]  # day -> customer -> highest score
    top_txns: dict[int, dict[str, float]]  # day -> transaction id -> score
    truncated_days: set[int]
    frauds: dict[int, set[str]]  # day -> customers with a fraud that day
    labels: dict[str, int]  # transaction id -> label

    @property
    def rows(self) -> int:
        return int(round(float(self.weights.sum()))) if self.weights.size else 0

    def summary(self, thresholds: Mapping[str, float], k: int) -> dict[str, Any]:
        """The same figures as ``OutcomeTally.summary`` computes from every row."""
        y, s, w = self.y, self.scores, self.weights
        return {"labelled": self.labelled, "unlabelled_counted_as_legitimate": self.rows - self.labelled,
                "model_versions": dict(self.versions),
                "rows": self.rows, "positives": int(y.sum()),
                "roc_auc": roc_auc(y, s, w), "average_precision": average_precision(y, s, w),
                "recall_at_1pct_fpr": recall_at_fpr(y, s, 0.01, w),
                f"precision_top{k}_per_day": self.top_k_precision(k),
                f"card_precision_top{k}_per_day": self.card_precision(k),
                "at_thresholds": {name: threshold_report(y, s, value, w) for name, value in thresholds.items()},
                "expected_calibration_error": expected_calibration_error(y, s, 10, w),
                "card_precision_exact": self.card_precision_exact(k)}

    def top_k_precision(self, k: int) -> float | None:
        rows = [(day, -score, txn) for day, txns in self.top_txns.items() for txn, score in txns.items()]
        if not rows:
            return None
        rows.sort()
        days = np.asarray([r[0] for r in rows])
        scores = np.asarray([-r[1] for r in rows])
        y = np.asarray([self.labels.get(r[2], 0) for r in rows])
        return top_k_precision_per_day(y, scores, days, k)

    def card_precision(self, k: int) -> float | None:
        customers, days, scores, y = [], [], [], []
        for day, cards in self.top_cards.items():
            for customer, score in cards.items():
                customers.append(customer), days.append(day), scores.append(score)
                y.append(customer in self.frauds.get(day, ()))
        for day, frauds in self.frauds.items():  # so an earlier day's fraud removes the card later
            for customer in frauds:
                customers.append(customer), days.append(day), scores.append(-1.0), y.append(True)
        if not customers:
            return None
        return card_precision_at_k_per_day(np.asarray(customers, dtype=object), np.asarray(days), np.asarray(scores),
                                           np.asarray(y), k)

    def card_precision_exact(self, k: int) -> bool:
        """Whether every day kept enough customers for card precision@k to be exact."""
        return k <= TOP_KEPT and all(len(self.top_cards.get(d, {})) >= k + len(self.frauds_before(d))
                                     for d in self.truncated_days)

    def frauds_before(self, day: int) -> set[str]:
        return {c for d, customers in self.frauds.items() if d < day for c in customers}


def binned_outcomes(window: WindowAggregate, labelled: Iterable[LabelledDecision], *,
                    shadow_version: str | None = None, use_shadow: bool = False) -> BinnedOutcomes:
    """The window's decisions as weighted metric rows (see ``BinnedOutcomes``).

    ``shadow_version`` None: every decision, by the champion's scores. Otherwise only the
    decisions that shadow version also scored, by the champion's scores (``use_shadow``
    False) or the shadow's (True).
    """
    parts = [p for p in window.parts.values() if shadow_version is None or p.shadow_version == shadow_version]
    keys = {p.key for p in parts}
    bins_of = {p.key: (p.shadow if use_shadow else p.champion) for p in parts}
    y, scores, weights, days = [], [], [], []
    taken: dict[AggregateKey, tuple[np.ndarray, np.ndarray]] = {}
    labels: dict[str, int] = {}
    frauds: dict[int, set[str]] = defaultdict(set)
    labelled_n = unmatched = 0
    for row in labelled:
        if not window.first_hour <= row.hour < window.end_hour:
            continue
        if shadow_version is not None and row.shadow_version != shadow_version:
            continue
        score = row.shadow_score if use_shadow else row.fraud_score
        if score is None:
            continue
        labelled_n += 1
        labels[row.transaction_id] = row.label
        if row.label:
            frauds[row.day].add(row.customer_id)
        y.append(row.label), scores.append(score), weights.append(1.0), days.append(row.day)
        if row.key not in keys:
            unmatched += 1
            continue
        bins = bins_of[row.key]
        counts, sums = taken.setdefault(row.key, (np.zeros_like(bins.counts), np.zeros_like(bins.sums)))
        i = int(bins.index(np.asarray([score]))[0])
        counts[i] += 1
        sums[i] += score
    top_cards: dict[int, dict[str, float]] = defaultdict(dict)
    top_txns: dict[int, dict[str, float]] = defaultdict(dict)
    truncated: set[int] = set()
    versions: Counter = Counter()
    for p in parts:
        bins = bins_of[p.key]
        versions[p.version] += p.rows
        counts, sums = taken.get(p.key, (np.zeros_like(bins.counts), np.zeros_like(bins.sums)))
        left = bins.counts - counts
        left_sums = bins.sums - sums
        nz = np.flatnonzero(left > 0)
        day = day_of_hour(p.hour)
        y.extend([0] * nz.size)
        scores.extend((left_sums[nz] / left[nz]).tolist())
        weights.extend(left[nz].astype(np.float64).tolist())
        days.extend([day] * nz.size)
        cards = top_cards[day]
        for customer, score in bins.top_cards.items():
            if score > cards.get(customer, -1.0):
                cards[customer] = score
        for txn, (score, _) in bins.top_txns.items():
            top_txns[day][txn] = score
        if bins.cards_dropped:
            truncated.add(day)
    return BinnedOutcomes(np.asarray(y, dtype=np.int8), np.asarray(scores, dtype=np.float64),
                          np.asarray(weights, dtype=np.float64), np.asarray(days, dtype=np.int64), labelled_n, unmatched,
                          dict(versions), dict(top_cards), dict(top_txns), truncated, dict(frauds), labels)
