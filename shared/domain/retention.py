"""How long each store keeps what it holds, and the cut-offs that follow from a moment.

Pure rules, no I/O: the retention service asks each store for what lies before these
cut-offs. Every cut-off is conservative: a store deletes only what is wholly older than its
retention (a whole UTC hour of audit rows, a whole day of dead letters), never a row that is
still inside its window.

The floors say why a retention may not be shorter, whatever a bank sets:

* audit rows (and their id index) carry the label join: a label is joined to its decision
  through the index, and card chargebacks arrive up to ``CHARGEBACK_DAYS`` after the
  payment. Deleting earlier would leave those labels ``unknown`` forever;
* a customer's ``txn:`` rows are the exactly-once record of the transactions applied to the
  profile: a redelivered event finds its decision there. Event Hubs keeps an event at most
  ``MAX_REDELIVERY_DAYS`` after it was enqueued (and it is applied after it is enqueued), so
  a row older than that can never be asked for again. The same limit removes the profile of
  a customer inactive that long; it is also well past the longest feature window
  (``LONGEST_FEATURE_WINDOW_DAYS``), so every windowed feature of such a profile is empty.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from shared.domain.features import DAY, RINGS

LONGEST_FEATURE_WINDOW_DAYS = max(width * size for _, width, size in RINGS) / DAY  # the 30-day ring
CHARGEBACK_DAYS = 120.0  # card schemes' longest ordinary dispute window
MAX_REDELIVERY_DAYS = 90.0  # Event Hubs' longest event retention (Premium, Dedicated)


class RetentionTooShort(ValueError):
    """A retention setting below the floor the domain needs (the message says which and why)."""


def utc_hour_key(moment: datetime) -> str:
    """``YYYYMMDDHH`` of the moment's UTC hour: how the audit log and the monitoring aggregates
    name an hour in their partition keys."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H")


_LETTER_DAY = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/")


def letter_day(blob_name: str) -> date | None:
    """The day a dead letter is filed under (``DeadLetter.blob_name``: ``YYYY/MM/DD/...``, the
    day the event was enqueued, or received when unknown); None for a name of another form,
    which retention leaves alone."""
    found = _LETTER_DAY.match(blob_name)
    if found is None:
        return None
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None


@dataclass(frozen=True)
class RetentionCutoffs:
    """What is old enough to go, as of ``now``: everything strictly before these moments."""

    now: datetime
    audit: datetime
    dead_letters: datetime
    labels: datetime
    profiles: datetime

    @property
    def audit_hour(self) -> str:
        """The first UTC hour kept in the audit log and the monitoring aggregates: partitions of
        earlier hours go (the hour holding the cut-off is kept whole)."""
        return utc_hour_key(self.audit)

    @property
    def dead_letter_day(self) -> date:
        """The first day of dead letters kept: letters filed under earlier days go."""
        return self.dead_letters.astimezone(timezone.utc).date()

    def hour_expired(self, hour_key: str) -> bool:
        return hour_key < self.audit_hour

    def letter_expired(self, blob_name: str) -> bool:
        day = letter_day(blob_name)
        return day is not None and day < self.dead_letter_day

    def as_dict(self) -> dict[str, str]:
        return {"now": self.now.isoformat(), "audit_before_hour": self.audit_hour,
                "dead_letters_before_day": self.dead_letter_day.isoformat(), "labels_before": self.labels.isoformat(),
                "profiles_before": self.profiles.isoformat()}


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each store keeps its data (the ``FRAUD_*_RETENTION_DAYS`` settings and
    ``FRAUD_PROFILE_INACTIVE_DAYS``); refuses a retention below its floor."""

    audit_days: float = 180.0
    dead_letter_days: float = 30.0
    label_days: float = 400.0
    profile_inactive_days: float = 90.0

    def __post_init__(self) -> None:
        floors = {
            "audit_days": (CHARGEBACK_DAYS, "labels are joined to decisions through the audit log's id index and "
                                            f"chargebacks arrive up to {CHARGEBACK_DAYS:g} days later"),
            "profile_inactive_days": (max(MAX_REDELIVERY_DAYS, LONGEST_FEATURE_WINDOW_DAYS),
                                      f"the txn: rows are the exactly-once record and Event Hubs may redeliver an "
                                      f"event up to {MAX_REDELIVERY_DAYS:g} days after it was enqueued; the longest "
                                      f"feature window is {LONGEST_FEATURE_WINDOW_DAYS:g} days"),
        }
        for name, (floor, why) in floors.items():
            if getattr(self, name) < floor:
                raise RetentionTooShort(f"{name} = {getattr(self, name):g} is below {floor:g}: {why}")
        for name in ("dead_letter_days", "label_days"):
            if not getattr(self, name) > 0:
                raise RetentionTooShort(f"{name} must be positive, got {getattr(self, name):g}")

    def cutoffs(self, now: datetime) -> RetentionCutoffs:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        now = now.astimezone(timezone.utc)
        return RetentionCutoffs(
            now=now,
            audit=now - timedelta(days=self.audit_days),
            dead_letters=now - timedelta(days=self.dead_letter_days),
            labels=now - timedelta(days=self.label_days),
            profiles=now - timedelta(days=self.profile_inactive_days),
        )
