"""The release of a retrained model on a fake registry: promoted, rejected (published, not
current) and a lost race (another promotion moved the pointer). The gate itself:
test_promotion_gate.py."""
import pytest

from contracts import artifact
from fakes import FakeModelRegistry
from shared.service.model_release import release


@pytest.fixture
def registry():
    registry = FakeModelRegistry()
    registry.publish(artifact("champion"))
    registry.set_current("champion", registry.current())
    return registry


def test_a_promoted_model_is_published_with_its_decision_and_becomes_current(registry):
    read = registry.current()
    outcome = release(registry, artifact("v2"), read, {"promoted": True, "reason": "better"})
    assert outcome == "promoted" and registry.current().version == "v2"
    assert registry.manifest("v2")["promotion"]["reason"] == "better"
    assert registry.current().document["previous"] == "champion"


def test_a_rejected_model_is_published_but_does_not_serve(registry):
    outcome = release(registry, artifact("v2"), registry.current(), {"promoted": False, "reason": "worse"})
    assert outcome == "rejected" and registry.current().version == "champion" and "v2" in registry.list_versions()


def test_of_two_concurrent_retrains_only_the_first_promotion_wins(registry):
    read_by_both = registry.current()
    assert release(registry, artifact("a"), read_by_both, {"promoted": True, "reason": "a"}) == "promoted"
    assert release(registry, artifact("b"), read_by_both, {"promoted": True, "reason": "b"}) == "lost_race"
    assert registry.current().version == "a"
