"""The monitor's figures computed from every decision of the audit log: the reference the
aggregate-based monitor (``shared/service/monitoring.py``) is checked against.

This is how the timer worked before the hourly aggregates (issue #15): it re-read each
window's audit rows, which at 1,000 tx/s is 86 million rows a day. Kept for the tests that
prove the aggregates give the same figures, and for ``bench.monitoring``'s side-by-side
timing. Windows are the same whole UTC hours (``MonitorWindows``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

import numpy as np

from shared.domain.decision_record import unpack_features
from shared.domain.drift import DriftAccumulator, calendar_strata, score_distribution
from shared.domain.features import N_FEATURES, merchant_visit
from shared.domain.merchant_risk import MerchantVisit, tally_visit
from shared.domain.metrics import expected_calibration_error, percentiles, summarize
from shared.domain.monitoring_aggregate import ServingReference, hour_start
from shared.domain.promotion import Contender, Holdout, PromotionGate
from shared.service.monitoring import MonitoringConfig, MonitorWindows, warming_up
from shared.service.ports import AuditReadPort

OUTCOME_COLUMNS = ["RowKey", "customer_id", "fraud_score", "label", "event_time", "model_version", "shadow_score",
                   "shadow_version"]
READ_COLUMNS = OUTCOME_COLUMNS + ["features", "risk_level", "latency_ms", "merchant_id"]


def _visit(row: dict[str, Any]) -> MerchantVisit:
    """A scored transaction's merchant visit, from the features it was scored with."""
    vector = unpack_features(row["features"]) if row.get("features") else None
    if vector is None or len(vector) != N_FEATURES:  # scored under another feature schema: volume only
        return MerchantVisit(float(vector[0]) if vector is not None and len(vector) else 0.0, False, False)
    return merchant_visit(vector)


def scan_figures(audit: AuditReadPort, manifest: dict[str, Any] | None, now, config: MonitoringConfig,
                 shadow: dict[str, Any] | None = None, gate: PromotionGate | None = None,
                 merchant_first_hour: int | None = None) -> dict[str, Any]:
    """Drift, performance (matured and provisional), the shadow's verdict and the charts, from
    every audit row of the windows; with ``merchant_first_hour``, also each merchant's hourly
    visit stats from that hour to the current one (``merchant_hourly``)."""
    reference = ServingReference.from_manifest(manifest)
    windows = MonitorWindows.at(now, config)
    fresh_start, fresh_end = hour_start(windows.fresh[0]), hour_start(windows.fresh[1])
    tally = WindowTally(reference)
    hourly: dict[str, dict[int, list[int]]] = {}
    scan_start = fresh_start if merchant_first_hour is None else min(fresh_start, hour_start(merchant_first_hour))
    for row in audit.read(scan_start, fresh_end, select=READ_COLUMNS):
        if merchant_first_hour is not None and row.get("merchant_id") and row["event_time"] < hour_start(windows.fresh[1] - 1):
            if row["event_time"] >= hour_start(merchant_first_hour):
                tally_visit(hourly.setdefault(row["merchant_id"], {}), row["event_time"].timestamp(), _visit(row))
        if row["event_time"] >= fresh_start:
            tally.add(row)
    tally.flush()
    matured = OutcomeTally()
    matured_start, matured_end = hour_start(windows.matured[0]), hour_start(windows.matured[1])
    for row in audit.read(matured_start, matured_end, select=OUTCOME_COLUMNS):
        matured.add(row)
    rule = config.drift_rule
    scores = np.asarray(tally.scores)
    high = reference.thresholds.get("high")
    out = {
        "warming_up": warming_up(dict(tally.outcomes.versions), reference.version),
        "drift": {"features": tally.features.report(rule) if tally.features else {},
                  "score": tally.score.report(rule)["score"] if tally.score is not None else None,
                  "alert_rate": float(np.mean(scores > high)) if scores.size and high is not None else None},
        "performance": matured.summary(reference.thresholds, config.top_k) if matured.rows else None,
        "performance_provisional": tally.outcomes.summary(reference.thresholds, config.top_k) if tally.rows else None,
        "score_distribution": score_distribution(scores) if scores.size else None,
        "latency_ms": percentiles(tally.latencies, (50, 95, 99)),
        "volume_per_hour": tally.volume_per_hour(),
        "alert_rate_per_hour": tally.alert_rate_per_hour(),
        "merchant_hourly": hourly,
    }
    if shadow:
        version = shadow.get("version")
        both = matured.scored_by_shadow(version)
        if both:
            rows = np.asarray(both)
            holdout = Holdout(np.asarray(matured.y)[rows], np.asarray(matured.days)[rows],
                              np.asarray(matured.customers, dtype=object)[rows])
            champion = Contender(reference.version, np.asarray(matured.scores)[rows], reference.thresholds)
            challenger = Contender(version, np.asarray(matured.shadow_scores, dtype=np.float64)[rows],
                                   dict(shadow.get("thresholds") or {}))
            out["shadow"] = (gate or PromotionGate(k=config.top_k)).judge(holdout, challenger, champion)
    return out


@dataclass
class OutcomeTally:
    """Decisions with their outcome: the label, or legitimate while none has arrived."""

    y: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    days: list[int] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    shadow_scores: list[float | None] = field(default_factory=list)
    shadow_versions: list[str | None] = field(default_factory=list)
    versions: Counter = field(default_factory=Counter)
    labelled: int = 0

    @property
    def rows(self) -> int:
        return len(self.y)

    def add(self, row: dict[str, Any]) -> None:
        label = row.get("label")
        known = label not in (None, "")
        self.labelled += known
        self.y.append(int(label) if known else 0)
        self.scores.append(float(row.get("fraud_score") or 0.0))
        self.days.append(row["event_time"].astimezone(timezone.utc).date().toordinal())
        self.customers.append(row.get("customer_id") or "")
        shadow = row.get("shadow_score")
        self.shadow_scores.append(None if shadow in (None, "") else float(shadow))
        self.shadow_versions.append(row.get("shadow_version"))
        self.versions[row.get("model_version") or ""] += 1

    def scored_by_shadow(self, version: str | None) -> list[int]:
        """The rows the shadow ``version`` also scored."""
        return [i for i, score in enumerate(self.shadow_scores)
                if score is not None and self.shadow_versions[i] == version]

    def summary(self, thresholds: dict[str, float], k: int) -> dict[str, Any]:
        scores = np.asarray(self.scores, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.int8)
        return {"labelled": self.labelled, "unlabelled_counted_as_legitimate": self.rows - self.labelled,
                "model_versions": dict(self.versions),
                **summarize(y, scores, np.asarray(self.days), thresholds, k, customers=np.asarray(self.customers, dtype=object)),
                "expected_calibration_error": expected_calibration_error(y, scores)}


@dataclass
class WindowTally:
    """The fresh window's decisions as the report needs them, accumulated row by row."""

    reference: ServingReference
    rows: int = 0
    scores: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    outcomes: OutcomeTally = field(default_factory=OutcomeTally)
    per_hour: Counter = field(default_factory=Counter)
    alerts_per_hour: Counter = field(default_factory=Counter)
    features: DriftAccumulator | None = None
    score: DriftAccumulator | None = None  # the serving model's own scores only
    _chunk: list[np.ndarray] = field(default_factory=list)
    _chunk_scores: list[float | None] = field(default_factory=list)

    CHUNK_ROWS = 5000

    def __post_init__(self) -> None:
        if self.reference.features:
            self.features = DriftAccumulator(self.reference.features, self.reference.train_rows)
        if self.reference.score is not None:
            self.score = DriftAccumulator({"score": self.reference.score}, self.reference.train_rows)

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        score = float(row.get("fraud_score") or 0.0)
        if self.features is not None and row.get("features") and row.get("model_version") == self.reference.version:
            vector = unpack_features(row["features"])
            if len(vector) == len(self.reference.feature_names):
                self._chunk.append(vector)
                self._chunk_scores.append(score)
                if len(self._chunk) >= self.CHUNK_ROWS:
                    self.flush()
        self.scores.append(score)
        self.latencies.append(float(row.get("latency_ms") or 0.0))
        hour = row["event_time"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:00Z")
        self.per_hour[hour] += 1
        if row.get("risk_level") == "High":
            self.alerts_per_hour[hour] += 1
        if "customer_id" in row or "label" in row:
            self.outcomes.add(row)

    def warming_up(self) -> str | None:
        """Why the window cannot judge the serving model yet: some of its decisions were made
        by another model (it changed within the window)."""
        others = {v: n for v, n in self.outcomes.versions.items() if v != self.reference.version}
        if not others or self.reference.version is None:
            return None
        return (f"{sum(others.values())} of the window's {self.outcomes.rows} decisions were made by "
                f"{', '.join(sorted(others))}, not the serving {self.reference.version}")

    def volume_per_hour(self) -> dict[str, int]:
        return dict(sorted(self.per_hour.items()))

    def alert_rate_per_hour(self) -> dict[str, float]:
        return {h: self.alerts_per_hour[h] / n for h, n in sorted(self.per_hour.items())}

    def flush(self) -> None:
        """Feed the buffered feature vectors to the drift accumulators, a matrix at a time."""
        if self.features is not None and self._chunk:
            matrix = np.stack(self._chunk).astype(np.float32, copy=False)
            names = self.reference.feature_names
            strata = (calendar_strata(matrix[:, names.index("hour_of_day")], matrix[:, names.index("is_weekend")])
                      if "hour_of_day" in names and "is_weekend" in names else None)
            self.features.add({name: matrix[:, i] for i, name in enumerate(self.reference.feature_names)}, strata)
            if self.score is not None:
                mine = np.asarray([s is not None for s in self._chunk_scores])
                if mine.any():
                    served = np.asarray([s for s in self._chunk_scores if s is not None], dtype=np.float64)
                    self.score.add({"score": served}, None if strata is None else strata[mine])
        self._chunk.clear()
        self._chunk_scores.clear()
