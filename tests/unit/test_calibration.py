"""Score calibration: the stored map (round trip, monotone, clipped, validated), fitting it
on a held-out slice so every decision band's mean score matches its fraud rate, and the
served model applying it exactly once."""
import json

import numpy as np
import pytest

from shared.domain.calibration import MAX_BREAKPOINTS, ScoreCalibration
from shared.domain.model import ModelArtifact, ModelRejected, load_model
from training.calibrate import MAX_ERROR, TIE_BREAK, compress, fit_calibration

BANDS = ((0.2, 0.5), (0.5, 0.8), (0.8, 1.0))


# --- the stored map -------------------------------------------------------------------

def test_round_trip_through_json_keeps_the_map():
    cal = ScoreCalibration((0.0, 0.3, 0.9, 1.0), (0.0, 0.01, 0.5, 0.97), "isotonic", {"rows": 10})
    again = ScoreCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    raw = np.linspace(0, 1, 101)
    assert np.array_equal(again.apply(raw), cal.apply(raw))


def test_apply_is_monotone_float32_and_clipped_outside_the_breakpoints():
    cal = ScoreCalibration((0.1, 0.5, 0.8), (0.02, 0.2, 0.7), "platt")
    raw = np.linspace(-0.5, 1.5, 1001)
    out = cal.apply(raw)
    assert out.dtype == np.float32 and out.shape == raw.shape
    assert np.all(np.diff(out) >= 0)
    assert np.all(out[raw <= 0.1] == np.float32(0.02)) and np.all(out[raw >= 0.8] == np.float32(0.7))
    assert cal.apply(np.array([0.3]))[0] == pytest.approx(0.11)  # linear between breakpoints


def test_identity_leaves_scores_alone():
    raw = np.array([0.0, 0.123, 0.5, 1.0], dtype=np.float32)
    cal = ScoreCalibration.identity()
    assert cal.method == "identity" and cal.is_identity
    assert np.array_equal(cal.apply(raw), raw)


@pytest.mark.parametrize("doc, message", [
    ([0, 1], "must be an object"),
    ({"method": "isotonic", "xs": [0, 1]}, "missing 'ys'"),
    ({"method": "magic", "xs": [0, 1], "ys": [0, 1]}, "method must be one of"),
    ({"method": "isotonic", "xs": [0, 0.5, 1], "ys": [0, 1]}, "differ in length"),
    ({"method": "isotonic", "xs": [0.5], "ys": [0.5]}, "2..256 breakpoints"),
    ({"method": "isotonic", "xs": list(np.linspace(0, 1, 300)), "ys": list(np.linspace(0, 1, 300))}, "2..256 breakpoints"),
    ({"method": "isotonic", "xs": [0, 0.5, 0.5, 1], "ys": [0, 0.1, 0.2, 1]}, "strictly increasing"),
    ({"method": "isotonic", "xs": [0, 0.5, 1], "ys": [0, 0.6, 0.4]}, "non-decreasing"),
    ({"method": "isotonic", "xs": [0, 1], "ys": [0, 1.5]}, "must lie in"),
    ({"method": "isotonic", "xs": [-0.1, 1], "ys": [0, 1]}, "must lie in"),
    ({"method": "isotonic", "xs": [0, float("nan")], "ys": [0, 1]}, "must lie in"),
    ({"method": "isotonic", "xs": [0, "1"], "ys": [0, 1]}, "only numbers"),
    ({"method": "isotonic", "xs": "0,1", "ys": [0, 1]}, "list of numbers"),
    ({"method": "isotonic", "xs": [0, 1], "ys": [0, 1], "slope": 2}, "unknown keys"),
])
def test_a_malformed_calibration_is_a_clear_value_error(doc, message):
    with pytest.raises(ValueError, match=message):
        ScoreCalibration.from_dict(doc)


# --- fitting --------------------------------------------------------------------------

def fraud_like(n: int, rng: np.random.Generator):
    """True probabilities like a fraud model's: ~1.2% positives, most rows near 0, a risky 2%
    spread over 0-1; the raw score is a monotone distortion that overstates them (p ** 0.3),
    as a model trained on up-weighted fraud does."""
    risky = rng.random(n) < 0.02
    p = np.where(risky, rng.beta(2, 2, n), rng.beta(0.5, 200, n))
    y = (rng.random(n) < p).astype(int)
    return p ** 0.3, y


def band_gaps(scores: np.ndarray, y: np.ndarray) -> dict[tuple, tuple[int, float]]:
    """Per decision band with at least 30 rows: (rows, |mean score - observed fraud rate|)."""
    gaps = {}
    for lo, hi in BANDS:
        mask = (scores > lo) & (scores <= hi)
        if mask.sum() >= 30:
            gaps[(lo, hi)] = (int(mask.sum()), abs(float(scores[mask].mean()) - float(y[mask].mean())))
    return gaps


def test_isotonic_calibration_brings_every_decision_band_within_005_of_its_fraud_rate():
    # Sizes: each band holds >= ~250 rows on 1M held-out rows, so the binomial standard error
    # of its fraud rate is <= ~0.016 (3 SE < 0.05); 40 seeds checked locally: worst gap 0.027.
    rng = np.random.default_rng(20260301)
    raw_fit, y_fit = fraud_like(1_000_000, rng)
    raw_check, y_check = fraud_like(1_000_000, rng)  # independent held-out slice
    cal = fit_calibration(raw_fit, y_fit, "isotonic")
    assert cal.method == "isotonic" and len(cal.xs) <= MAX_BREAKPOINTS

    calibrated = band_gaps(cal.apply(raw_check), y_check)
    assert set(calibrated) == set(BANDS), calibrated
    for band, (rows, gap) in calibrated.items():
        se = np.sqrt(0.25 / rows)
        assert 0.05 > 3 * se or rows > 1000, (band, rows)
        assert gap <= 0.05, (band, rows, gap)
    raw = band_gaps(raw_check, y_check)  # the check can fail: the raw scores do
    assert max(gap for _, gap in raw.values()) > 0.15, raw


def test_isotonic_brings_overstated_scores_down_a_lot():
    rng = np.random.default_rng(5)
    raw, y = fraud_like(200_000, rng)
    cal = fit_calibration(raw, y)
    # p ** 0.3 = 0.5 means p ~ 0.1: the calibrated value must be far below the raw 0.5
    assert cal.apply(np.array([0.5]))[0] < 0.2


def test_platt_recovers_a_logit_linear_distortion():
    rng = np.random.default_rng(3)
    n = 300_000
    logit_p = rng.normal(-5.5, 2.0, n)
    p = 1 / (1 + np.exp(-logit_p))
    y = (rng.random(n) < p).astype(int)
    raw = 1 / (1 + np.exp(-(0.5 * logit_p + 2.0)))  # logit(raw) = 0.5 logit(p) + 2
    cal = fit_calibration(raw, y, "platt")
    assert cal.method == "platt"
    assert cal.info["platt"]["a"] == pytest.approx(2.0, rel=0.05)
    grid = np.linspace(0.001, 0.999, 500)
    truth = 1 / (1 + np.exp(-(2.0 * (np.log(grid) - np.log1p(-grid)) - 4.0)))
    assert np.max(np.abs(cal.apply(grid) - truth)) < 0.03


def test_compression_keeps_the_step_function_within_its_tolerance_and_the_point_cap():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(11)
    raw = rng.random(400_000)
    y = (rng.random(raw.size) < raw ** 2).astype(int)  # many small steps: well over 256 corners
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, y)
    assert iso.X_thresholds_.size > MAX_BREAKPOINTS
    cal = fit_calibration(raw, y, "isotonic")
    assert len(cal.xs) <= MAX_BREAKPOINTS
    grid = np.r_[np.linspace(0, 1, 20001), iso.X_thresholds_]
    assert np.max(np.abs(cal.apply(grid) - iso.predict(grid))) <= cal.info["max_compression_error"] + TIE_BREAK + 1e-6
    assert cal.info["max_compression_error"] <= 0.01


def test_calibration_never_ties_scores_the_model_ranked_apart():
    from shared.domain.metrics import average_precision

    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(8)
    raw, y = fraud_like(200_000, rng)
    check_raw, check_y = fraud_like(50_000, rng)
    raw_ap = average_precision(check_y, check_raw)
    for method in ("isotonic", "platt"):
        cal = fit_calibration(raw, y, method)
        assert cal.xs[0] == 0.0 and cal.xs[-1] == 1.0 and np.all(np.diff(cal.ys) > 0)
        # float32 output still merges a few near-equal scores: within 2e-3, not exactly equal
        assert abs(average_precision(check_y, cal.apply(check_raw)) - raw_ap) < 2e-3
    plateaus = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, y).predict(check_raw)
    assert raw_ap - average_precision(check_y, plateaus) > 0.01  # what the tilt avoids


def test_compress_drops_only_corners_a_straight_line_reproduces():
    xs = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 1.0])
    ys = np.array([0.0, 0.0, 0.0, 0.5, 0.5, 1.0])  # 0.1 is on the flat line; the step corners stay
    kx, ky, error = compress(xs, ys)
    assert list(kx) == [0.0, 0.2, 0.3, 0.4, 1.0] and error == 0.0
    grid = np.linspace(0, 1, 6001)
    steps = np.floor(grid * 300) / 300  # 300 steps of 0.0033: ~600 corners needed at 1e-3
    kx, ky, error = compress(grid, steps, max_points=50)
    assert kx.size <= 50 and np.all(np.diff(ky) >= 0) and error > MAX_ERROR  # tolerance widened to fit


@pytest.mark.parametrize("rows, positives, method, expected", [
    (5000, 0, "isotonic", "identity"),     # no fraud in the slice
    (5000, 2, "platt", "identity"),        # too few to fit even two parameters
    (300, 40, "isotonic", "platt"),        # too few rows for isotonic
    (5000, 10, "isotonic", "platt"),       # too few fraud rows for isotonic
    (5000, 5000, "isotonic", "identity"),  # no legitimate rows
])
def test_degenerate_slices_fall_back_and_say_so(rows, positives, method, expected):
    rng = np.random.default_rng(0)
    raw = rng.random(rows)
    y = np.zeros(rows, dtype=int)
    y[np.argsort(raw)[rows - positives:]] = 1  # the fraud rows score highest
    cal = fit_calibration(raw, y, method)
    assert cal.method == expected
    assert cal.info["requested"] == method and cal.info["fallback"].startswith(expected)


def test_scores_that_fall_with_fraud_get_identity_not_a_reversed_map():
    rng = np.random.default_rng(1)
    raw = rng.random(5000)
    y = (raw < 0.02).astype(int)
    cal = fit_calibration(raw, y, "platt")
    assert cal.method == "identity" and "do not rise" in cal.info["fallback"]


# --- serving --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base_artifact():
    from conftest import make_artifact  # a tiny real sklearn model converted with skl2onnx

    return make_artifact("cal-v1")


def with_calibration(artifact: ModelArtifact, calibration) -> ModelArtifact:
    return ModelArtifact(artifact.onnx_bytes, {**artifact.manifest, "calibration": calibration})


def test_the_served_model_returns_calibrated_probabilities(base_artifact):
    X = np.random.default_rng(2).normal(size=(64, len(base_artifact.manifest["feature_names"]))).astype(np.float32)
    plain = load_model(base_artifact)
    assert plain.calibration is None
    raw = plain.predict(X)  # no calibration in the manifest: unchanged behaviour
    assert np.array_equal(raw, plain.raw_predict(X))

    cal = ScoreCalibration((0.0, 0.5, 1.0), (0.0, 0.05, 0.6), "isotonic")
    model = load_model(with_calibration(base_artifact, cal.to_dict()))
    assert model.calibration == cal
    assert np.array_equal(model.raw_predict(X), raw)
    assert np.allclose(model.predict(X), cal.apply(raw), atol=1e-7)
    assert model.predict(X).dtype == np.float32
    assert np.all(model.predict(X) <= 0.6) and np.any(np.abs(model.predict(X) - raw) > 0.01)


@pytest.mark.parametrize("bad", [
    {"method": "isotonic", "xs": [0, 0.5, 1], "ys": [0, 0.7, 0.2]},
    {"method": "isotonic", "xs": [0, 1]},
    "isotonic",
])
def test_a_malformed_calibration_is_refused_at_load(base_artifact, bad):
    with pytest.raises(ModelRejected, match="calibration"):
        load_model(with_calibration(base_artifact, bad))
