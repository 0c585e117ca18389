"""Retention: delete what each store holds past its retention, a bounded amount per run.

One run, in this order (personal data first, the bulk last):

1. dead letters filed under days before the dead-letter cut-off (they hold raw payloads);
2. label rows received before the label cut-off: history entries, and current labels whose
   latest entry was (the label history is append-only: retention is what deletes it);
3. the audit log's decision rows in hours before the audit cut-off: per page of keys, their
   id-index entries first, then the rows, so a crash in between leaves rows that the next run
   finds again (never an index entry pointing at nothing it could find);
4. the monitoring aggregates' hours before the audit cut-off;
5. per profile store: ``txn:`` rows applied before the profile cut-off (also of active
   customers: no redelivery can ask for them any more), then the profiles of customers
   inactive since the cut-off, each deleted only if unchanged since it was listed.

Every step lists keys a page at a time and deletes them; deleted rows no longer match, so
the next page (and the next run, when the budget ran out) starts where this one stopped.
Deleting is idempotent: a second run over the same data deletes nothing and raises nothing.
A failing step is logged and reported; the other steps still run.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from shared.domain.retention import RetentionCutoffs, RetentionPolicy
from shared.service.ports import (AuditRetentionPort, DeadLetterRetentionPort, HourlyRowsRetentionPort,
                                  LabelRetentionPort, ProfileRetentionPort)

log = logging.getLogger(__name__)

STEPS = ("dead_letters", "labels", "audit", "aggregates", "profiles")


@dataclass(frozen=True)
class RetentionBudget:
    """How much one run may do: keys listed per step, seconds for the whole run (checked
    between pages), keys per page. What is left is found by the next run."""

    max_entities_per_step: int = 20_000_000  # a guard: the seconds bound a run
    max_seconds: float = 25 * 60.0  # under the host's 30-minute function timeout
    page: int = 1000


@dataclass
class _Step:
    listed: int = 0
    complete: bool = False


class RetentionService:
    def __init__(self, policy: RetentionPolicy, audit: AuditRetentionPort, labels: LabelRetentionPort,
                 dead_letters: DeadLetterRetentionPort, profile_stores: Sequence[ProfileRetentionPort],
                 aggregates: HourlyRowsRetentionPort | None = None, budget: RetentionBudget = RetentionBudget(),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.audit = audit
        self.labels = labels
        self.dead_letters = dead_letters
        self.profile_stores = list(profile_stores)
        self.aggregates = aggregates
        self.budget = budget
        self._monotonic = monotonic
        self._deadline = 0.0

    def run(self, now: datetime | None = None) -> dict[str, Any]:
        """Delete what is past retention as of ``now``; returns (and logs) what was deleted per store."""
        started = self._monotonic()
        self._deadline = started + self.budget.max_seconds
        cutoffs = self.policy.cutoffs(now or datetime.now(timezone.utc))
        deleted = {"dead_letters": 0, "labels": 0, "audit_index": 0, "audit_decisions": 0, "aggregates": 0,
                   "profile_transactions": 0, "profiles": 0}
        report: dict[str, Any] = {"cutoffs": cutoffs.as_dict(), "deleted": deleted, "profiles_kept": 0,
                                  "complete": {}, "errors": {}}
        steps: dict[str, Callable[[RetentionCutoffs, dict[str, Any]], bool]] = {
            "dead_letters": self._dead_letters, "labels": self._labels, "audit": self._audit,
            "aggregates": self._aggregates, "profiles": self._profiles}
        for name in STEPS:
            try:
                report["complete"][name] = steps[name](cutoffs, report)
            except Exception as exc:  # one store's outage must not stop the others
                log.exception("retention step %s failed", name)
                report["complete"][name] = False
                report["errors"][name] = f"{type(exc).__name__}: {exc}"[:500]
        report["seconds"] = round(self._monotonic() - started, 3)
        return report

    # -- the loop every step shares --------------------------------------------------------
    def _drain(self, find: Callable[[int], Sequence[Any]], delete: Callable[[Sequence[Any]], None]) -> bool:
        """List a page, delete it, until nothing is left (True) or the budget is spent (False)."""
        step = _Step()
        while True:
            want = min(self.budget.page, self.budget.max_entities_per_step - step.listed)
            if want <= 0 or self._monotonic() >= self._deadline:
                return False
            keys = find(want)
            if keys:
                delete(keys)
                step.listed += len(keys)
            if len(keys) < want:
                return True

    # -- the steps ---------------------------------------------------------------------------
    def _dead_letters(self, cutoffs: RetentionCutoffs, report: dict[str, Any]) -> bool:
        deleted = report["deleted"]

        def delete(names: Sequence[str]) -> None:
            deleted["dead_letters"] += self.dead_letters.discard(names)

        return self._drain(lambda n: self.dead_letters.expired_letters(cutoffs.dead_letter_day, n), delete)

    def _labels(self, cutoffs: RetentionCutoffs, report: dict[str, Any]) -> bool:
        deleted = report["deleted"]

        def delete(keys: Sequence[tuple[str, str]]) -> None:
            deleted["labels"] += self.labels.delete_labels(keys)

        return self._drain(lambda n: self.labels.expired_labels(cutoffs.labels, n), delete)

    def _audit(self, cutoffs: RetentionCutoffs, report: dict[str, Any]) -> bool:
        deleted = report["deleted"]

        def delete(keys: Sequence[tuple[str, str]]) -> None:
            deleted["audit_index"] += self.audit.delete_index([transaction_id for _, transaction_id in keys])
            deleted["audit_decisions"] += self.audit.delete_decisions(keys)

        return self._drain(lambda n: self.audit.expired_decisions(cutoffs.audit_hour, n), delete)

    def _aggregates(self, cutoffs: RetentionCutoffs, report: dict[str, Any]) -> bool:
        if self.aggregates is None:
            return True
        deleted = report["deleted"]
        aggregates = self.aggregates

        def delete(keys: Sequence[tuple[str, str]]) -> None:
            deleted["aggregates"] += aggregates.delete_rows(keys)

        return self._drain(lambda n: aggregates.expired_hours(cutoffs.audit_hour, n), delete)

    def _profiles(self, cutoffs: RetentionCutoffs, report: dict[str, Any]) -> bool:
        deleted = report["deleted"]
        complete = True
        for store in self.profile_stores:
            def delete_rows(keys: Sequence[tuple[str, str]], store: ProfileRetentionPort = store) -> None:
                deleted["profile_transactions"] += store.delete_transactions(keys)

            def remove(found: Sequence[tuple[str, str]], store: ProfileRetentionPort = store) -> None:
                removed = store.remove_profiles(found)
                deleted["profiles"] += removed
                report["profiles_kept"] += len(found) - removed

            complete &= self._drain(lambda n, s=store: s.expired_transactions(cutoffs.profiles, n), delete_rows)
            complete &= self._drain(lambda n, s=store: s.inactive_profiles(cutoffs.profiles, n), remove)
        return complete
