"""Drift on the simulator's features as training and serving compute them: a stationary
fortnight after the reference raises no alarm over any 24-hour or 7-day window, and a new
mobile app that moves half of a day's card and online payments is flagged on the channel's
features only."""
from dataclasses import replace

import numpy as np
import pytest

from shared.domain.drift import DriftAccumulator, DriftRule, ReferenceHistogram, calendar_strata
from shared.domain.features import FEATURE_INPUTS, FEATURE_NAMES, NOT_ALARMED, replay
from training.dataset import merchant_risk_replay, read_labelled_csv
from training.simulate import SimulationConfig, generate, write_csv
from training.train import REFERENCE_DAYS, drift_reference

DAY = 86400
DAYS, STREAM_DAYS = 72, 14  # the reference (training's REFERENCE_DAYS before the stream) starts past the warm-up
RULE = DriftRule(excluded=dict(NOT_ALARMED))
HOUR, WEEKEND = FEATURE_NAMES.index("hour_of_day"), FEATURE_NAMES.index("is_weekend")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    path = tmp_path_factory.mktemp("drift") / "tx.csv"
    write_csv(generate(SimulationConfig(customers=300, days=DAYS, seed=11, start="2026-03-02")), path)
    data = read_labelled_csv(path)
    X = replay(data.transactions, merchants=merchant_risk_replay(data, 7.0))
    day = ((data.times - data.times.min()) // DAY).astype(int)
    return data, X, day


def references(X, times, in_reference) -> dict[str, ReferenceHistogram]:
    scores = np.zeros(int(in_reference.sum()), dtype=np.float32)
    stored = drift_reference(X[in_reference], scores, {"high": 0.9}, times[in_reference])["features"]
    return {name: ReferenceHistogram.from_dict(d) for name, d in stored.items()}


def judge(refs, X) -> dict:
    acc = DriftAccumulator(refs, 10_000)
    acc.add({name: X[:, i] for i, name in enumerate(FEATURE_NAMES)}, calendar_strata(X[:, HOUR], X[:, WEEKEND]))
    return acc.report(RULE)


@pytest.mark.parametrize("hours", [24, 168])
def test_a_stationary_simulated_fortnight_raises_no_alarm(simulated, hours):
    data, X, day = simulated
    first = DAYS - STREAM_DAYS
    refs = references(X, data.times, (day >= first - REFERENCE_DAYS) & (day < first))
    start, end = data.times.min() + first * DAY, data.times.min() + DAYS * DAY
    windows = 0
    for lower in np.arange(start, end - hours * 3600 + 1, 12 * 3600):
        window = (data.times >= lower) & (data.times < lower + hours * 3600)
        alarms = {n: (r["psi"], r["alert_at"], r["moved"]) for n, r in judge(refs, X[window]).items()
                  if r["status"] == "alert"}
        assert not alarms, alarms
        windows += 1
    assert windows >= (STREAM_DAYS * 24 - hours) // 12


def test_a_new_mobile_app_is_flagged_on_the_channel_features_only(simulated):
    data, X, day = simulated
    first = DAYS - STREAM_DAYS
    refs = references(X, data.times, (day >= first - REFERENCE_DAYS) & (day < first))
    moved = data.transactions[:]
    rng = np.random.default_rng(0)
    on_day = np.flatnonzero(day == first + 3)
    for i in on_day:
        txn = moved[i]
        if txn.channel in ("pos", "online") and rng.random() < 0.5:
            moved[i] = replace(txn, channel="mobile")
    X_moved = replay(moved, merchants=merchant_risk_replay(data, 7.0))
    report = judge(refs, X_moved[on_day])
    alarms = {n for n, r in report.items() if r["status"] == "alert"}
    assert alarms and alarms <= set(FEATURE_INPUTS["channel"]), alarms
    assert "channel_mobile" in alarms
