"""Closing the loop, part 1: join late labels, measure drift and live performance, ask for retraining.

``MonitoringService.run`` is what the timer calls. Every step is idempotent, so a run that
overlaps or repeats changes nothing twice: labels are merged by transaction id, report
names carry the run time, and a retrain request is written only when the ETag-guarded
cooldown state allows it.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

import numpy as np

from shared.domain.decision_record import unpack_features
from shared.domain.drift import DriftAccumulator, ReferenceHistogram, population_stability_index
from shared.domain.labels import Label, parse_label_file
from shared.domain.merchant_risk import as_of_hour, label_known_at
from shared.domain.metrics import percentiles, summarize

log = logging.getLogger(__name__)
READ_COLUMNS = ["RowKey", "features", "fraud_score", "risk_level", "latency_ms", "label", "event_time", "model_version"]


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


class LabelFiles(Protocol):
    def new_files(self) -> list[tuple[str, str]]: ...  # (name, etag)
    def read(self, name: str) -> bytes: ...


class Reports(Protocol):
    def write_report(self, report: dict[str, Any], at: datetime) -> str: ...
    def request_retrain(self, request: dict[str, Any], at: datetime, cooldown: timedelta) -> str | None: ...


@dataclass
class MonitoringService:
    audit: Any
    labels: Any
    label_files: LabelFiles
    reports: Reports
    manifest: Callable[[], dict[str, Any] | None]  # the serving model's manifest
    merchants: Any = None  # MerchantRiskStore
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
        self.labels.put(labels, self.clock())
        return self.join_labels(only={label.transaction_id for label in labels})

    def join_labels(self, only: set[str] | None = None) -> dict[str, Any]:
        awaiting = [row for row in self.labels.awaiting() if only is None or row["RowKey"] in only]
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
            to_audit.append((where.audit_pk, txn_id, {"label": str(row["label"]), "labelled_at": labelled_at,
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

    def refresh_merchant_risk(self, now: datetime, hourly: dict[str, Counter]) -> dict[str, Any]:
        """Store the last hours' per-merchant counts (recounted from the audit log: idempotent)."""
        if self.merchants is None:
            return {}
        first_hour, as_of = self.merchant_window(now)
        merchants = self.merchants.refresh_counts({m: dict(c) for m, c in hourly.items()}, first_hour, as_of)
        return {"merchants": merchants, "as_of": datetime.fromtimestamp(as_of, timezone.utc).isoformat()}

    # -- drift and performance ------------------------------------------------------------
    def evaluate(self, now: datetime, merchant_hourly: dict[str, Counter] | None = None) -> dict[str, Any]:
        """Drift and performance over the window; one scan of the audit log, which also
        recounts merchants' hourly volumes into ``merchant_hourly`` when given."""
        manifest = self.manifest()
        start = now - timedelta(hours=self.config.window_hours)
        names: list[str] = list(manifest["feature_names"]) if manifest else []
        reference = manifest.get("reference", {}) if manifest else {}
        references = {n: ReferenceHistogram.from_dict(reference["features"][n]) for n in names if n in reference.get("features", {})}
        n_reference = int(manifest.get("rows", {}).get("train", 0)) if manifest else 0
        features = DriftAccumulator(references, n_reference) if references else None
        score_ref = ReferenceHistogram.from_dict(reference["score"]) if "score" in reference else None
        thresholds = dict(manifest.get("thresholds", {})) if manifest else {"high": 0.8, "medium": 0.5, "alert": 0.7}

        chunk: list[list[float]] = []
        scores, latencies, labelled_y, labelled_s, labelled_day = [], [], [], [], []
        per_hour: Counter = Counter()
        alerts_per_hour: Counter = Counter()
        rows = 0

        def flush() -> None:
            if features is not None and chunk:
                matrix = np.asarray(chunk, dtype=np.float32)
                for i, name in enumerate(names):
                    features.add(name, matrix[:, i])
            chunk.clear()

        first_hour, merchant_as_of = self.merchant_window(now)
        scan_start = min(start, datetime.fromtimestamp(first_hour * 3600, timezone.utc)) if merchant_hourly is not None else start
        for row in self.audit.read(scan_start, now, select=READ_COLUMNS + ["merchant_id"]):
            moment = row["event_time"].timestamp()
            if merchant_hourly is not None and first_hour * 3600 <= moment < merchant_as_of and row.get("merchant_id"):
                merchant_hourly.setdefault(row["merchant_id"], Counter())[int(moment // 3600)] += 1
            if row["event_time"] < start:
                continue
            rows += 1
            vector = unpack_features(row["features"])
            if len(vector) == len(names):
                chunk.append(vector)
                if len(chunk) >= 5000:
                    flush()
            score = float(row["fraud_score"])
            scores.append(score)
            latencies.append(float(row.get("latency_ms") or 0.0))
            hour = row["event_time"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:00Z")
            per_hour[hour] += 1
            if row["risk_level"] == "High":
                alerts_per_hour[hour] += 1
            label = row.get("label")
            if label not in (None, ""):
                labelled_y.append(int(label))
                labelled_s.append(score)
                labelled_day.append(row["event_time"].astimezone(timezone.utc).date().toordinal())
        flush()

        drift = features.report(self.config.psi_warn, self.config.psi_alert) if features else {}
        score_array = np.asarray(scores)
        score_drift = None
        if score_ref is not None and score_array.size:
            counts = score_ref.counts(score_array)
            score_drift = {"psi": population_stability_index(np.asarray(score_ref.proportions), counts / counts.sum())}
            score_drift["status"] = ("alert" if score_drift["psi"] >= self.config.psi_alert else
                                     "warn" if score_drift["psi"] >= self.config.psi_warn else "ok")
        alert_rate = float(np.mean(score_array > thresholds["high"])) if score_array.size else None
        reference_alert_rate = reference.get("alert_rate")
        alert_rate_ratio = (alert_rate / reference_alert_rate) if alert_rate is not None and reference_alert_rate else None

        counts, edges = np.histogram(score_array, bins=20, range=(0.0, 1.0))
        score_distribution = {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}
        y = np.asarray(labelled_y, dtype=np.int8)
        performance = summarize(y, np.asarray(labelled_s), np.asarray(labelled_day), thresholds, self.config.top_k) if y.size else None
        return {
            "window": {"start": start.isoformat(), "end": now.isoformat(), "decisions": rows, "labelled": int(y.size)},
            "model_version": manifest.get("version") if manifest else None,
            "drift": {"features": drift, "score": score_drift, "alert_rate": alert_rate,
                      "reference_alert_rate": reference_alert_rate, "alert_rate_ratio": alert_rate_ratio},
            "performance": performance,
            "score_distribution": score_distribution,
            "latency_ms": percentiles(np.asarray(latencies), (50, 95, 99)),
            "volume_per_hour": dict(sorted(per_hour.items())),
            "alert_rate_per_hour": {h: alerts_per_hour[h] / n for h, n in sorted(per_hour.items())},
        }

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
        hourly: dict[str, Counter] = {}
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
