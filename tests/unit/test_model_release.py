"""The champion/challenger gate (pure) and the release on a fake registry: promoted, rejected
(published, not current) and a lost race (another promotion moved the pointer)."""
import numpy as np
import pytest

from contracts import artifact
from fakes import FakeModelRegistry
from shared.domain.promotion import PromotionGate
from shared.service.model_release import release

Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
GOOD = np.array([0.9, 0.8, 0.85, 0.75, 0.1, 0.2, 0.3, 0.1, 0.2, 0.05])  # separates perfectly
FAIR = np.array([0.9, 0.4, 0.85, 0.3, 0.6, 0.2, 0.3, 0.1, 0.2, 0.05])


def test_a_better_challenger_is_promoted_and_the_reason_quotes_the_gain():
    decision = PromotionGate(0.005).judge(Y, GOOD, FAIR, alert_threshold=0.7, champion_version="v1")
    assert decision["promoted"] and decision["champion"]["version"] == "v1"
    assert decision["challenger"]["average_precision"] == pytest.approx(1.0)
    assert decision["reason"].startswith("average precision +")


def test_a_challenger_below_the_required_gain_or_losing_recall_is_not_promoted():
    assert not PromotionGate(0.005).judge(Y, FAIR, FAIR, 0.7)["promoted"]  # no gain
    assert not PromotionGate(0.005).judge(Y, FAIR, GOOD, 0.7)["promoted"]  # worse
    assert "average precision -" in PromotionGate(0.005).judge(Y, FAIR, GOOD, 0.7)["reason"]


def test_with_no_champion_the_challenger_is_promoted():
    decision = PromotionGate().judge(Y, FAIR, None, 0.7)
    assert decision["promoted"] and decision["champion"] is None


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
