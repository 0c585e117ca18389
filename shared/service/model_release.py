"""Releases of models and rules: signing, checking, and what a retrain may do on its own.

* ``sign_model`` signs a published version's release (``shared/domain/release.py``) with the
  release key and stores it beside the version; ``ReleaseCheck`` is what serving runs before a
  version may score: an unsigned version, a signature the release key did not make, or model
  bytes / a manifest that differ from the signed ones are refused (``ReleaseRefused``).
* ``release`` is a retrain's end: publish the challenger (always: its manifest records the
  gate's decision); when the gate passes it, it stays a *candidate* (published, unsigned, not
  current) unless auto-promotion is on, in which case it is signed and the current pointer moves
  from the pointer read before training (of two concurrent retrains only one can win).
* ``approve`` is a person's promotion (``python -m tools.models approve``): sign, then move the
  pointer with the ETag just read.
* ``sign_rules`` / ``check_rules``: the same signature over a rules blob.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from shared.domain.model import ModelArtifact
from shared.domain.release import (
    ReleaseRefused, canonical_json, check_model_statement, check_rules_statement, envelope, model_statement,
    open_envelope, rules_statement,
)
from shared.service.ports import (
    BadSignature, CurrentPointer, ModelRegistryPort, ReleaseSigner, ReleaseVerifier, StalePointer,
)

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def sign_model(registry: ModelRegistryPort, signer: ReleaseSigner, version: str, approved_by: str,
               artifact: ModelArtifact | None = None) -> dict[str, Any]:
    """Sign ``version`` as published (read back from the registry unless given) and store its
    release; returns the envelope. ``VersionExists`` when it is signed already."""
    artifact = registry.load(version) if artifact is None else artifact
    statement = model_statement(artifact, signed_at=_now(), key_id=signer.key_id, approved_by=approved_by)
    document = envelope(statement, signer.sign(canonical_json(statement)))
    registry.put_release(version, document)
    log.info(json.dumps({"event": "model_release_signed", "version": version, "approved_by": approved_by,
                         "key_id": statement["key_id"]}))
    return document


class ReleaseCheck:
    """Serving's gate: a version scores only with a release that the release key signed over
    exactly its bytes and manifest. Without a verifier (``FRAUD_RELEASE_KEY`` empty) nothing passes."""

    def __init__(self, verifier: ReleaseVerifier | None) -> None:
        self.verifier = verifier

    def check(self, artifact: ModelArtifact, document: dict[str, Any] | None) -> dict[str, Any]:
        """The signed statement; raises ``ReleaseRefused`` (a ``ModelRejected``)."""
        what = f"model {artifact.version}"
        if document is None:
            raise ReleaseRefused(f"{what} is not signed (a candidate: python -m tools.models approve {artifact.version})")
        statement = self._verified(document, what)
        check_model_statement(artifact, statement)
        return statement

    def check_rules(self, name: str, data: bytes, document: Any) -> dict[str, Any]:
        if document is None:
            raise ReleaseRefused(f"rules {name} are not signed (python -m tools.models sign-rules)")
        statement = self._verified(document, f"rules {name}")
        check_rules_statement(name, data, statement)
        return statement

    def _verified(self, document: Any, what: str) -> dict[str, Any]:
        if self.verifier is None:
            raise ReleaseRefused(f"{what}: no release key is configured (FRAUD_RELEASE_KEY), so no release can be verified")
        statement, signature = open_envelope(document, what)
        try:
            self.verifier.verify(canonical_json(statement), signature, str(statement.get("key_id", "")))
        except BadSignature as exc:
            raise ReleaseRefused(f"{what}: bad release signature: {exc}") from None
        return statement


def is_signed(registry: ModelRegistryPort, check: ReleaseCheck, version: str) -> bool:
    """Whether ``version`` has a release that verifies (for listings and approvals)."""
    try:
        check.check(registry.load(version), registry.release(version))
    except ReleaseRefused:
        return False
    return True


def approve(registry: ModelRegistryPort, signer: ReleaseSigner, check: ReleaseCheck, version: str,
            approved_by: str, reason: str = "approved") -> CurrentPointer:
    """Sign ``version`` (unless a valid release exists) and make it current (ETag-checked:
    ``StalePointer`` when another promotion moved it meanwhile)."""
    pointer = registry.current()
    if registry.release(version) is None:
        sign_model(registry, signer, version, approved_by)
    # signed now or before: it must verify (a tampered version is never approved by re-signing)
    check.check(registry.load(version), registry.release(version))
    return registry.set_current(version, pointer, reason=f"{reason} by {approved_by}", approved_by=approved_by)


def release(registry: ModelRegistryPort, artifact: ModelArtifact, read_before: CurrentPointer, decision: dict,
            signer: ReleaseSigner | None = None, auto_promote: bool = False) -> str:
    """Returns "promoted" (signed and current: auto-promotion), "candidate" (passed the gate;
    published, unsigned, waiting for ``approve``), "rejected" (published, not current) or
    "lost_race" (another promotion moved the pointer since ``read_before``)."""
    artifact.manifest["promotion"] = decision
    registry.publish(artifact)
    if not decision["promoted"]:
        return "rejected"
    if not auto_promote:
        return "candidate"
    if signer is None:
        log.error("FRAUD_AUTO_PROMOTE is true but FRAUD_RELEASE_KEY is empty: %s stays a candidate", artifact.version)
        return "candidate"
    sign_model(registry, signer, artifact.version, approved_by="auto-promotion (FRAUD_AUTO_PROMOTE)", artifact=artifact)
    try:
        registry.set_current(artifact.version, read_before, reason=f"retrain: {decision['reason']}",
                             approved_by="auto-promotion (FRAUD_AUTO_PROMOTE)")
    except StalePointer:
        return "lost_race"
    return "promoted"


def sign_rules(signer: ReleaseSigner, name: str, data: bytes, signed_by: str) -> dict[str, Any]:
    """The signature envelope of a rules blob (stored as ``<name>.sig`` beside it)."""
    statement = rules_statement(name, data, signed_at=_now(), key_id=signer.key_id, signed_by=signed_by)
    return envelope(statement, signer.sign(canonical_json(statement)))
