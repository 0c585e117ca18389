"""Merchant risk: a merchant's recent fraud rate and volume, using only labels known in time.

One definition, used by the monitoring timer (which stores it per merchant in Table
Storage) and by training's replay (which recomputes it point in time), so both give the
same values; a test proves it.

For a transaction at time T the values are taken *as of* the start of T's UTC hour:

* ``count_w``  transactions of the merchant with event time in [as_of - w, as_of);
* ``fraud_w``  those of them labelled fraud whose label was known by as_of — at its
  ``labelled_at``, or at event time + the label delay (default 7 days) when the label
  does not say;
* ``rate_w``   fraud_w / count_w (-1 when count_w is 0), for w = 1, 7 and 30 days.

Hourly buckets keep the state small (at most 720 counts and the merchant's fraud list)
and make the as-of cut exact.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

HOUR = 3600
DAY = 86400
WINDOW_DAYS = (1, 7, 30)
KEEP_HOURS = 31 * 24
MERCHANT_FEATURES = tuple(f"merchant_fraud_rate_{d}d" for d in WINDOW_DAYS) + tuple(
    f"merchant_count_{d}d" for d in WINDOW_DAYS)
NO_MERCHANT = [-1.0] * len(WINDOW_DAYS) + [0.0] * len(WINDOW_DAYS)


def as_of_hour(t: float) -> float:
    return (t // HOUR) * HOUR


@dataclass
class MerchantHistory:
    hours: dict[int, int] = field(default_factory=dict)  # hour index (t // 3600) -> transactions
    frauds: dict[str, list[float]] = field(default_factory=dict)  # transaction id -> [event time, known at]

    def add_transaction(self, t: float) -> None:
        h = int(t // HOUR)
        self.hours[h] = self.hours.get(h, 0) + 1

    def set_hour(self, hour_index: int, count: int) -> None:
        self.hours[hour_index] = count

    def add_fraud(self, transaction_id: str, t: float, known_at: float) -> None:
        self.frauds[transaction_id] = [t, known_at]

    def recount(self, counts: dict[int, int], first_hour: int, as_of: float) -> None:
        """Replace the counts of hours [first_hour, as_of) with ``counts`` (recounted from the
        audit log, so late events are included and a repeated recount changes nothing)."""
        end = int(as_of // 3600)
        for h in range(first_hour, end):
            self.hours.pop(h, None)
        for h, c in counts.items():
            if first_hour <= h < end:
                self.set_hour(h, c)
        self.prune(as_of)

    def prune(self, now: float) -> None:
        oldest = int(now // HOUR) - KEEP_HOURS
        self.hours = {h: c for h, c in self.hours.items() if h >= oldest}
        self.frauds = {k: v for k, v in self.frauds.items() if v[0] >= oldest * HOUR}

    def features(self, as_of: float) -> list[float]:
        end = int(as_of // HOUR)
        counts, frauds = [], []
        for days in WINDOW_DAYS:
            start = end - days * 24
            counts.append(sum(c for h, c in self.hours.items() if start <= h < end))
            frauds.append(sum(1 for t, known in self.frauds.values()
                              if start * HOUR <= t < end * HOUR and known <= as_of))
        rates = [f / c if c else -1.0 for f, c in zip(frauds, counts)]
        return [float(r) for r in rates] + [float(c) for c in counts]

    def to_json(self) -> tuple[str, str]:
        return json.dumps(self.hours, separators=(",", ":")), json.dumps(self.frauds, separators=(",", ":"))

    @classmethod
    def from_json(cls, hours: str, frauds: str) -> "MerchantHistory":
        return cls({int(h): int(c) for h, c in json.loads(hours).items()}, json.loads(frauds))


def label_known_at(event_time: float, labelled_at: float | None, delay_days: float) -> float:
    return labelled_at if labelled_at is not None else event_time + delay_days * DAY


class MerchantRiskReplay:
    """Training's point-in-time merchant risk: feed transactions in time order, ask at each."""

    def __init__(self, frauds: dict[str, list[tuple[str, float, float]]]) -> None:
        # merchant -> [(transaction id, event time, known at)] of fraud labels, known up front
        self.histories: dict[str, MerchantHistory] = {}
        self._frauds = frauds

    def features_then_add(self, merchant_id: str | None, t: float) -> list[float]:
        if not merchant_id:
            return list(NO_MERCHANT)
        history = self.histories.get(merchant_id)
        if history is None:
            history = self.histories[merchant_id] = MerchantHistory()
            for txn_id, event_time, known in self._frauds.get(merchant_id, []):
                history.add_fraud(txn_id, event_time, known)
        values = history.features(as_of_hour(t))
        history.add_transaction(t)
        return values

