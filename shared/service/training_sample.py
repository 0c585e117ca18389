"""Writing the bounded training sample as decisions are made and labels are joined.

``TrainingSampleOutlet`` is a ``DecisionOutletPort``: per scoring call it appends the
decisions whose transaction id hashes below ``rate`` (``shared.domain.training_sample``) to
the ``rows`` stream of their event hour, duplicates included (a redelivery's record is the
stored one; the reader drops repeats by transaction id). Nothing included: no storage call.
A failed append raises, so the caller retries the batch.

``add_labels`` is called by the label join with the labels it joined: every verdict goes to
the ``labels`` stream of the decision's event hour (read from the audit partition key, no
extra read), and every fraud whose id is not hash-included is read from the audit log (a
point read) and appended to the ``rows`` stream with inclusion 1.0, so the sample holds
every labelled fraud. Called before the join marks its labels joined: a crash re-joins and
appends again, which the reader's de-duplication absorbs.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from shared.domain.decision_record import Delivery
from shared.domain.training_sample import SampleLabel, SampleRow, included
from shared.service.ports import AuditRowPort, TrainingSampleStorePort

ROWS, LABELS = "rows", "labels"


def event_hour_of_audit_pk(audit_pk: str) -> datetime:
    """The event hour an audit partition key names (``<shard:02d>-<YYYYMMDDHH>``)."""
    return datetime.strptime(audit_pk[-10:], "%Y%m%d%H").replace(tzinfo=timezone.utc)


@dataclass
class TrainingSampleOutlet:
    store: TrainingSampleStorePort
    rate: float
    audit: AuditRowPort | None = None  # for labelled frauds outside the hash sample

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"the training sample rate must be in [0, 1], not {self.rate}")

    def record(self, deliveries: Sequence[Delivery]) -> None:
        """Append the included decisions of one scoring call, one append per hour blob touched."""
        by_hour: dict[datetime, list[str]] = defaultdict(list)
        for delivery in deliveries:
            record = delivery.record
            if record is None or delivery.conflict or not included(record.transaction_id, self.rate):
                continue
            row = SampleRow.of(record, self.rate)
            by_hour[row.hour].append(row.to_line())
        if by_hour:
            self.store.append(ROWS, by_hour)

    def add_labels(self, joined: Sequence[tuple[str, str, Mapping[str, Any]]]) -> dict[str, int]:
        """The label join's joined labels, as it writes them to the audit log: (audit partition
        key, transaction id, {"label", "labelled_at", ...})."""
        labels: dict[datetime, list[str]] = defaultdict(list)
        frauds: list[tuple[str, str]] = []
        for audit_pk, txn_id, fields in joined:
            label = int(fields["label"])
            labels[event_hour_of_audit_pk(audit_pk)].append(
                SampleLabel(txn_id, label, str(fields.get("labelled_at") or "")).to_line())
            if label == 1 and not included(txn_id, self.rate):
                frauds.append((audit_pk, txn_id))
        found = self.audit.decisions(frauds) if frauds and self.audit is not None else {}
        rows: dict[datetime, list[str]] = defaultdict(list)
        for _, txn_id in frauds:
            entity = found.get(txn_id)
            if entity is not None and entity.get("features"):
                row = SampleRow.from_audit(entity, self.rate)
                rows[row.hour].append(row.to_line())
        forced = sum(len(v) for v in rows.values())
        missing = len(frauds) - forced  # located a moment ago, so only a decision removed since
        if rows:
            self.store.append(ROWS, rows)
        if labels:
            self.store.append(LABELS, labels)
        return {"labels": sum(len(v) for v in labels.values()), "frauds_added": forced, "frauds_missing": missing}
