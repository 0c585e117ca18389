"""Drift judged like with like (pure, on synthetic streams): a stationary stream whose mix
of hours and weekdays differs from window to window raises no alarm; a shift in one feature
is flagged on that feature only; thin windows and noisy features are not over-read."""
import numpy as np
import pytest

from shared.domain.drift import (DriftAccumulator, DriftRule, ReferenceHistogram, calendar_strata, merge_sparse_bins,
                                 reference_histogram)

DAY = 86400
RULE = DriftRule(psi_warn=0.1, psi_alert=0.2, min_expected_per_bin=20)
NAMES = ("hour_of_day", "is_weekend", "is_night", "amount", "is_new_device", "count_24h", "merchant_volume")


def stream(days: int, seed: int, first_day: int = 0, amount_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Transactions of ``days`` days: volume, amounts and novelty depend on the hour and on
    weekends (Saturday and Sunday are days 5 and 6 of each week); one column is shared by all
    of a merchant's rows and wanders from day to day (a merchant aggregate)."""
    rng = np.random.default_rng(seed)
    hourly = np.array([1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 12, 14, 12, 10, 10, 11, 12, 12, 10, 8, 5, 3, 2], float)
    times, rows = [], []
    for day in range(first_day, first_day + days):
        weekend = day % 7 >= 5
        rate = (np.roll(hourly, 2) * 1.3 if weekend else hourly) * 12
        merchant_level = rng.lognormal(0, 0.4, size=30)
        for hour in range(24):
            n = rng.poisson(rate[hour])
            t = day * DAY + hour * 3600 + rng.random(n) * 3600
            night = hour < 6
            amount = rng.lognormal(9 + 0.6 * night + 0.3 * weekend, 1.0, n) * amount_factor
            new_device = rng.random(n) < (0.08 if night else 0.02)
            count = rng.poisson(2 + 2 * weekend, n)
            merchant = merchant_level[rng.integers(0, 30, n)]
            times.append(t)
            rows.append(np.column_stack([np.full(n, hour), np.full(n, weekend), np.full(n, night), amount,
                                         new_device, count, merchant]))
    return np.concatenate(times), np.vstack(rows).astype(np.float32)


def strata_of(X: np.ndarray) -> np.ndarray:
    return calendar_strata(X[:, 0], X[:, 1])


def references(times: np.ndarray, X: np.ndarray, calendar: bool = True) -> dict[str, ReferenceHistogram]:
    strata, days = (strata_of(X), (times // DAY).astype(int)) if calendar else (None, None)
    return {name: reference_histogram(X[:, i], strata=strata, days=days) for i, name in enumerate(NAMES)}


def judge(refs: dict[str, ReferenceHistogram], X: np.ndarray, calendar: bool = True) -> dict:
    acc = DriftAccumulator(refs, 10_000)
    acc.add({name: X[:, i] for i, name in enumerate(NAMES)}, strata_of(X) if calendar else None)
    return acc.report(RULE)


def windows(times: np.ndarray, hours: int, step_hours: int = 6):
    for start in np.arange(times.min() // DAY * DAY, times.max() - hours * 3600 + 1, step_hours * 3600):
        yield (times >= start) & (times < start + hours * 3600)


@pytest.fixture(scope="module")
def reference_stream():
    return stream(14, seed=1)


@pytest.mark.parametrize("hours", [24, 168])
def test_a_stationary_fortnight_raises_no_alarm_over_any_window(reference_stream, hours):
    refs = references(*reference_stream)
    times, X = stream(14, seed=2, first_day=14)
    statuses = set()
    for window in windows(times, hours):
        report = judge(refs, X[window])
        flagged = {n: (r["psi"], r["moved"]) for n, r in report.items() if r["status"] == "alert"}
        assert not flagged, flagged
        statuses |= {r["status"] for r in report.values()}
    assert "ok" in statuses


def test_without_calendar_matching_a_weekday_cries_wolf(reference_stream):
    """The same windows judged against the plain reference: the calendar alone alarms, which
    is what matching hours and weekdays prevents."""
    refs = references(*reference_stream, calendar=False)
    times, X = stream(1, seed=3, first_day=15)  # a Tuesday
    report = judge(refs, X, calendar=False)
    assert report["is_weekend"]["status"] == "alert"


def test_a_shift_in_one_feature_is_flagged_on_that_feature_only(reference_stream):
    refs = references(*reference_stream)
    times, X = stream(1, seed=4, first_day=16, amount_factor=1.8)
    report = judge(refs, X)
    assert report["amount"]["status"] == "alert"
    assert {n for n, r in report.items() if r["status"] in ("warn", "alert")} == {"amount"}
    assert report["is_weekend"]["status"] == "insufficient"  # a weekday holds one of its two bins only
    histogram = report["amount"]["histogram"]
    assert len(histogram["bins"]) == len(histogram["reference"]) == len(histogram["current"])
    assert sum(histogram["current"]) == pytest.approx(1.0, abs=1e-3)
    assert "of the reference" in report["amount"]["moved"]


def test_a_feature_shared_by_a_merchant_s_rows_alarms_only_above_its_natural_swing(reference_stream):
    refs = references(*reference_stream)
    assert refs["merchant_volume"].natural_psi > 5 * refs["amount"].natural_psi
    warn_at, alert_at = RULE.limits(refs["merchant_volume"].natural_psi)
    assert alert_at > RULE.psi_alert and warn_at < alert_at


def test_a_thin_window_is_insufficient_not_drifted(reference_stream):
    refs = references(*reference_stream)
    times, X = stream(1, seed=5, first_day=17)
    report = judge(refs, X[:30])
    assert report["amount"]["status"] == "insufficient" and report["amount"]["psi"] is None
    assert "fewer than two bins" in report["amount"]["reason"]


def test_bins_are_merged_until_each_expects_the_minimum():
    groups = merge_sparse_bins(np.array([5.0, 30, 4, 4, 40, 3]), np.zeros(6), 20)
    assert groups == [[0, 1], [2, 3, 4, 5]]


def test_an_excluded_feature_is_reported_with_its_reason(reference_stream):
    refs = references(*reference_stream)
    times, X = stream(1, seed=6, first_day=18, amount_factor=3.0)
    acc = DriftAccumulator(refs, 10_000)
    acc.add({name: X[:, i] for i, name in enumerate(NAMES)}, strata_of(X))
    report = acc.report(DriftRule(excluded={"amount": "grows by construction"}))
    assert report["amount"]["status"] == "excluded" and report["amount"]["reason"] == "grows by construction"
    assert report["amount"]["psi"] > 0.2


def test_a_reference_round_trips_through_the_manifest(reference_stream):
    refs = references(*reference_stream)
    back = ReferenceHistogram.from_dict(refs["amount"].to_dict())
    assert back == refs["amount"]
    assert np.allclose(back.expected(np.ones(48)), refs["amount"].expected(np.ones(48)))
