"""Merchant risk: what a merchant's recent traffic says, from labels known in time and from
signals that need no labels at all.

One definition, used by the monitoring timer (which stores each merchant's hourly
history in Table Storage) and by training's replay (which rebuilds it point in time), so
both give the same values; a test proves it.

For a transaction at time T the values are taken *as of* the start of T's UTC hour
(``as_of``), with ``D`` the label delay (the model's ``merchant_label_delay_days``):

Label-based, delay-shifted as in the fraud-ML literature (a window whose labels have
had time to arrive):

* ``merchant_fraud_count_w``  transactions of the merchant with event time in
  ``[as_of - D - w, as_of - D)`` labelled fraud, counting a label only once known by
  ``as_of`` (at its ``labelled_at``, or at event time + D when the label does not say);
* ``merchant_fraud_rate_w``   that count / the merchant's transactions in the same window
  (-1 when there were none), for w = 1, 7 and 30 days;
* ``merchant_recent_confirmed_frauds``  frauds in ``[as_of - D, as_of)`` already confirmed
  by ``as_of`` (analyst verdicts arrive within hours: they count at once).

Label-free, so a breach shows on its first day (windows ``[as_of - w, as_of)``):

* ``merchant_count_1h``, ``_24h``, ``_30d`` and ``merchant_volume_ratio_24h`` (the last
  day's count against the 30-day daily mean);
* ``merchant_new_device_share_1h/_24h/_30d``  share of transactions made from a device
  the customer had not used before;
* ``merchant_first_visit_share_1h/_24h/_30d``  share made by customers paying this
  merchant for the first time;
* ``merchant_amount_ratio_1h/_24h``  mean amount in the window against the 30-day mean.

Hourly buckets (count, amount sum, new-device count, first-visit count) keep the state
small and the as-of cut exact. The values only change when the hour changes, so they are
computed once per merchant and hour and cached until the history changes.

Known fraud is kept as counts, not as a list of transaction ids (which outgrew a Table
property's 64 KiB at ~700 frauds a month): frauds per event hour (the label windows are cut
at hours, so days would change the values), each fraud held with the hour by which it is
known (``pending``) until that hour is a day behind the history's last recount, when it
joins the plain per-hour counts (``fraud_hours``). Values as of any hour from the settled
hour on are exactly those of the id list; a transaction scored more than a day late sees
the labels known by then. Old hours are dropped on write (``KEEP_HOURS``). A fraud counts
once: each event day keeps a set of 30-bit fingerprints of its frauds' transaction ids, so
a label joined twice (a crash before the join marked it, or a chargeback after an
analyst's verdict) changes nothing; the first report says when it became known.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Mapping

HOUR = 3600
DAY = 86400
WINDOW_DAYS = (1, 7, 30)
DEFAULT_LABEL_DELAY_DAYS = 7.0
MAX_LABEL_DELAY_DAYS = 9
BASELINE_HOURS = 30 * 24
KEEP_HOURS = (30 + MAX_LABEL_DELAY_DAYS + 1) * 24  # the longest shifted window, plus its delay
SETTLE_AFTER_HOURS = 24  # a fraud's known time is kept until it is this far behind the last recount
SEEN_SHARDS = 4  # the fingerprint sets, by event day, over this many properties
MAX_PROPERTY_CHARS = 32_000  # a Table string property: 64 KiB as UTF-16
# 30 bits per fraud. Two frauds of one merchant's event day with the same 30 bits would count
# once: at 170 frauds a day (5,000 a month) about once in 75,000 merchant-days.
FINGERPRINT_CHARS = 5

LABEL_FEATURES = (
    tuple(f"merchant_fraud_rate_{d}d" for d in WINDOW_DAYS)
    + tuple(f"merchant_fraud_count_{d}d" for d in WINDOW_DAYS)
    + ("merchant_recent_confirmed_frauds",)
)
LABEL_FREE_FEATURES = (
    "merchant_count_1h", "merchant_count_24h", "merchant_count_30d", "merchant_volume_ratio_24h",
    "merchant_new_device_share_1h", "merchant_new_device_share_24h", "merchant_new_device_share_30d",
    "merchant_first_visit_share_1h", "merchant_first_visit_share_24h", "merchant_first_visit_share_30d",
    "merchant_amount_ratio_1h", "merchant_amount_ratio_24h",
)
MERCHANT_FEATURES = LABEL_FEATURES + LABEL_FREE_FEATURES
UNKNOWN = -1.0
NO_MERCHANT = ([UNKNOWN] * 3 + [0.0] * 3 + [0.0]
               + [0.0, 0.0, 0.0, UNKNOWN] + [UNKNOWN] * 6 + [UNKNOWN] * 2)
assert len(NO_MERCHANT) == len(MERCHANT_FEATURES)

# One hour of a merchant's traffic: [transactions, amount sum in cents, from new devices, first visits]
COUNT, AMOUNT, NEW_DEVICE, FIRST_VISIT = range(4)
_FIELDS = ("counts", "amounts", "new_devices", "first_visits")


def as_of_hour(t: float) -> float:
    return (t // HOUR) * HOUR


def label_known_at(event_time: float, labelled_at: float | None, delay_days: float) -> float:
    return labelled_at if labelled_at is not None else event_time + delay_days * DAY


@dataclass(frozen=True)
class MerchantVisit:
    """What one transaction adds to its merchant's hour (derived from its served features)."""

    amount: float
    new_device: bool
    first_visit: bool


def _visit_stats(visit: MerchantVisit) -> tuple[int, int, int, int]:
    # the amount in cents: exact, whatever the order of addition
    return 1, round(visit.amount * 100), int(visit.new_device), int(visit.first_visit)


def tally_visit(hours: dict[int, list[int]], t: float, visit: MerchantVisit) -> int:
    """Add one visit to its hour's stats (the history's update and the timer's recount); the hour."""
    h = int(t // HOUR)
    stats = hours.setdefault(h, [0, 0, 0, 0])
    for i, v in enumerate(_visit_stats(visit)):
        stats[i] += v
    return h


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else UNKNOWN


def _mean_ratio(amount: float, count: float, base_amount: float, base_count: float) -> float:
    if count <= 0 or base_count <= 0 or base_amount <= 0:
        return UNKNOWN
    return (amount / count) / (base_amount / base_count)


def fraud_fingerprint(transaction_id: str) -> str:
    """30 bits of the id's SHA-256, base64url: what a day's set of counted frauds holds."""
    return base64.urlsafe_b64encode(hashlib.sha256(transaction_id.encode()).digest()[:6]).decode()[:FINGERPRINT_CHARS]


@dataclass
class MerchantHistory:
    hours: dict[int, list[int]] = field(default_factory=dict)  # hour index (t // 3600) -> hour stats
    # frauds known by the end of hour `settled`, counted per event hour
    fraud_hours: dict[int, int] = field(default_factory=dict)
    # the others: (event hour, first hour end at which known) -> frauds
    pending: dict[tuple[int, int], int] = field(default_factory=dict)
    seen: dict[int, set[str]] = field(default_factory=dict)  # event day -> fingerprints of its counted frauds
    settled: int = 0  # hour index: every fraud known by then is in fraud_hours
    _cached: tuple[int, int, list[float]] | None = field(default=None, repr=False, compare=False)
    # the hours in order and the running totals before each (rebuilt when an older hour changes)
    _keys: list[int] | None = field(default=None, repr=False, compare=False)
    _prefix: list[list[int]] = field(default_factory=list, repr=False, compare=False)

    def _changed(self) -> None:
        self._cached = None
        self._keys = None

    # -- updates ---------------------------------------------------------------------------
    def add_visit(self, t: float, visit: MerchantVisit) -> None:
        h = tally_visit(self.hours, t, visit)
        keys = self._keys
        if keys is not None and keys and h < keys[-1]:
            self._keys = None  # a late event: rebuild the running totals when next asked
        elif keys is not None:  # the usual case in replay: the latest hour, or a new one after it
            if not keys or h > keys[-1]:
                keys.append(h)
                self._prefix.append(list(self._prefix[-1]))
            last = self._prefix[-1]
            for i, v in enumerate(_visit_stats(visit)):
                last[i] += v
        if self._cached is not None and h < self._cached[0]:
            self._cached = None  # a late event inside the cached windows

    def add_fraud(self, transaction_id: str, t: float, known_at: float) -> bool:
        """Count a fraud (event time ``t``, label known at ``known_at``); False if already counted."""
        event_hour = int(t // HOUR)
        day = self.seen.setdefault(event_hour // 24, set())
        fingerprint = fraud_fingerprint(transaction_id)
        if fingerprint in day:
            return False
        day.add(fingerprint)
        # known by the end of hour E  <=>  known_at <= E * HOUR; a window ending at E holds only
        # events before E, so a label known before its event's hour ended is known at event_hour + 1
        known_hour = max(math.ceil(known_at / HOUR), event_hour + 1)
        if known_hour <= self.settled:
            self.fraud_hours[event_hour] = self.fraud_hours.get(event_hour, 0) + 1
        else:
            self.pending[(event_hour, known_hour)] = self.pending.get((event_hour, known_hour), 0) + 1
        self._cached = None  # the hourly sums stand
        return True

    def frauds_known(self, start: int, end: int, known_by: int) -> int:
        """Frauds with event hour in [start, end) known by the end of hour ``known_by`` (exact
        from hour ``settled`` on)."""
        settled = sum(n for h, n in self.fraud_hours.items() if start <= h < end)
        return settled + sum(n for (h, known), n in self.pending.items() if start <= h < end and known <= known_by)

    def recount(self, hourly: Mapping[int, list[int]], first_hour: int, as_of: float) -> None:
        """Replace the stats of hours [first_hour, as_of) with ``hourly`` (recounted from the
        audit log, so late events are included and a repeated recount changes nothing)."""
        end = int(as_of // HOUR)
        for h in range(first_hour, end):
            self.hours.pop(h, None)
        for h, stats in hourly.items():
            if first_hour <= h < end:
                self.hours[h] = [int(v) for v in stats]
        self.prune(as_of)

    def prune(self, now: float) -> None:
        """Drop the hours no window reaches any more, and settle the frauds known a day before ``now``."""
        oldest = int(now // HOUR) - KEEP_HOURS
        self.hours = {h: c for h, c in self.hours.items() if h >= oldest}
        self.settled = max(self.settled, int(now // HOUR) - SETTLE_AFTER_HOURS)
        fraud_hours = {h: n for h, n in self.fraud_hours.items() if h >= oldest}
        pending: dict[tuple[int, int], int] = {}
        for (h, known), n in self.pending.items():
            if h < oldest:
                continue
            if known <= self.settled:
                fraud_hours[h] = fraud_hours.get(h, 0) + n
            else:
                pending[(h, known)] = n
        self.fraud_hours, self.pending = fraud_hours, pending
        self.seen = {d: s for d, s in self.seen.items() if d >= oldest // 24}
        self._changed()

    # -- values ----------------------------------------------------------------------------
    def _sum(self, start: int, end: int) -> list[int]:
        """Stats summed over hours [start, end): a difference of two prefix sums."""
        if self._keys is None:
            self._keys = sorted(self.hours)
            self._prefix = [[0, 0, 0, 0]]
            for h in self._keys:
                self._prefix.append([a + b for a, b in zip(self._prefix[-1], self.hours[h])])
        i, j = bisect_left(self._keys, start), bisect_left(self._keys, end)
        return [b - a for a, b in zip(self._prefix[i], self._prefix[j])]

    def features(self, as_of: float, delay_days: float = DEFAULT_LABEL_DELAY_DAYS) -> list[float]:
        """The values of ``MERCHANT_FEATURES`` as of ``as_of`` (taken to its hour)."""
        end = int(as_of // HOUR)
        shift = int(round(min(delay_days, MAX_LABEL_DELAY_DAYS) * 24))
        if self._cached is not None and self._cached[:2] == (end, shift):
            return list(self._cached[2])
        label_end = end - shift
        rates, fraud_counts = [], []
        for days in WINDOW_DAYS:
            start = label_end - days * 24
            count = self._sum(start, label_end)[COUNT]
            frauds = self.frauds_known(start, label_end, end)
            rates.append(frauds / count if count else UNKNOWN)
            fraud_counts.append(float(frauds))
        recent = self.frauds_known(label_end, end, end)

        h1, h24, d30 = self._sum(end - 1, end), self._sum(end - 24, end), self._sum(end - BASELINE_HOURS, end)
        daily_mean = d30[COUNT] / 30.0
        values = [
            *(float(r) for r in rates), *fraud_counts, float(recent),
            float(h1[COUNT]), float(h24[COUNT]), float(d30[COUNT]),
            h24[COUNT] / daily_mean if daily_mean > 0 else UNKNOWN,
            _share(h1[NEW_DEVICE], h1[COUNT]), _share(h24[NEW_DEVICE], h24[COUNT]), _share(d30[NEW_DEVICE], d30[COUNT]),
            _share(h1[FIRST_VISIT], h1[COUNT]), _share(h24[FIRST_VISIT], h24[COUNT]), _share(d30[FIRST_VISIT], d30[COUNT]),
            _mean_ratio(h1[AMOUNT], h1[COUNT], d30[AMOUNT], d30[COUNT]),
            _mean_ratio(h24[AMOUNT], h24[COUNT], d30[AMOUNT], d30[COUNT]),
        ]
        values = [float(v) for v in values]
        self._cached = (end, shift, values)
        return list(values)

    # -- storage form: one JSON array per statistic (each well under a Table property's 64 KiB)
    def to_properties(self) -> dict[str, Any]:
        if self.hours:
            base = min(self.hours)
            span = max(self.hours) - base + 1
            columns: list[list[int]] = [[0] * span for _ in _FIELDS]
            for h, stats in self.hours.items():
                for i in range(4):
                    columns[i][h - base] = int(stats[i])
        else:
            base, columns = 0, [[] for _ in _FIELDS]
        props: dict[str, Any] = {"hour_base": int(base)}
        for name, column in zip(_FIELDS, columns):
            props[name] = json.dumps(column, separators=(",", ":"))
        props.update(self._fraud_properties())
        return props

    def _fraud_properties(self) -> dict[str, Any]:
        """Counts, not ids: sparse [hour - base, frauds] and [hour - base, known - hour, frauds],
        and the day-sharded fingerprint sets; each bounded by KEEP_HOURS, well under 64 KiB."""
        fraud_hours, pending_by_hour, settled = dict(self.fraud_hours), dict(self.pending), self.settled
        while True:
            event_hours = list(fraud_hours) + [h for h, _ in pending_by_hour]
            base = min(event_hours) if event_hours else 0
            counts = json.dumps(sorted([h - base, n] for h, n in fraud_hours.items()), separators=(",", ":"))
            pending = json.dumps(sorted([h - base, known - h, n] for (h, known), n in pending_by_hour.items()),
                                 separators=(",", ":"))
            if len(counts) <= MAX_PROPERTY_CHARS and len(pending) <= MAX_PROPERTY_CHARS:
                break
            # Never refused by the table: past a property's size (frauds known at more distinct
            # hours than a recount leaves, or years never pruned) the earliest known half is
            # settled early, or the oldest half of the hours dropped. Values from the settled
            # hour on stay exact.
            if len(pending) > MAX_PROPERTY_CHARS:
                settled = max(settled, sorted(known for _, known in pending_by_hour)[len(pending_by_hour) // 2])
                for (h, known) in [key for key in pending_by_hour if key[1] <= settled]:
                    fraud_hours[h] = fraud_hours.get(h, 0) + pending_by_hour.pop((h, known))
            else:
                for h in sorted(fraud_hours)[:len(fraud_hours) // 2]:
                    del fraud_hours[h]
        props: dict[str, Any] = {
            "fraud_hour_base": int(base), "fraud_settled": int(settled),
            "fraud_counts": counts, "fraud_pending": pending,
            "frauds": "",  # the id list this replaces: emptied, as the table merges properties
        }
        for shard in range(SEEN_SHARDS):
            days = sorted((d for d in self.seen if d % SEEN_SHARDS == shard and self.seen[d]), reverse=True)
            parts, size = [], 0
            for d in days:  # newest first: past the property's size, the oldest days lose their dedup
                part = f"{d}:{''.join(sorted(self.seen[d]))}"
                if size + len(part) + 1 > MAX_PROPERTY_CHARS:
                    break
                parts.append(part)
                size += len(part) + 1
            props[f"frauds_seen_{shard}"] = ";".join(reversed(parts))
        return props

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> "MerchantHistory":
        base = int(props.get("hour_base", 0))
        columns = [json.loads(props.get(name) or "[]") for name in _FIELDS]
        hours = {}
        for offset, stats in enumerate(zip(*columns)):
            if stats[COUNT]:
                hours[base + offset] = [int(v) for v in stats]
        fraud_base = int(props.get("fraud_hour_base") or 0)
        history = cls(hours, settled=int(props.get("fraud_settled") or 0))
        for offset, n in json.loads(props.get("fraud_counts") or "[]"):
            history.fraud_hours[fraud_base + int(offset)] = int(n)
        for offset, delay, n in json.loads(props.get("fraud_pending") or "[]"):
            history.pending[(fraud_base + int(offset), fraud_base + int(offset) + int(delay))] = int(n)
        for shard in range(SEEN_SHARDS):
            for part in filter(None, (props.get(f"frauds_seen_{shard}") or "").split(";")):
                day, prints = part.split(":", 1)
                history.seen[int(day)] = {prints[i:i + FINGERPRINT_CHARS]
                                          for i in range(0, len(prints), FINGERPRINT_CHARS)}
        # a row written before counts per hour: its id list is counted once, then emptied on write
        for txn_id, (t, known) in (json.loads(props.get("frauds") or "{}")).items():
            history.add_fraud(txn_id, float(t), float(known))
        return history


class MerchantRiskReplay:
    """Training's point-in-time merchant risk: ask at each transaction (in time order), then
    add the transaction's visit."""

    def __init__(self, frauds: dict[str, list[tuple[str, float, float]]],
                 delay_days: float = DEFAULT_LABEL_DELAY_DAYS) -> None:
        # merchant -> [(transaction id, event time, known at)] of fraud labels, known up front
        self.histories: dict[str, MerchantHistory] = {}
        self.delay_days = delay_days
        self._frauds = frauds

    def history(self, merchant_id: str) -> MerchantHistory:
        history = self.histories.get(merchant_id)
        if history is None:
            history = self.histories[merchant_id] = MerchantHistory()
            for txn_id, event_time, known in self._frauds.get(merchant_id, []):
                history.add_fraud(txn_id, event_time, known)
        return history

    def values(self, merchant_id: str | None, t: float) -> list[float]:
        if not merchant_id:
            return list(NO_MERCHANT)
        return self.history(merchant_id).features(as_of_hour(t), self.delay_days)

    def add_visit(self, merchant_id: str | None, t: float, visit: MerchantVisit) -> None:
        if merchant_id:
            self.history(merchant_id).add_visit(t, visit)
