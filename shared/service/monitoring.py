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
from shared.domain.features import NOT_ALARMED, N_FEATURES, merchant_visit
from shared.domain.drift import DriftAccumulator, DriftRule, ReferenceHistogram, calendar_strata, score_distribution
from shared.domain.labels import Label, parse_label_file
from shared.domain.merchant_risk import MerchantVisit, as_of_hour, label_known_at, tally_visit
from shared.domain.metrics import expected_calibration_error, percentiles, summarize
from shared.domain.model import DEFAULT_THRESHOLDS
from shared.domain.promotion import Contender, Holdout, PromotionGate
from shared.service.ports import AuditReadPort, LabelFilesPort, LabelPort, MerchantRiskStorePort, ReportsPort

log = logging.getLogger(__name__)
OUTCOME_COLUMNS = ["RowKey", "customer_id", "fraud_score", "label", "event_time", "model_version", "shadow_score",
                   "shadow_version"]
READ_COLUMNS = OUTCOME_COLUMNS + ["features", "risk_level", "latency_ms"]


def _visit(row: dict[str, Any]) -> MerchantVisit:
    """A scored transaction's merchant visit, from the features it was scored with."""
    vector = unpack_features(row["features"]) if row.get("features") else None
    if vector is None or len(vector) != N_FEATURES:  # scored under another feature schema: volume only
        return MerchantVisit(float(vector[0]) if vector is not None and len(vector) else 0.0, False, False)
    return merchant_visit(vector)


def _count_visit(hourly: dict[str, dict[int, list[int]]], row: dict[str, Any], first_hour: int, as_of: float) -> None:
    """Tally a scored transaction into its merchant's hourly stats when it falls in the recount
    window ``[first_hour, as_of)``."""
    moment = row["event_time"].timestamp()
    if first_hour * 3600 <= moment < as_of and row.get("merchant_id"):
        tally_visit(hourly.setdefault(row["merchant_id"], {}), moment, _visit(row))


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
    label_maturity_days: float = 7.0
    merchant_recount_hours: int = 48
    min_expected_per_bin: float = 20.0

    @property
    def drift_rule(self) -> DriftRule:
        return DriftRule(self.psi_warn, self.psi_alert, self.min_expected_per_bin, excluded=dict(NOT_ALARMED))


@dataclass
class MonitoringService:
    audit: AuditReadPort
    labels: LabelPort
    label_files: LabelFilesPort
    reports: ReportsPort
    manifest: Callable[[], dict[str, Any] | None]  # the serving model's manifest
    merchants: MerchantRiskStorePort | None = None
    shadow_manifest: Callable[[], dict[str, Any] | None] | None = None  # the shadow challenger's, if one is set
    gate: PromotionGate | None = None  # judges shadow evidence (the retrain's policy)
    training_sample: Any = None  # TrainingSampleOutlet: joined labels (and labelled frauds) go to the sample
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
            if self.training_sample is not None:  # before the marks: a crash re-joins, the sample's reader de-duplicates
                self.training_sample.add_labels(to_audit)
        if marks:
            self.labels.mark(marks)
        if unknown:
            log.warning("%d labels name transactions never scored (kept, retried next run): %s", len(unknown), unknown[:10])
        return {"joined": len(to_audit), "unknown": len(unknown), "unknown_transaction_ids": unknown[:100]}

    # -- merchant risk --------------------------------------------------------------------
    def merchant_window(self, now: datetime, hours: int | None = None) -> tuple[int, float]:
        as_of = as_of_hour(now.timestamp())
        return int(as_of // 3600) - (hours or self.config.merchant_recount_hours), as_of

    def refresh_merchant_risk(self, now: datetime, hourly: dict[str, dict[int, list[int]]],
                              hours: int | None = None) -> dict[str, Any]:
        """Store the last hours' per-merchant counts (recounted from the audit log: idempotent)."""
        if self.merchants is None:
            return {}
        first_hour, as_of = self.merchant_window(now, hours)
        merchants = self.merchants.refresh_counts(hourly, first_hour, as_of)
        return {"merchants": merchants, "as_of": datetime.fromtimestamp(as_of, timezone.utc).isoformat()}

    def recount_merchants(self, now: datetime, hours: int) -> dict[str, Any]:
        """Only the merchant recount, over the last ``hours``: what a timer run does for merchant
        risk, for a caller that compresses time (``make run`` streams a day in a minute)."""
        first_hour, as_of = self.merchant_window(now, hours)
        hourly: dict[str, dict[int, list[int]]] = {}
        for row in self.audit.read(datetime.fromtimestamp(first_hour * 3600, timezone.utc), now,
                                   select=["features", "merchant_id", "event_time"]):
            _count_visit(hourly, row, first_hour, as_of)
        return self.refresh_merchant_risk(now, hourly, hours)

    # -- drift and performance ------------------------------------------------------------
    def evaluate(self, now: datetime, merchant_hourly: dict[str, dict[int, list[int]]] | None = None) -> dict[str, Any]:
        """Drift and provisional performance over the fresh window (one scan of the audit log,
        which also recounts merchants' hourly stats into ``merchant_hourly`` when given), and
        performance over the matured window ``[now - maturity - w, now - maturity)``."""
        reference = ServingReference.from_manifest(self.manifest())
        start = now - timedelta(hours=self.config.window_hours)
        tally = WindowTally(reference)
        self._scan(start, now, tally, merchant_hourly)
        matured_end = now - timedelta(days=self.config.label_maturity_days)
        matured_start = matured_end - timedelta(hours=self.config.window_hours)
        matured = OutcomeTally()
        for row in self.audit.read(matured_start, matured_end, select=OUTCOME_COLUMNS):
            matured.add(row)
        scores = np.asarray(tally.scores)
        shadow = self.shadow_manifest() if self.shadow_manifest else None
        return {
            "window": {"start": start.isoformat(), "end": now.isoformat(), "decisions": tally.rows,
                       "labelled": tally.outcomes.labelled},
            "model_version": reference.version,
            "warming_up": tally.warming_up(),
            "drift": self._drift(tally, reference, scores),
            "performance": self._performance(matured, reference, "matured", (matured_start, matured_end)),
            "performance_provisional": self._performance(tally.outcomes, reference, "provisional", (start, now)),
            "shadow": self._shadow(matured, reference, shadow, (matured_start, matured_end)),
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
            if merchant_hourly is not None:
                _count_visit(merchant_hourly, row, first_hour, merchant_as_of)
            if row["event_time"] >= start:
                tally.add(row)
        tally.flush()

    def _drift(self, tally: "WindowTally", reference: "ServingReference", scores: np.ndarray) -> dict[str, Any]:
        rule = self.config.drift_rule
        features = tally.features.report(rule) if tally.features else {}
        score_drift = tally.score.report(rule)["score"] if tally.score is not None else None
        alert_rate = float(np.mean(scores > reference.thresholds["high"])) if scores.size else None
        expected = reference.alert_rate
        return {"features": features, "score": score_drift, "alert_rate": alert_rate, "reference_alert_rate": expected,
                "alert_rate_ratio": (alert_rate / expected) if alert_rate is not None and expected else None,
                "method": ("each feature's window histogram against the model's reference histogram reweighted to "
                           "the window's mix of hours of the day and weekdays; bins merged until each expects "
                           f"{rule.min_expected_per_bin:g}+ rows; PSI warn {rule.psi_warn}, alert {rule.psi_alert}; "
                           "features that grow with time since training are reported, never alarmed on")}

    def _performance(self, outcomes: "OutcomeTally", reference: "ServingReference", view: str,
                     window: tuple[datetime, datetime]) -> dict[str, Any] | None:
        if not outcomes.rows:
            return None
        note = ("labels are still arriving for this window: unlabelled decisions count as legitimate, so "
                "precision is understated; not used to judge the model" if view == "provisional" else
                f"older than the label maturity ({self.config.label_maturity_days:g} days): unlabelled decisions "
                "count as legitimate")
        return {"view": view, "note": note, "start": window[0].isoformat(), "end": window[1].isoformat(),
                **outcomes.summary(reference.thresholds, self.config.top_k)}

    def _shadow(self, matured: "OutcomeTally", reference: "ServingReference", shadow: dict[str, Any] | None,
                window: tuple[datetime, datetime]) -> dict[str, Any] | None:
        """The champion and the shadow challenger on the matured decisions both scored, judged
        by the promotion gate (each at its own thresholds; no training windows to check: the
        scores were served before any label existed)."""
        if not shadow:
            return None
        version = shadow.get("version")
        both = matured.scored_by_shadow(version)
        out: dict[str, Any] = {"version": version, "start": window[0].isoformat(), "end": window[1].isoformat(),
                               "rows": len(both)}
        if not both:
            out["note"] = "no matured decision was scored by this shadow yet"
            return out
        rows = np.asarray(both)
        holdout = Holdout(np.asarray(matured.y)[rows], np.asarray(matured.days)[rows],
                          np.asarray(matured.customers, dtype=object)[rows])
        champion = Contender(reference.version, np.asarray(matured.scores)[rows], reference.thresholds)
        challenger = Contender(version, np.asarray(matured.shadow_scores, dtype=np.float64)[rows],
                               dict(shadow.get("thresholds") or {}))
        out["verdict"] = (self.gate or PromotionGate(k=self.config.top_k)).judge(holdout, challenger, champion)
        return out

    def breaches(self, evaluation: dict[str, Any]) -> list[str]:
        reasons = []
        drifted = sorted(n for n, d in evaluation["drift"]["features"].items() if d["status"] == "alert")
        if drifted:
            reasons.append(f"feature drift (PSI >= {self.config.psi_alert}): {', '.join(drifted)}")
        score = evaluation["drift"]["score"]
        if score and score["status"] == "alert":
            reasons.append(f"score distribution drift (PSI {score['psi']:.3f})")
        perf = evaluation["performance"]  # the matured view only: fresh labels are mostly the model's own alerts
        if perf and perf["positives"] >= self.config.min_labelled_fraud and set(perf["model_versions"]) == {
                evaluation["model_version"]}:
            recall = perf["at_thresholds"]["medium"]["recall"]
            if recall is not None and recall < self.config.min_recall:
                reasons.append(f"matured recall at the review threshold {recall:.2f} < {self.config.min_recall}")
        return reasons

    # -- the timer's run --------------------------------------------------------------------
    def run(self, now: datetime | None = None) -> dict[str, Any]:
        """One monitoring pass as of ``now`` (the clock's time by default; ``make run`` passes
        the end of each simulated day)."""
        started = time.perf_counter()
        now = now or self.clock()
        ingested = self.ingest_label_files()
        joined = self.join_labels()
        hourly: dict[str, dict[int, list[int]]] = {}
        evaluation = self.evaluate(now, hourly if self.merchants is not None else None)
        merchant_risk = self.refresh_merchant_risk(now, hourly)
        reasons = self.breaches(evaluation)
        report = {"run_at": now.isoformat(), "labels": {**ingested, **joined}, "merchant_risk": merchant_risk,
                  **evaluation, "breaches": reasons}
        report["retrain_request"] = None
        if reasons and evaluation["warming_up"]:
            report["retrain_withheld"] = f"warming up: {evaluation['warming_up']}"
        elif reasons:
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
            train_rows=int(reference.get("rows") or manifest.get("rows", {}).get("train", 0)),
            score=ReferenceHistogram.from_dict(reference["score"]) if "score" in reference else None,
            thresholds=dict(manifest.get("thresholds", {})),
            alert_rate=reference.get("alert_rate"),
        )


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
        if self.features is not None and row.get("features"):
            vector = unpack_features(row["features"])
            if len(vector) == len(self.reference.feature_names):
                self._chunk.append(vector)
                self._chunk_scores.append(score if row.get("model_version") == self.reference.version else None)
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
