"""The merchant label features as the transaction-id list computed them before they were
stored as counts per hour (issue #16): the reference the counts must equal."""
from __future__ import annotations

from bisect import bisect_left

from shared.domain.merchant_risk import HOUR, MAX_LABEL_DELAY_DAYS, UNKNOWN, WINDOW_DAYS


def id_list_label_values(frauds: dict[str, tuple[float, float]], visits: list[float], as_of: float,
                         delay_days: float) -> list[float]:
    """The label features as the id list computed them (the code this replaces), as a reference:
    ``frauds`` transaction id -> (event time, known at); ``visits`` the event times, sorted."""
    end = int(as_of // HOUR)
    shift = int(round(min(delay_days, MAX_LABEL_DELAY_DAYS) * 24))
    known_by, label_end = end * HOUR, end - shift
    rates, counts = [], []
    for days in WINDOW_DAYS:
        start = label_end - days * 24
        count = bisect_left(visits, label_end * HOUR) - bisect_left(visits, start * HOUR)
        n = sum(1 for t, known in frauds.values() if start * HOUR <= t < label_end * HOUR and known <= known_by)
        rates.append(n / count if count else UNKNOWN)
        counts.append(float(n))
    recent = sum(1 for t, known in frauds.values() if label_end * HOUR <= t < end * HOUR and known <= known_by)
    return [*map(float, rates), *counts, float(recent)]
