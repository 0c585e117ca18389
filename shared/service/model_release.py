"""Releasing a retrained model: publish it (always: its manifest records the gate's
decision), then move the current pointer if the gate promoted it — from the pointer read
before training, so of two concurrent retrains only one can win."""
from __future__ import annotations

from shared.domain.model import ModelArtifact
from shared.service.ports import CurrentPointer, ModelRegistryPort, StalePointer


def release(registry: ModelRegistryPort, artifact: ModelArtifact, read_before: CurrentPointer,
            decision: dict) -> str:
    """Returns "promoted", "rejected" (published, not current) or "lost_race" (another
    promotion moved the pointer since ``read_before``)."""
    artifact.manifest["promotion"] = decision
    registry.publish(artifact)
    if not decision["promoted"]:
        return "rejected"
    try:
        registry.set_current(artifact.version, read_before, reason=f"retrain: {decision['reason']}")
    except StalePointer:
        return "lost_race"
    return "promoted"
