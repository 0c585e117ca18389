"""A verified, loaded fraud model: ONNX bytes + manifest, served by onnxruntime.

Only onnxruntime and numpy are imported here: this is on the scoring path.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from shared.domain.calibration import ScoreCalibration
from shared.domain.decision import Thresholds
from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH
from shared.domain.merchant_risk import DEFAULT_LABEL_DELAY_DAYS

DEFAULT_THRESHOLDS = Thresholds().as_dict()  # the one default: Thresholds' fields


class ModelRejected(Exception):
    """An artifact that must not serve: corrupt, tampered, or built for other features."""


@dataclass(frozen=True)
class ModelArtifact:
    onnx_bytes: bytes
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "?"))

    @classmethod
    def from_files(cls, onnx_bytes: bytes, manifest_bytes: bytes) -> "ModelArtifact":
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError as exc:
            raise ModelRejected(f"manifest is not JSON: {exc}") from None
        if not isinstance(manifest, dict):
            raise ModelRejected("manifest is not a JSON object")
        return cls(onnx_bytes, manifest)


@dataclass
class FraudModel:
    """An onnxruntime session plus the manifest it was verified against."""

    artifact: ModelArtifact
    session: Any
    input_name: str
    output_name: str
    calibration: ScoreCalibration | None = None  # from the manifest's "calibration"; None: raw scores are served
    loaded_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def version(self) -> str:
        return self.artifact.version

    @property
    def manifest(self) -> dict[str, Any]:
        return self.artifact.manifest

    @property
    def thresholds(self) -> dict[str, float]:
        merged = dict(DEFAULT_THRESHOLDS)
        merged.update({k: float(v) for k, v in self.manifest.get("thresholds", {}).items()})
        return merged

    @property
    def merchant_label_delay_days(self) -> float:
        """The label delay its merchant risk features were trained with (their windows shift by it)."""
        return float(self.manifest.get("merchant_label_delay_days", DEFAULT_LABEL_DELAY_DAYS))

    def raw_predict(self, features: np.ndarray) -> np.ndarray:
        """The classifier's own fraud scores (before calibration), in one ONNX call."""
        if features.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        (probabilities,) = self.session.run([self.output_name], {self.input_name: features})
        return np.asarray(probabilities, dtype=np.float32)[:, 1]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Fraud probabilities for a (n, n_features) float32 matrix: the raw scores mapped
        through the manifest's calibration when it has one (the only place it is applied)."""
        raw = self.raw_predict(features)
        return raw if self.calibration is None else self.calibration.apply(raw)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_calibration(manifest: dict[str, Any]) -> ScoreCalibration | None:
    """The manifest's calibration (None when it has none); a malformed one is refused."""
    if manifest.get("calibration") is None:
        return None
    try:
        return ScoreCalibration.from_dict(manifest["calibration"])
    except ValueError as exc:
        raise ModelRejected(f"model {manifest.get('version', '?')}: {exc}") from None


def load_model(artifact: ModelArtifact) -> FraudModel:
    """Verify an artifact (sha256, feature schema, calibration, a smoke prediction) and open a session."""
    import onnxruntime as ort

    manifest = artifact.manifest
    expected_sha = manifest.get("onnx_sha256")
    actual_sha = sha256_hex(artifact.onnx_bytes)
    if expected_sha != actual_sha:
        raise ModelRejected(f"model {artifact.version}: sha256 {actual_sha[:12]} does not match manifest {str(expected_sha)[:12]}")
    if manifest.get("feature_schema_hash") != FEATURE_SCHEMA_HASH:
        raise ModelRejected(
            f"model {artifact.version} was built for feature schema {manifest.get('feature_schema_hash')}, "
            f"this code computes {FEATURE_SCHEMA_HASH}"
        )
    if list(manifest.get("feature_names", [])) != list(FEATURE_NAMES):
        raise ModelRejected(f"model {artifact.version}: feature names differ from this code's")
    calibration = parse_calibration(manifest)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one scoring call per worker thread; parallelism comes from the host
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(artifact.onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
        raise ModelRejected(f"model {artifact.version}: onnxruntime refused it: {exc}") from None
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].shape[-1] not in (len(FEATURE_NAMES), None, "N"):
        raise ModelRejected(f"model {artifact.version}: unexpected inputs {[(i.name, i.shape) for i in inputs]}")
    outputs = [o.name for o in session.get_outputs()]
    output_name = "probabilities" if "probabilities" in outputs else outputs[-1]
    model = FraudModel(artifact, session, inputs[0].name, output_name, calibration)
    smoke = model.predict(np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32))
    if smoke.shape != (2,) or not np.all(np.isfinite(smoke)) or np.any((smoke < 0) | (smoke > 1)):
        raise ModelRejected(f"model {artifact.version}: smoke prediction gave {smoke!r}")
    return model
