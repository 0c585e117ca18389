"""Closing the loop, part 1: join late labels, measure drift and live performance, ask for retraining.

``MonitoringService.run`` is what the timer calls. It reads no decision of the audit log:
the scoring processes keep hourly aggregates of what they decide (``MonitoringAggregator``,
``shared/domain/monitoring_aggregate.py``), and a run adds up the hour rows of its windows
and the labelled decisions (written by the label join), so its cost does not grow with the
traffic. ``shared/service/monitoring_scan.py`` computes the same figures from every audit
row, as the reference the tests and ``bench.monitoring`` compare with.

Windows are whole UTC hours: the fresh window is the ``window_hours`` hours up to and
including the current one; the matured window the ``window_hours`` hours that ended at the
hour ``label_maturity_days`` before now.

Every step is idempotent, so a run that overlaps or repeats changes nothing twice: a label
already in its transaction's history (same content) adds nothing and the current label is
joined once per change, report names carry the run time, and a retrain request is written
only when the ETag-guarded cooldown state allows it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import numpy as np

from shared.domain.drift import DriftRule
from shared.domain.features import NOT_ALARMED
from shared.domain.labels import MAX_LABELLED_BY, Label, parse_label_file
from shared.domain.merchant_risk import as_of_hour, label_known_at
from shared.domain.monitoring_aggregate import (BinnedOutcomes, HourAggregate, LabelledDecision, ServingReference,
                                                WindowAggregate, binned_outcomes, hour_of, hour_start)
from shared.domain.promotion import Contender, Holdout, PromotionGate
from shared.service.ports import (AuditReadPort, LabelFilesPort, LabelPort, MerchantRiskStorePort,
                                  MonitoringAggregatePort, ReportsPort)

log = logging.getLogger(__name__)

__all__ = ["MonitoringConfig", "MonitoringService", "ServingReference", "MonitorWindows"]


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


@dataclass(frozen=True)
class MonitorWindows:
    """A run's windows as UTC hour ranges ``[first, end)``."""

    fresh: tuple[int, int]
    matured: tuple[int, int]

    @classmethod
    def at(cls, now: datetime, config: MonitoringConfig) -> "MonitorWindows":
        hours = max(int(round(config.window_hours)), 1)
        current = hour_of(now)
        matured_end = hour_of(now - timedelta(days=config.label_maturity_days))
        return cls((current - hours + 1, current + 1), (matured_end - hours, matured_end))


@dataclass
class MonitoringService:
    audit: AuditReadPort
    labels: LabelPort
    label_files: LabelFilesPort
    reports: ReportsPort
    manifest: Callable[[], dict[str, Any] | None]  # the serving model's manifest
    aggregates: MonitoringAggregatePort | None = None  # the scoring processes' hourly aggregates
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
            parsed = [replace(label, labelled_by=f"file:{name}"[:MAX_LABELLED_BY]) for label in parsed]
            self.labels.put(parsed, self.clock())
            self.labels.record_file(name, etag, len(parsed), bad)
            files, labels, rejected = files + 1, labels + len(parsed), rejected + len(bad)
            if bad:
                log.warning("label file %s: %d lines rejected, first: %s", name, len(bad), bad[0])
        return {"files": files, "labels": labels, "rejected_lines": rejected}

    def accept_labels(self, labels: list[Label], labelled_by: str | None = None,
                      labelled_by_id: str | None = None) -> dict[str, Any]:
        """The HTTP path: record, then join at once so analysts see their verdicts. ``labelled_by``
        (the signed-in analyst) is recorded on every label, and a verdict without ``labelled_at``
        is dated now: it was given now, and so a later change of mind is a new history entry."""
        now = self.clock()
        if labelled_by is not None:
            labels = [replace(label, labelled_by=labelled_by[:MAX_LABELLED_BY], labelled_by_id=labelled_by_id or "",
                              labelled_at=label.labelled_at or now) for label in labels]
        current = self.labels.put(labels, now)
        # only the rows just named that wait (point look-ups, no scan of every waiting label); one
        # that stands joined with the same value needs nothing
        outcome = self.join_labels([row for row in current if row.get("status") != "joined"])
        return {**outcome, "current": [current_label_view(row) for row in current]}

    def join_labels(self, awaiting: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Join labels into the audit log: ``awaiting`` label rows, or every label not yet joined."""
        if awaiting is None:
            awaiting = list(self.labels.awaiting())
        located = self.audit.locate([row["RowKey"] for row in awaiting])
        # an id-index row is written (claimed) before the profile commit: it names a decision only
        # once the decision row exists; until then the label waits like one for an unknown id
        scored = self.audit.scored([(where.audit_pk, txn_id) for txn_id, where in located.items()]) if located else set()
        located = {txn_id: where for txn_id, where in located.items() if txn_id in scored}
        to_audit, marks, unknown, frauds = [], [], [], []
        decided: list[LabelledDecision] = []
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
                                                          "label_source": row.get("source", ""),
                                                          "labelled_by": row.get("labelled_by") or ""}))
            if where.fraud_score is not None and where.event_time:
                decided.append(LabelledDecision(txn_id, where.customer_id, datetime.fromisoformat(where.event_time),
                                                int(row["label"]), where.fraud_score, where.model_version,
                                                where.shadow_version, where.shadow_score))
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
        if decided and self.aggregates is not None:
            self.aggregates.put_labelled(decided)
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
        window = WindowAggregate(first_hour, int(as_of // 3600))
        for aggregate in self._aggregates(window.first_hour, window.end_hour):
            window.add(aggregate)
        return self.refresh_merchant_risk(now, window.merchant_hourly(window.first_hour, window.end_hour), hours)

    # -- drift and performance ------------------------------------------------------------
    def _aggregates(self, first_hour: int, end_hour: int) -> Iterator[HourAggregate]:
        if self.aggregates is None or end_hour <= first_hour:
            return
        for document in self.aggregates.read(first_hour, end_hour):
            for aggregate in document["aggregates"]:
                yield HourAggregate.from_dict(aggregate)

    def _labelled(self, first_hour: int, end_hour: int) -> list[LabelledDecision]:
        if self.aggregates is None or end_hour <= first_hour:
            return []
        return list(self.aggregates.read_labelled(first_hour, end_hour))

    def evaluate(self, now: datetime, merchant_hourly: dict[str, dict[int, list[int]]] | None = None) -> dict[str, Any]:
        """Drift and provisional performance over the fresh window, performance over the matured
        one, the shadow's evidence, and (into ``merchant_hourly`` when given) the merchants'
        hourly stats for the recount: all from the hour aggregates and the labelled decisions."""
        started = time.perf_counter()
        reference = ServingReference.from_manifest(self.manifest())
        windows = MonitorWindows.at(now, self.config)
        fresh, matured = WindowAggregate(*windows.fresh), WindowAggregate(*windows.matured)
        first_hour, as_of = self.merchant_window(now)
        recount = WindowAggregate(first_hour, int(as_of // 3600))
        ranges = [(min(fresh.first_hour, recount.first_hour) if merchant_hourly is not None else fresh.first_hour,
                   fresh.end_hour), (matured.first_hour, matured.end_hour)]
        if ranges[1][0] < ranges[0][1] and ranges[1][1] > ranges[0][0]:  # overlapping: one read
            ranges = [(min(ranges[0][0], ranges[1][0]), max(ranges[0][1], ranges[1][1]))]
        labelled: list[LabelledDecision] = []
        for lo, hi in ranges:
            for aggregate in self._aggregates(lo, hi):
                fresh.add(aggregate)
                matured.add(aggregate)
                if merchant_hourly is not None:
                    recount.add(aggregate)
            labelled.extend(self._labelled(lo, hi))
        if merchant_hourly is not None:
            merchant_hourly.update(recount.merchant_hourly(recount.first_hour, recount.end_hour))
        provisional = binned_outcomes(fresh, labelled)
        shadow = self.shadow_manifest() if self.shadow_manifest else None
        return {
            "window": {"start": hour_start(fresh.first_hour).isoformat(), "end": now.isoformat(), "decisions": fresh.rows,
                       "labelled": provisional.labelled},
            "model_version": reference.version,
            "warming_up": warming_up(fresh.versions(), reference.version),
            "drift": self._drift(fresh, reference),
            "performance": self._performance(binned_outcomes(matured, labelled), reference, "matured", matured),
            "performance_provisional": self._performance(provisional, reference, "provisional", fresh),
            "shadow": self._shadow(matured, labelled, reference, shadow),
            "score_distribution": fresh.score_distribution(),
            "latency_ms": fresh.latency_percentiles((50, 95, 99)),
            "volume_per_hour": fresh.volume_per_hour(),
            "alert_rate_per_hour": fresh.alert_rate_per_hour(),
            "decisions_by_risk_level": fresh.by("risk_levels"),
            "decisions_by_action": fresh.by("actions"),
            "aggregates": {"documents": fresh.documents + matured.documents, "labelled_decisions": len(labelled),
                           "seconds": round(time.perf_counter() - started, 3),
                           "method": "the scoring processes' hourly aggregates and the labelled decisions; "
                                     "no audit row is read"},
        }

    def _drift(self, window: WindowAggregate, reference: ServingReference) -> dict[str, Any]:
        rule = self.config.drift_rule
        features, score = window.drift(reference)
        alert_rate = window.alert_rate(reference.thresholds["high"]) if "high" in reference.thresholds else None
        expected = reference.alert_rate
        return {"features": features.report(rule) if features is not None else {},
                "score": score.report(rule)["score"] if score is not None else None,
                "alert_rate": alert_rate, "reference_alert_rate": expected,
                "alert_rate_ratio": (alert_rate / expected) if alert_rate is not None and expected else None,
                "method": ("the serving model's own decisions: each feature's window histogram against the model's "
                           "reference histogram reweighted to the window's mix of hours of the day and weekdays; "
                           f"bins merged until each expects {rule.min_expected_per_bin:g}+ rows; PSI warn "
                           f"{rule.psi_warn}, alert {rule.psi_alert}; features that grow with time since training are "
                           "reported, never alarmed on")}

    def _performance(self, outcomes: BinnedOutcomes, reference: ServingReference, view: str,
                     window: WindowAggregate) -> dict[str, Any] | None:
        if not outcomes.rows:
            return None
        note = ("labels are still arriving for this window: unlabelled decisions count as legitimate, so "
                "precision is understated; not used to judge the model" if view == "provisional" else
                f"older than the label maturity ({self.config.label_maturity_days:g} days): unlabelled decisions "
                "count as legitimate")
        return {"view": view, "note": note, "start": hour_start(window.first_hour).isoformat(),
                "end": hour_start(window.end_hour).isoformat(),
                **outcomes.summary(reference.thresholds, self.config.top_k),
                "labelled_without_aggregate": outcomes.unmatched}

    def _shadow(self, matured: WindowAggregate, labelled: list[LabelledDecision], reference: ServingReference,
                shadow: dict[str, Any] | None) -> dict[str, Any] | None:
        """The champion and the shadow challenger on the matured decisions both scored, judged
        by the promotion gate (each at its own thresholds; no training windows to check: the
        scores were served before any label existed)."""
        if not shadow:
            return None
        version = shadow.get("version")
        champion = binned_outcomes(matured, labelled, shadow_version=version)
        challenger = binned_outcomes(matured, labelled, shadow_version=version, use_shadow=True)
        out: dict[str, Any] = {"version": version, "start": hour_start(matured.first_hour).isoformat(),
                               "end": hour_start(matured.end_hour).isoformat(), "rows": champion.rows}
        if not champion.rows:
            out["note"] = "no matured decision was scored by this shadow yet"
            return out
        gate = self.gate or PromotionGate(k=self.config.top_k)
        out["verdict"] = gate.judge(
            _holdout(champion),
            Contender(version, challenger.scores, dict(shadow.get("thresholds") or {}), rows=_holdout(challenger),
                      card_precision_of=challenger.card_precision),
            Contender(reference.version, champion.scores, reference.thresholds, card_precision_of=champion.card_precision))
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
        steps: dict[str, float] = {}

        def step(name: str, since: float) -> float:
            steps[name] = round(time.perf_counter() - since, 3)
            return time.perf_counter()

        now = now or self.clock()
        ingested = self.ingest_label_files()
        mark = step("label_files", started)
        joined = self.join_labels()
        mark = step("label_join", mark)
        hourly: dict[str, dict[int, list[int]]] = {}
        evaluation = self.evaluate(now, hourly if self.merchants is not None else None)
        mark = step("evaluate", mark)
        merchant_risk = self.refresh_merchant_risk(now, hourly)
        mark = step("merchant_risk", mark)
        reasons = self.breaches(evaluation)
        report = {"run_at": now.isoformat(), "labels": {**ingested, **joined}, "merchant_risk": merchant_risk,
                  **evaluation, "breaches": reasons, "step_seconds": steps}
        report["retrain_request"] = None
        if reasons and evaluation["warming_up"]:
            report["retrain_withheld"] = f"warming up: {evaluation['warming_up']}"
        elif reasons:
            report["retrain_request"] = self.reports.request_retrain(
                {"requested_at": now.isoformat(), "reasons": reasons, "model_version": evaluation["model_version"],
                 "window": evaluation["window"]}, now, timedelta(hours=self.config.retrain_cooldown_hours))
        report["seconds"] = round(time.perf_counter() - started, 3)
        report["report_blob"] = self.reports.write_report(report, now)
        step("report", mark)
        return report




def current_label_view(row: dict[str, Any]) -> dict[str, Any]:
    """A transaction's current label as an analyst sees it: the value, who gave it, what it was before."""
    previous = row.get("previous_label")
    return {"transaction_id": row["RowKey"], "label": int(row["label"]), "labelled_by": row.get("labelled_by") or "",
            "labelled_at": row.get("labelled_at") or None, "source": row.get("source") or "",
            "previous_label": int(previous) if previous not in (None, "") else None,
            "history": int(row.get("history") or 0), "status": row.get("status")}


def _holdout(outcomes: BinnedOutcomes) -> Holdout:
    return Holdout(outcomes.y, outcomes.days, np.full(outcomes.y.shape, None, dtype=object), weights=outcomes.weights)


def warming_up(versions: dict[str, int], serving: str | None) -> str | None:
    """Why the window cannot judge the serving model yet: some of its decisions were made by
    another model (it changed within the window)."""
    others = {v: n for v, n in versions.items() if v != serving}
    if not others or serving is None:
        return None
    return (f"{sum(others.values())} of the window's {sum(versions.values())} decisions were made by "
            f"{', '.join(sorted(others))}, not the serving {serving}")
