"""Closing the loop, part 1: join late labels, measure drift and live performance, ask for retraining.

``MonitoringService.run`` is what the timer calls. Every step is idempotent, so a run that
overlaps or repeats changes nothing twice: labels are merged by transaction id, report
names carry the run time, and a retrain request is written only when the ETag-guarded
cooldown state allows it.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import numpy as np

from shared.domain.decision_record import unpack_features
from shared.domain.features import N_FEATURES, merchant_visit
from shared.domain.drift import DriftAccumulator, ReferenceHistogram, population_stability_index, score_distribution
from shared.domain.labels import Label, parse_label_file
from shared.domain.merchant_risk import MerchantVisit, as_of_hour, label_known_at, tally_visit
from shared.domain.metrics import percentiles, summarize
from shared.domain.model import DEFAULT_THRESHOLDS
from shared.service.ports import AuditReadPort, LabelFilesPort, LabelPort, MerchantRiskStorePort, ReportsPort

log = logging.getLogger(__name__)
READ_COLUMNS = ["RowKey", "features", "fraud_score", "risk_level", "latency_ms", "label", "event_time", "model_version"]


def _visit(row: dict[str, Any]) -> MerchantVisit:
    """A scored transaction's merchant visit, from the features it was scored with."""
    vector = unpack_features(row["features"]) if row.get("features") else None
    if vector is None or len(vector) != N_FEATURES:  # scored under another feature schema: volume only
        return MerchantVisit(float(vector[0]) if vector is not None and len(vector) else 0.0, False, False)
    return merchant_visit(vector)


@dataclass(frozen=True)
class MonitoringConfig:
    window_hours: float = 24.0
    psi_warn: float = 0.1
    psi_alert: float = 0.2
    retrain_cooldown_hours: float = 24.0
    min_labelled_fraud: int = 20
    min_recall: float = 0.5
    top_k: int = 20
    label_delay_days: float = 7.0
    merchant_recount_hours: int = 48


@dataclass
class MonitoringService:
    audit: AuditReadPort
    labels: LabelPort
    label_files: LabelFilesPort
    reports: ReportsPort
    manifest: Callable[[], dict[str, Any] | None]  # the serving model's manifest
    merchants: MerchantRiskStorePort | None = None
    config: MonitoringConfig = field(default_factory=MonitoringConfig)
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    # -- labels -------------------------------------------------------------------------
    def ingest_label_files(self) -> dict[str, Any]:
        files, labels, rejected = 0, 0, 0
        for name, etag in self.label_files.new_files():
            if self.labels.file_seen(name, etag):
                continue
            parsed, bad = parse_label_file(name, self.label_files.read(name), default_source=f"file:{name}")
            self.labels.put(parsed, self.clock())
            self.labels.record_file(name, etag, len(parsed), bad)
            files, labels, rejected = files + 1, labels + len(parsed), rejected + len(bad)
            if bad:
                log.warning("label file %s: %d lines rejected, first: %s", name, len(bad), bad[0])
        return {"files": files, "labels": labels, "rejected_lines": rejected}

    def accept_labels(self, labels: list[Label]) -> dict[str, Any]:
        """The HTTP path: record, then join at once so analysts see their verdicts."""
        written = self.labels.put(labels, self.clock())
        return self.join_labels(written)  # the rows just written: no scan of every waiting label

    def join_labels(self, awaiting: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Join labels into the audit log: ``awaiting`` label rows, or every label not yet joined."""
        if awaiting is None:
            awaiting = list(self.labels.awaiting())
        located = self.audit.locate([row["RowKey"] for row in awaiting])
        to_audit, marks, unknown, frauds = [], [], [], []
        now = self.clock()
        for row in awaiting:
            txn_id = row["RowKey"]
            where = located.get(txn_id)
            if where is None:
                unknown.append(txn_id)
                marks.append((row["PartitionKey"], txn_id, {"status": "unknown", "checked_at": now,
                                                            "attempts": int(row.get("attempts") or 0) + 1}))
                continue
            labelled_at = row.get("labelled_at") or ""
            to_audit.append((where.audit_pk, txn_id, {"label": int(row["label"]), "labelled_at": labelled_at,
                                                          "label_source": row.get("source", "")}))
            marks.append((row["PartitionKey"], txn_id, {"status": "joined", "joined_at": now, "audit_pk": where.audit_pk}))
            if int(row["label"]) == 1 and where.event_time:
                event_time = datetime.fromisoformat(where.event_time)
                self.labels.mark_compromised(where.customer_id, event_time)
                known = datetime.fromisoformat(labelled_at).timestamp() if labelled_at else None
                frauds.append((where.merchant_id, txn_id, event_time.timestamp(),
                               label_known_at(event_time.timestamp(), known, self.config.label_delay_days)))
        if frauds and self.merchants is not None:
            self.merchants.add_frauds(frauds)  # before the labels are marked joined: a crash re-joins them
        if to_audit:
            self.audit.set_labels(to_audit)
        if marks:
            self.labels.mark(marks)
        if unknown:
            log.warning("%d labels name transactions never scored (kept, retried next run): %s", len(unknown), unknown[:10])
        return {"joined": len(to_audit), "unknown": len(unknown), "unknown_transaction_ids": unknown[:100]}

    # -- merchant risk --------------------------------------------------------------------
    def merchant_window(self, now: datetime) -> tuple[int, float]:
        as_of = as_of_hour(now.timestamp())
        return int(as_of // 3600) - self.config.merchant_recount_hours, as_of

    def refresh_merchant_risk(self, now: datetime, hourly: dict[str, dict[int, list[int]]]) -> dict[str, Any]:
        """Store the last hours' per-merchant counts (recounted from the audit log: idempotent)."""
        if self.merchants is None:
            return {}
        first_hour, as_of = self.merchant_window(now)
        merchants = self.merchants.refresh_counts(hourly, first_hour, as_of)
        return {"merchants": merchants, "as_of": datetime.fromtimestamp(as_of, timezone.utc).isoformat()}

    # -- drift and performance ------------------------------------------------------------
    def evaluate(self, now: datetime, merchant_hourly: dict[str, dict[int, list[int]]] | None = None) -> dict[str, Any]:
        """Drift and performance over the window; one scan of the audit log, which also
        recounts merchants' hourly stats into ``merchant_hourly`` when given."""
        reference = ServingReference.from_manifest(self.manifest())
        start = now - timedelta(hours=self.config.window_hours)
        tally = WindowTally(reference)
        self._scan(start, now, tally, merchant_hourly)
        scores = np.asarray(tally.scores)
        return {
            "window": {"start": start.isoformat(), "end": now.isoformat(), "decisions": tally.rows,
                       "labelled": len(tally.labelled_y)},
            "model_version": reference.version,
            "drift": self._drift(tally, reference, scores),
            "performance": self._performance(tally, reference),
            "score_distribution": score_distribution(scores),
            "latency_ms": percentiles(tally.latencies, (50, 95, 99)),
            "volume_per_hour": tally.volume_per_hour(),
            "alert_rate_per_hour": tally.alert_rate_per_hour(),
        }

    def _scan(self, start: datetime, now: datetime, tally: "WindowTally",
              merchant_hourly: dict[str, dict[int, list[int]]] | None) -> None:
        """Read the window once (and, for the merchant recount, the hours before it it needs)."""
        first_hour, merchant_as_of = self.merchant_window(now)
        scan_start = min(start, datetime.fromtimestamp(first_hour * 3600, timezone.utc)) if merchant_hourly is not None else start
        for row in self.audit.read(scan_start, now, select=READ_COLUMNS + ["merchant_id"]):
            moment = row["event_time"].timestamp()
            if merchant_hourly is not None and first_hour * 3600 <= moment < merchant_as_of and row.get("merchant_id"):
                tally_visit(merchant_hourly.setdefault(row["merchant_id"], {}), moment, _visit(row))
            if row["event_time"] >= start:
                tally.add(row)
        tally.flush()

    def _drift(self, tally: "WindowTally", reference: "ServingReference", scores: np.ndarray) -> dict[str, Any]:
        features = tally.features.report(self.config.psi_warn, self.config.psi_alert) if tally.features else {}
        score_drift = None
        if reference.score is not None and scores.size:
            counts = reference.score.counts(scores)
            psi = population_stability_index(np.asarray(reference.score.proportions), counts / counts.sum())
            score_drift = {"psi": psi, "status": ("alert" if psi >= self.config.psi_alert else
                                                  "warn" if psi >= self.config.psi_warn else "ok")}
        alert_rate = float(np.mean(scores > reference.thresholds["high"])) if scores.size else None
        expected = reference.alert_rate
        return {"features": features, "score": score_drift, "alert_rate": alert_rate, "reference_alert_rate": expected,
                "alert_rate_ratio": (alert_rate / expected) if alert_rate is not None and expected else None}

    def _performance(self, tally: "WindowTally", reference: "ServingReference") -> dict[str, Any] | None:
        y = np.asarray(tally.labelled_y, dtype=np.int8)
        if not y.size:
            return None
        return summarize(y, np.asarray(tally.labelled_s), np.asarray(tally.labelled_day), reference.thresholds,
                         self.config.top_k)

    def breaches(self, evaluation: dict[str, Any]) -> list[str]:
        reasons = []
        drifted = sorted(n for n, d in evaluation["drift"]["features"].items() if d["status"] == "alert")
        if drifted:
            reasons.append(f"feature drift (PSI >= {self.config.psi_alert}): {', '.join(drifted)}")
        score = evaluation["drift"]["score"]
        if score and score["status"] == "alert":
            reasons.append(f"score distribution drift (PSI {score['psi']:.3f})")
        perf = evaluation["performance"]
        if perf and perf["positives"] >= self.config.min_labelled_fraud:
            recall = perf["at_thresholds"]["medium"]["recall"]
            if recall is not None and recall < self.config.min_recall:
                reasons.append(f"live recall at the review threshold {recall:.2f} < {self.config.min_recall}")
        return reasons

    # -- the timer's run --------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        now = self.clock()
        ingested = self.ingest_label_files()
        joined = self.join_labels()
        hourly: dict[str, dict[int, list[int]]] = {}
        evaluation = self.evaluate(now, hourly if self.merchants is not None else None)
        merchant_risk = self.refresh_merchant_risk(now, hourly)
        reasons = self.breaches(evaluation)
        report = {"run_at": now.isoformat(), "labels": {**ingested, **joined}, "merchant_risk": merchant_risk,
                  **evaluation, "breaches": reasons}
        report["retrain_request"] = None
        if reasons:
            report["retrain_request"] = self.reports.request_retrain(
                {"requested_at": now.isoformat(), "reasons": reasons, "model_version": evaluation["model_version"],
                 "window": evaluation["window"]}, now, timedelta(hours=self.config.retrain_cooldown_hours))
        report["seconds"] = round(time.perf_counter() - started, 3)
        report["report_blob"] = self.reports.write_report(report, now)
        return report


@dataclass(frozen=True)
class ServingReference:
    """What the serving model's manifest says the window should look like."""

    version: str | None
    feature_names: tuple[str, ...]
    features: dict[str, ReferenceHistogram]
    train_rows: int
    score: ReferenceHistogram | None
    thresholds: dict[str, float]
    alert_rate: float | None

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any] | None) -> "ServingReference":
        if not manifest:
            return cls(None, (), {}, 0, None, dict(DEFAULT_THRESHOLDS), None)
        names = tuple(manifest["feature_names"])
        reference = manifest.get("reference", {})
        stored = reference.get("features", {})
        return cls(
            version=manifest.get("version"),
            feature_names=names,
            features={n: ReferenceHistogram.from_dict(stored[n]) for n in names if n in stored},
            train_rows=int(manifest.get("rows", {}).get("train", 0)),
            score=ReferenceHistogram.from_dict(reference["score"]) if "score" in reference else None,
            thresholds=dict(manifest.get("thresholds", {})),
            alert_rate=reference.get("alert_rate"),
        )


@dataclass
class WindowTally:
    """The window's decisions as the report needs them, accumulated row by row."""

    reference: ServingReference
    rows: int = 0
    scores: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    labelled_y: list[int] = field(default_factory=list)
    labelled_s: list[float] = field(default_factory=list)
    labelled_day: list[int] = field(default_factory=list)
    per_hour: Counter = field(default_factory=Counter)
    alerts_per_hour: Counter = field(default_factory=Counter)
    features: DriftAccumulator | None = None
    _chunk: list[np.ndarray] = field(default_factory=list)

    CHUNK_ROWS = 5000

    def __post_init__(self) -> None:
        if self.reference.features:
            self.features = DriftAccumulator(self.reference.features, self.reference.train_rows)

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        if self.features is not None and row.get("features"):
            vector = unpack_features(row["features"])
            if len(vector) == len(self.reference.feature_names):
                self._chunk.append(vector)
                if len(self._chunk) >= self.CHUNK_ROWS:
                    self.flush()
        score = float(row.get("fraud_score") or 0.0)
        self.scores.append(score)
        self.latencies.append(float(row.get("latency_ms") or 0.0))
        when = row["event_time"].astimezone(timezone.utc)
        hour = when.strftime("%Y-%m-%dT%H:00Z")
        self.per_hour[hour] += 1
        if row.get("risk_level") == "High":
            self.alerts_per_hour[hour] += 1
        label = row.get("label")
        if label not in (None, ""):
            self.labelled_y.append(int(label))
            self.labelled_s.append(score)
            self.labelled_day.append(when.date().toordinal())

    def volume_per_hour(self) -> dict[str, int]:
        return dict(sorted(self.per_hour.items()))

    def alert_rate_per_hour(self) -> dict[str, float]:
        return {h: self.alerts_per_hour[h] / n for h, n in sorted(self.per_hour.items())}

    def flush(self) -> None:
        """Feed the buffered feature vectors to the drift accumulator, a matrix at a time."""
        if self.features is not None and self._chunk:
            matrix = np.stack(self._chunk).astype(np.float32, copy=False)
            for i, name in enumerate(self.reference.feature_names):
                self.features.add(name, matrix[:, i])
        self._chunk.clear()
