"""A merchant's known fraud as counts per hour (issue #16, item 7), not a list of transaction
ids: the label features are exactly those of the id list they replace, a fraud counts once
however often its label is joined, and the stored form stays bounded."""
import json
import random

from merchant_id_list import id_list_label_values
from shared.domain.merchant_risk import (
    DAY, HOUR, KEEP_HOURS, LABEL_FEATURES, MAX_PROPERTY_CHARS, MERCHANT_FEATURES, MerchantHistory, MerchantVisit,
    label_known_at)

START = 1000 * DAY + 7 * HOUR  # not a midnight


def label_values(history: MerchantHistory, as_of: float, delay_days: float) -> list[float]:
    return history.features(as_of, delay_days)[:len(LABEL_FEATURES)]


def merchant_stream(days: int, frauds_per_day: float, seed: int):
    """Visits, and fraud labels each with when it was known and when the label join saw it."""
    rng = random.Random(seed)
    visits, labels = [], []
    t = START
    while t < START + days * DAY:
        t += rng.expovariate(1 / 300)
        visits.append(t)
        if rng.random() < frauds_per_day / (DAY / 300):
            kind = rng.random()
            if kind < 0.4:  # an analyst's verdict, within hours
                labelled_at = t + rng.uniform(0, 30 * HOUR)
            elif kind < 0.5:  # a verdict time exactly on an hour, or dated before the event (bad data)
                labelled_at = (t // HOUR + rng.randrange(0, 5)) * HOUR if rng.random() < 0.5 else t - HOUR
            else:
                labelled_at = None  # a chargeback file: known after the label delay
            known = label_known_at(t, labelled_at, 7.0)
            joined = max(t, labelled_at if labelled_at is not None else t + rng.uniform(0, 12 * DAY))
            labels.append((f"TX-{len(visits)}", t, known, joined))
    return visits, labels


def test_the_hourly_counts_serve_exactly_what_the_id_list_served_as_the_timer_runs():
    """The timer every hour: labels joined so far counted (some twice), old hours dropped and
    known frauds settled, the history stored in its table form and read back; at each hour and for transactions up to a day late, every
    label feature equals the id list's."""
    visits, labels = merchant_stream(days=45, frauds_per_day=12, seed=3)
    labels.sort(key=lambda label: label[3])
    rng = random.Random(8)
    history = MerchantHistory()
    id_list: dict[str, tuple[float, float]] = {}
    v = f = 0
    checked = 0
    for hour in range(int(START // HOUR) + 1, int((START + 45 * DAY) // HOUR) + 1):
        now = hour * HOUR
        while v < len(visits) and visits[v] < now:
            history.add_visit(visits[v], MerchantVisit(100.0, False, False))
            v += 1
        while f < len(labels) and labels[f][3] < now:  # the labels the join has seen by now
            txn_id, t, known, _ = labels[f]
            assert history.add_fraud(txn_id, t, known)
            id_list[txn_id] = (t, known)
            if rng.random() < 0.2:  # joined again (a crash before the join marked it): no change
                assert not history.add_fraud(txn_id, t, known)
            f += 1
        history.prune(now)
        if hour % 4 == 0:  # stored and read back (every 4th run: the visits' columns make it slow)
            history = MerchantHistory.from_properties(history.to_properties())
        # (the id list's own pruning is left out: no window reaches back KEEP_HOURS)
        for late_hours in (0, 1, 23) if hour % 7 == 0 else (0,):
            for delay in (7.0, 2.0):
                as_of = now - late_hours * HOUR
                assert label_values(history, as_of, delay) == id_list_label_values(id_list, visits, as_of, delay), \
                    (hour, late_hours, delay)
                checked += 1
    named = dict(zip(MERCHANT_FEATURES, history.features(START + 45 * DAY, 7.0)))
    assert named["merchant_fraud_count_30d"] > 200 and named["merchant_recent_confirmed_frauds"] > 0
    assert history.settled > 0 and history.pending  # both forms in use
    assert checked > 2000


def test_a_fraud_counts_once_whatever_its_later_labels_say():
    h = MerchantHistory()
    t = START
    hour = int(t // HOUR)
    assert h.add_fraud("T1", t, t + 2 * HOUR)
    assert not h.add_fraud("T1", t, t + 5 * DAY)  # a chargeback after the analyst's verdict: known since the verdict
    assert not h.add_fraud("T1", t, t)
    back = MerchantHistory.from_properties(h.to_properties())
    assert not back.add_fraud("T1", t, t + 2 * HOUR)  # the dedup is stored with the counts
    assert back.add_fraud("T2", t, t + 2 * HOUR)
    assert back.frauds_known(hour, hour + 1, hour + 2) == 2 and back.frauds_known(hour, hour + 1, hour + 1) == 0
    # settled into the plain hourly count a day after it is known: still once
    back.prune(t + 3 * DAY)
    assert back.pending == {} and back.fraud_hours == {hour: 2}
    assert not back.add_fraud("T2", t, t + 2 * HOUR)
    assert back.frauds_known(hour, hour + 1, hour + 80) == 2


def test_a_row_written_as_an_id_list_is_read_as_counts_and_emptied_on_write():
    t = START
    legacy = {"hour_base": 0, "counts": "[]", "amounts": "[]", "new_devices": "[]", "first_visits": "[]",
              "frauds": json.dumps({"T1": [t, t + HOUR], "T2": [t, t + 8 * DAY]})}
    h = MerchantHistory.from_properties(legacy)
    hour = int(t // HOUR)
    assert h.frauds_known(hour, hour + 1, hour + 2) == 1 and h.frauds_known(hour, hour + 1, hour + 8 * 24 + 1) == 2
    assert not h.add_fraud("T1", t, t + HOUR)
    props = h.to_properties()
    assert props["frauds"] == ""  # the table merges properties: the old list is overwritten
    assert MerchantHistory.from_properties({**legacy, **props}) == h


def test_the_stored_form_is_bounded_by_the_windows_not_by_the_number_of_frauds():
    """Two months at 250 frauds a day: only the last KEEP_HOURS are kept, every property well under
    a Table property's 64 KiB (32,000 characters)."""
    h = MerchantHistory()
    rng = random.Random(2)
    for i in range(60 * 250):
        t = START + rng.uniform(0, 60 * DAY)
        h.add_fraud(f"card-{i:09d}-{rng.getrandbits(64):016x}", t, t + rng.choice([2 * HOUR, 7 * DAY]))
    h.prune(START + 60 * DAY)
    props = h.to_properties()
    assert min(h.fraud_hours) >= (START + 60 * DAY) // HOUR - KEEP_HOURS
    assert all(len(v) <= MAX_PROPERTY_CHARS for v in props.values() if isinstance(v, str))
    assert sum(h.fraud_hours.values()) + sum(h.pending.values()) > 9000


def test_a_history_never_pruned_still_fits_a_table_row_exactly_from_its_settled_hour_on():
    """Frauds known at 20,000 different hours and no recount to settle them (a first label file
    for a merchant never counted): the stored form settles the earliest known early rather than
    be refused by the table, and serves the same values from its settled hour on."""
    h = MerchantHistory()
    rng = random.Random(4)
    for i in range(20_000):
        t = START + rng.uniform(0, 40 * DAY)
        h.add_fraud(f"T{i}", t, t + rng.uniform(0, 20 * DAY))
    props = h.to_properties()
    assert all(len(v) <= MAX_PROPERTY_CHARS for v in props.values() if isinstance(v, str))
    stored = MerchantHistory.from_properties(props)
    assert stored.settled > h.settled == 0 and len(stored.pending) < len(h.pending)
    for hour in range(stored.settled, stored.settled + 20 * 24, 7):
        assert stored.features(hour * HOUR, 7.0) == h.features(hour * HOUR, 7.0)
