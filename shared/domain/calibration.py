"""Score calibration on the serving side: raw model score -> fraud probability.

The classifier is trained with fraud rows up-weighted, so its raw scores overstate the
fraud rate. Training fits a monotone map on a later, time-held-out slice
(``training.calibrate``) and stores it in the manifest as breakpoints; serving applies
it with ``np.interp``. numpy only: this module is on the scoring path.

Stored form (manifest ``"calibration"``)::

    {"method": "isotonic", "xs": [0.0, 0.013, ...], "ys": [0.0, 0.0004, ...], "info": {...}}

``xs`` strictly increasing, ``ys`` non-decreasing, both in [0, 1], 2..MAX_BREAKPOINTS
points. Between breakpoints the map is linear; below ``xs[0]`` it is ``ys[0]`` and
above ``xs[-1]`` it is ``ys[-1]`` (clipped, never extrapolated).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

METHODS = ("isotonic", "platt", "identity")
MAX_BREAKPOINTS = 256


@dataclass(frozen=True)
class ScoreCalibration:
    """A monotone non-decreasing piecewise-linear map from raw score to probability."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    method: str
    info: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable: rows, fallback reason, ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "xs", tuple(float(x) for x in self.xs))
        object.__setattr__(self, "ys", tuple(float(y) for y in self.ys))
        object.__setattr__(self, "info", dict(self.info))
        _validate(self.xs, self.ys, self.method)
        object.__setattr__(self, "_xs", np.asarray(self.xs, dtype=np.float64))
        object.__setattr__(self, "_ys", np.asarray(self.ys, dtype=np.float64))

    @classmethod
    def identity(cls, **info: Any) -> "ScoreCalibration":
        return cls((0.0, 1.0), (0.0, 1.0), "identity", info)

    @property
    def is_identity(self) -> bool:
        return self.xs == (0.0, 1.0) and self.ys == (0.0, 1.0)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Probabilities (float32) for raw scores of any shape."""
        raw = np.asarray(raw, dtype=np.float64)
        return np.interp(raw, self._xs, self._ys).astype(np.float32)  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "xs": list(self.xs), "ys": list(self.ys), "info": dict(self.info)}

    @classmethod
    def from_dict(cls, doc: Any) -> "ScoreCalibration":
        """Parse the stored form; anything malformed is a ValueError saying what is wrong."""
        if not isinstance(doc, Mapping):
            raise ValueError(f"calibration must be an object, got {type(doc).__name__}")
        unknown = set(doc) - {"method", "xs", "ys", "info"}
        if unknown:
            raise ValueError(f"calibration has unknown keys {sorted(unknown)}")
        for key in ("method", "xs", "ys"):
            if key not in doc:
                raise ValueError(f"calibration is missing '{key}'")
        xs, ys = doc["xs"], doc["ys"]
        for name, values in (("xs", xs), ("ys", ys)):
            if not isinstance(values, (list, tuple)):
                raise ValueError(f"calibration {name} must be a list of numbers")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ValueError(f"calibration {name} must contain only numbers")
        info = doc.get("info", {})
        if not isinstance(info, Mapping):
            raise ValueError("calibration info must be an object")
        return cls(tuple(xs), tuple(ys), doc["method"], info)


def _validate(xs: tuple[float, ...], ys: tuple[float, ...], method: Any) -> None:
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    if len(xs) != len(ys):
        raise ValueError(f"calibration xs and ys differ in length ({len(xs)} vs {len(ys)})")
    if not 2 <= len(xs) <= MAX_BREAKPOINTS:
        raise ValueError(f"calibration needs 2..{MAX_BREAKPOINTS} breakpoints, got {len(xs)}")
    for name, values in (("xs", xs), ("ys", ys)):
        bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
        if bad:
            raise ValueError(f"calibration {name} must lie in [0, 1], got {bad[0]!r}")
    if any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError("calibration xs must be strictly increasing")
    if any(b < a for a, b in zip(ys, ys[1:])):
        raise ValueError("calibration ys must be non-decreasing (a calibration may not reorder scores)")
