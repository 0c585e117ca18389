"""Signed releases: what a release key signs, as canonical JSON (pure: no I/O, no crypto).

A model release is a statement about one published version, stored beside it in the registry
(``<version>/release.json``) as an envelope ``{"statement": ..., "signature": ..., "algorithm":
"ES256"}``. The statement names the version, the sha256 of its ONNX bytes, the sha256 of its
manifest (canonical JSON, so any changed field changes it) and, readable without hashing, what
decides: the thresholds, the calibration and the feature list; then when it was signed, by which
key and who approved it. The signature is ECDSA P-256 with SHA-256 over ``canonical_json(statement)``,
raw ``r || s`` (64 bytes, as Key Vault's ES256 returns it), base64.

A rules release is the same envelope over a rules blob's sha256 (``rules.json.sig`` beside
``rules.json``).

Verifying the signature is the release key adapter's job (``shared/adapters/release_keys.py``);
this module builds statements and checks that an artifact is the one its statement names.
"""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from shared.domain.model import ModelArtifact, ModelRejected

ALGORITHM = "ES256"  # ECDSA P-256 + SHA-256, raw r||s signature
MODEL_RELEASE = "fraud-model-release"
RULES_RELEASE = "fraud-rules-release"


class ReleaseRefused(ModelRejected):
    """A release that must not be used: unsigned, wrongly signed, or not the artifact it names."""


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8. What is hashed and signed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_sha256(manifest: dict[str, Any]) -> str:
    """The manifest's hash, over its canonical JSON (independent of how the blob was indented)."""
    return sha256_hex(canonical_json(manifest))


def model_statement(artifact: ModelArtifact, *, signed_at: str, key_id: str, approved_by: str) -> dict[str, Any]:
    """What a release signs for one model version."""
    manifest = artifact.manifest
    return {
        "kind": MODEL_RELEASE,
        "version": artifact.version,
        "onnx_sha256": sha256_hex(artifact.onnx_bytes),
        "manifest_sha256": manifest_sha256(manifest),
        "thresholds": manifest.get("thresholds"),
        "calibration": manifest.get("calibration"),
        "feature_names": manifest.get("feature_names"),
        "feature_schema_hash": manifest.get("feature_schema_hash"),
        "signed_at": signed_at,
        "key_id": key_id,
        "approved_by": approved_by,
    }


def check_model_statement(artifact: ModelArtifact, statement: dict[str, Any]) -> None:
    """Raise ``ReleaseRefused`` unless ``statement`` (already signature-checked) names exactly this artifact."""
    version = artifact.version
    if statement.get("kind") != MODEL_RELEASE:
        raise ReleaseRefused(f"model {version}: its release is a {statement.get('kind')!r}, not a model release")
    if statement.get("version") != version:
        raise ReleaseRefused(f"model {version}: its release was signed for version {statement.get('version')!r}")
    actual = sha256_hex(artifact.onnx_bytes)
    if statement.get("onnx_sha256") != actual:
        raise ReleaseRefused(f"model {version}: model bytes sha256 {actual[:12]} differ from the signed "
                             f"{str(statement.get('onnx_sha256'))[:12]}")
    actual = manifest_sha256(artifact.manifest)
    if statement.get("manifest_sha256") != actual:
        raise ReleaseRefused(f"model {version}: manifest sha256 {actual[:12]} differs from the signed "
                             f"{str(statement.get('manifest_sha256'))[:12]} (thresholds, calibration or another field changed)")
    for key in ("thresholds", "calibration", "feature_names", "feature_schema_hash"):
        if statement.get(key) != artifact.manifest.get(key):
            raise ReleaseRefused(f"model {version}: manifest {key} differ from the signed ones")


def rules_statement(name: str, data: bytes, *, signed_at: str, key_id: str, signed_by: str) -> dict[str, Any]:
    return {"kind": RULES_RELEASE, "name": name, "sha256": sha256_hex(data), "bytes": len(data),
            "signed_at": signed_at, "key_id": key_id, "signed_by": signed_by}


def check_rules_statement(name: str, data: bytes, statement: dict[str, Any]) -> None:
    if statement.get("kind") != RULES_RELEASE:
        raise ReleaseRefused(f"rules {name}: the signature is over a {statement.get('kind')!r}, not rules")
    actual = sha256_hex(data)
    if statement.get("sha256") != actual:
        raise ReleaseRefused(f"rules {name}: sha256 {actual[:12]} differs from the signed {str(statement.get('sha256'))[:12]}")


def envelope(statement: dict[str, Any], signature: bytes) -> dict[str, Any]:
    return {"statement": statement, "algorithm": ALGORITHM, "signature": base64.b64encode(signature).decode()}


def open_envelope(document: Any, what: str) -> tuple[dict[str, Any], bytes]:
    """The statement and raw signature of an envelope; ``ReleaseRefused`` when it is malformed."""
    if not isinstance(document, dict) or not isinstance(document.get("statement"), dict):
        raise ReleaseRefused(f"{what}: the release is not a signed statement")
    if document.get("algorithm") != ALGORITHM:
        raise ReleaseRefused(f"{what}: release algorithm {document.get('algorithm')!r}, expected {ALGORITHM}")
    try:
        signature = base64.b64decode(str(document.get("signature", "")), validate=True)
    except ValueError:
        raise ReleaseRefused(f"{what}: the release signature is not base64") from None
    if len(signature) != 64:
        raise ReleaseRefused(f"{what}: the release signature has {len(signature)} bytes, not 64 (ES256 r||s)")
    return document["statement"], signature
