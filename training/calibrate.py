"""Fit a ``ScoreCalibration`` (raw model score -> fraud probability) on a held-out slice.

The caller passes the raw scores and labels of a slice later in time than the rows the
classifier was fitted on (never the fitted rows: their scores are optimistic, and never
the test window: it must stay an honest measurement of the calibrated model).

- ``isotonic`` (default): scikit-learn's IsotonicRegression (clipped to [0, 1]); free to
  bring the up-weighted scores down as far as the data says. Its fitted function is
  already piecewise linear through its step corners; we keep those corners, dropping
  only the ones a straight line through their neighbours reproduces within 1e-3
  (``MAX_ERROR``), so at most ``MAX_BREAKPOINTS`` points are stored.
- either way the stored map spans [0, 1] and is tilted by ``TIE_BREAK`` (1e-4) so that
  it is strictly increasing: calibration never ties scores the model ranked apart
  (average precision unchanged, thresholds can split an isotonic plateau).
- ``platt``: logistic regression on logit(raw score), p = sigmoid(a * logit(s) + b),
  tabulated on a grid dense near 0 and 1 (where most scores sit) and compressed the
  same way.

Degenerate slices fall back, and the returned object says so (``method`` is what was
fitted, ``info["requested"]`` what was asked for, ``info["fallback"]`` why):
isotonic with fewer than ``ISOTONIC_MIN_ROWS`` rows or ``ISOTONIC_MIN_POSITIVES`` fraud
rows -> Platt (two parameters need far less data); fewer than ``PLATT_MIN_POSITIVES``
fraud rows, no legitimate rows, constant scores, or scores that do not rise with
fraud -> identity (raw scores served as before; nothing to learn a map from).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from shared.domain.calibration import MAX_BREAKPOINTS, ScoreCalibration

MAX_ERROR = 1e-3
TIE_BREAK = 1e-4  # see _tilted
ISOTONIC_MIN_ROWS = 500
ISOTONIC_MIN_POSITIVES = 20
PLATT_MIN_POSITIVES = 3
_EPS = 1e-7  # raw scores are clipped to [eps, 1-eps] before the logit


def fit_calibration(raw_scores: np.ndarray, y: np.ndarray, method: str = "isotonic",
                    sample_weight: np.ndarray | None = None) -> ScoreCalibration:
    """A monotone map from raw score to probability fitted on (raw_scores, y)."""
    if method not in ("isotonic", "platt"):
        raise ValueError(f"method must be 'isotonic' or 'platt', got {method!r}")
    raw = np.asarray(raw_scores, dtype=np.float64).ravel()
    labels = np.asarray(y).astype(np.float64).ravel()
    if raw.shape != labels.shape:
        raise ValueError(f"raw_scores and y differ in length ({raw.size} vs {labels.size})")
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    if weight is not None and weight.shape != raw.shape:
        raise ValueError("sample_weight must have one weight per score")
    if raw.size and (not np.all(np.isfinite(raw)) or raw.min() < 0 or raw.max() > 1):
        raise ValueError("raw scores must be finite and in [0, 1]")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("y must be 0/1 labels")

    rows, positives = int(raw.size), int(labels.sum())
    info: dict[str, Any] = {"requested": method, "rows": rows, "positives": positives,
                            "raw_score_range": [float(raw.min()), float(raw.max())] if rows else None}
    if positives < PLATT_MIN_POSITIVES or positives == rows:
        return ScoreCalibration.identity(**info, fallback=f"identity: {positives} fraud rows of {rows}, too few to calibrate on")
    if np.ptp(raw) == 0:
        return ScoreCalibration.identity(**info, fallback="identity: all raw scores are equal, nothing to calibrate on")
    if method == "isotonic" and (rows < ISOTONIC_MIN_ROWS or positives < ISOTONIC_MIN_POSITIVES):
        info["fallback"] = (f"platt: {rows} rows / {positives} fraud rows are too few for isotonic "
                            f"(needs {ISOTONIC_MIN_ROWS} / {ISOTONIC_MIN_POSITIVES})")
        method = "platt"
    if method == "isotonic":
        xs, ys = _isotonic(raw, labels, weight)
    else:
        fitted = _platt(raw, labels, weight)
        if fitted is None:
            return ScoreCalibration.identity(**info, fallback="identity: raw scores do not rise with fraud on this slice")
        (a, b), (xs, ys) = fitted
        info["platt"] = {"a": a, "b": b}
    cxs, cys, error = compress(xs, ys, max_points=MAX_BREAKPOINTS - 2)
    cxs, cys = _tilted(cxs, cys)
    info.update(breakpoints_before_compression=int(xs.size), max_compression_error=error, tie_break=TIE_BREAK)
    return ScoreCalibration(tuple(cxs), tuple(cys), method, info)


def _tilted(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Span [0, 1] and make the map strictly increasing: y' = (1 - TIE_BREAK) y + TIE_BREAK x.

    Isotonic plateaus would give many rows the same probability: thresholds could not
    split a plateau (a review budget could jump from the whole plateau to nothing) and
    the ranking, so average precision, would be worse than the raw model's. The tilt
    moves no probability by more than TIE_BREAK and keeps the raw ranking.
    """
    if xs[0] > 0:
        xs, ys = np.r_[0.0, xs], np.r_[ys[0], ys]
    if xs[-1] < 1:
        xs, ys = np.r_[xs, 1.0], np.r_[ys, ys[-1]]
    return xs, np.clip((1 - TIE_BREAK) * ys + TIE_BREAK * xs, 0.0, 1.0)


def _isotonic(raw: np.ndarray, labels: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
    iso.fit(raw, labels, sample_weight=weight)
    # X_thresholds_/y_thresholds_ are the corners of the fitted (linearly interpolated) steps.
    xs = np.asarray(iso.X_thresholds_, dtype=np.float64)
    ys = np.clip(np.maximum.accumulate(np.asarray(iso.y_thresholds_, dtype=np.float64)), 0.0, 1.0)
    if xs.size == 1:  # one block: a constant
        xs, ys = np.array([0.0, 1.0]), np.array([ys[0], ys[0]])
    return xs, ys


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _platt(raw: np.ndarray, labels: np.ndarray, weight: np.ndarray | None):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6, max_iter=1000)  # effectively unregularised
    model.fit(_logit(raw)[:, None], labels.astype(int), sample_weight=weight)
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if not a > 0:
        return None
    # A fine grid, dense near 0 and 1 (uniform in logit space) and uniform in between.
    grid = np.unique(np.r_[0.0, 1.0, np.linspace(0, 1, 2001), 1 / (1 + np.exp(-np.linspace(-16, 16, 4001)))])
    z = np.clip(a * _logit(grid) + b, -500, 500)
    return (a, b), (grid, 1 / (1 + np.exp(-z)))


def compress(xs: np.ndarray, ys: np.ndarray, max_points: int = MAX_BREAKPOINTS,
             tolerance: float = MAX_ERROR) -> tuple[np.ndarray, np.ndarray, float]:
    """Fewest breakpoints (greedy) whose linear interpolation stays within ``tolerance``
    of the piecewise-linear function through (xs, ys); the tolerance doubles until at
    most ``max_points`` remain. Returns the kept points and the actual maximum error.

    A subset of a non-decreasing function's points is non-decreasing, and between two
    kept points the error is largest at a dropped original corner, so checking the
    corners bounds the error everywhere.
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    while True:
        keep = _greedy(xs, ys, tolerance)
        if keep.size <= max_points:
            break
        tolerance *= 2
    kx, ky = xs[keep], ys[keep]
    error = float(np.max(np.abs(np.interp(xs, kx, ky) - ys))) if xs.size else 0.0
    return kx, ky, error


def _greedy(xs: np.ndarray, ys: np.ndarray, tolerance: float) -> np.ndarray:
    n = xs.size
    keep = [0]
    i = 0
    while i < n - 1:
        # the farthest j whose chord i->j stays within tolerance at every corner in between
        j = i + 1
        step = 1
        while j + step < n and _chord_ok(xs, ys, i, j + step, tolerance):  # gallop, then bisect
            j += step
            step *= 2
        lo, hi = j, min(j + step, n)  # ok at lo; unknown (or beyond the end) at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _chord_ok(xs, ys, i, mid, tolerance):
                lo = mid
            else:
                hi = mid
        keep.append(lo)
        i = lo
    return np.asarray(keep)


def _chord_ok(xs: np.ndarray, ys: np.ndarray, i: int, j: int, tolerance: float) -> bool:
    if j - i < 2:
        return True
    x, y = xs[i:j + 1], ys[i:j + 1]
    line = y[0] + (y[-1] - y[0]) * (x - x[0]) / (x[-1] - x[0])
    return bool(np.max(np.abs(line - y)) <= tolerance)
