"""Releases on a fake registry with real keys: a retrained model that passes the gate stops at
"candidate" unless auto-promotion is on (then it is signed and current); a rejected one is
published, not current; of two concurrent promotions one wins; ``approve`` signs and promotes;
``ReleaseCheck`` refuses an unsigned release, another key's signature, and model bytes or a
manifest that differ from the signed ones. The gate itself: test_promotion_gate.py."""
import pytest

from contracts import artifact
from fakes import FakeModelRegistry
from shared.adapters.release_keys import LocalReleaseKey
from shared.domain.model import ModelArtifact
from shared.domain.release import ReleaseRefused
from shared.service.model_release import ReleaseCheck, approve, release, sign_model
from shared.service.ports import StalePointer

KEY = LocalReleaseKey.generate()
OTHER_KEY = LocalReleaseKey.generate()


def thresholded(version: str) -> ModelArtifact:
    bare = artifact(version)
    return ModelArtifact(bare.onnx_bytes, {**bare.manifest, "thresholds": {"high": 0.9, "medium": 0.5, "alert": 0.5},
                                           "calibration": None})


@pytest.fixture
def registry():
    registry = FakeModelRegistry()
    registry.publish(thresholded("champion"))
    sign_model(registry, KEY, "champion", approved_by="tests")
    registry.set_current("champion", registry.current())
    return registry


def test_a_challenger_the_gate_passes_is_a_candidate_unsigned_and_not_current_without_auto_promotion(registry):
    outcome = release(registry, thresholded("v2"), registry.current(), {"promoted": True, "reason": "better"},
                      signer=KEY, auto_promote=False)
    assert outcome == "candidate" and registry.current().version == "champion"
    assert registry.release("v2") is None and registry.manifest("v2")["promotion"]["reason"] == "better"


def test_with_auto_promotion_it_is_signed_and_becomes_current(registry):
    read = registry.current()
    outcome = release(registry, thresholded("v2"), read, {"promoted": True, "reason": "better"},
                      signer=KEY, auto_promote=True)
    assert outcome == "promoted" and registry.current().version == "v2"
    assert registry.manifest("v2")["promotion"]["reason"] == "better"
    assert registry.current().document["previous"] == "champion"
    statement = ReleaseCheck(KEY).check(registry.load("v2"), registry.release("v2"))
    assert statement["approved_by"].startswith("auto-promotion") and statement["key_id"] == KEY.key_id


def test_auto_promotion_without_a_release_key_stays_a_candidate(registry):
    outcome = release(registry, thresholded("v2"), registry.current(), {"promoted": True, "reason": "better"},
                      signer=None, auto_promote=True)
    assert outcome == "candidate" and registry.current().version == "champion" and registry.release("v2") is None


def test_a_rejected_model_is_published_but_neither_signed_nor_current(registry):
    outcome = release(registry, thresholded("v2"), registry.current(), {"promoted": False, "reason": "worse"},
                      signer=KEY, auto_promote=True)
    assert outcome == "rejected" and registry.current().version == "champion" and "v2" in registry.list_versions()
    assert registry.release("v2") is None


def test_of_two_concurrent_retrains_only_the_first_promotion_wins(registry):
    read_by_both = registry.current()
    assert release(registry, thresholded("a"), read_by_both, {"promoted": True, "reason": "a"},
                   signer=KEY, auto_promote=True) == "promoted"
    assert release(registry, thresholded("b"), read_by_both, {"promoted": True, "reason": "b"},
                   signer=KEY, auto_promote=True) == "lost_race"
    assert registry.current().version == "a"


def test_approve_signs_the_candidate_with_who_approved_and_moves_the_pointer(registry):
    release(registry, thresholded("v2"), registry.current(), {"promoted": True, "reason": "better"})
    pointer = approve(registry, KEY, ReleaseCheck(KEY), "v2", "ada@bank.example")
    assert pointer.version == registry.current().version == "v2"
    assert registry.current().document["approved_by"] == "ada@bank.example"
    statement = ReleaseCheck(KEY).check(registry.load("v2"), registry.release("v2"))
    assert statement["approved_by"] == "ada@bank.example" and statement["version"] == "v2"
    assert statement["thresholds"] == {"high": 0.9, "medium": 0.5, "alert": 0.5}


def test_approve_refuses_a_version_whose_existing_release_another_key_signed(registry):
    registry.publish(thresholded("v2"))
    sign_model(registry, OTHER_KEY, "v2", approved_by="mallory")
    with pytest.raises(ReleaseRefused, match="bad release signature"):
        approve(registry, KEY, ReleaseCheck(KEY), "v2", "ada")
    assert registry.current().version == "champion"


def test_approve_moves_the_pointer_only_from_what_it_read(registry, monkeypatch):
    registry.publish(thresholded("v2"))
    read = registry.current()
    registry.publish(thresholded("v3"))
    registry.set_current("v3", read)  # someone else promotes between the read and the write
    monkeypatch.setattr(registry, "current", lambda: read)
    with pytest.raises(StalePointer):
        approve(registry, KEY, ReleaseCheck(KEY), "v2", "ada")


# -- the check serving runs ---------------------------------------------------------------------

def signed(version="v2", key=KEY):
    registry = FakeModelRegistry()
    registry.publish(thresholded(version))
    sign_model(registry, key, version, approved_by="tests")
    return registry


def test_a_signed_release_passes_and_names_what_it_signed():
    registry = signed()
    statement = ReleaseCheck(KEY).check(registry.load("v2"), registry.release("v2"))
    assert statement["onnx_sha256"] and statement["manifest_sha256"] and statement["feature_names"] == ["a"]


def test_an_unsigned_version_is_refused():
    registry = FakeModelRegistry()
    registry.publish(thresholded("v2"))
    with pytest.raises(ReleaseRefused, match="not signed"):
        ReleaseCheck(KEY).check(registry.load("v2"), registry.release("v2"))


def test_another_keys_signature_is_refused():
    registry = signed(key=OTHER_KEY)
    with pytest.raises(ReleaseRefused, match="bad release signature"):
        ReleaseCheck(KEY).check(registry.load("v2"), registry.release("v2"))


def test_a_statement_edited_after_signing_is_refused_even_with_the_right_key_id():
    registry = signed()
    document = registry.release("v2")
    document["statement"]["approved_by"] = "someone else"
    with pytest.raises(ReleaseRefused, match="bad release signature"):
        ReleaseCheck(KEY).check(registry.load("v2"), document)
    forged = registry.release("v2")
    forged["signature"] = forged["signature"][::-1]
    with pytest.raises(ReleaseRefused):
        ReleaseCheck(KEY).check(registry.load("v2"), forged)


def test_tampered_thresholds_in_the_manifest_are_refused():
    registry = signed()
    good = registry.load("v2")
    lowered = ModelArtifact(good.onnx_bytes, {**good.manifest, "thresholds": {"high": 0.999, "medium": 0.99, "alert": 0.99}})
    with pytest.raises(ReleaseRefused, match="manifest sha256"):
        ReleaseCheck(KEY).check(lowered, registry.release("v2"))


def test_tampered_model_bytes_are_refused():
    registry = signed()
    good = registry.load("v2")
    with pytest.raises(ReleaseRefused, match="model bytes sha256"):
        ReleaseCheck(KEY).check(ModelArtifact(good.onnx_bytes + b"\0", good.manifest), registry.release("v2"))


def test_a_release_signed_for_another_version_is_refused():
    registry = signed("v2")
    registry.publish(thresholded("v3"))
    with pytest.raises(ReleaseRefused, match="signed for version 'v2'"):
        ReleaseCheck(KEY).check(registry.load("v3"), registry.release("v2"))


def test_without_a_release_key_nothing_passes():
    registry = signed()
    with pytest.raises(ReleaseRefused, match="FRAUD_RELEASE_KEY"):
        ReleaseCheck(None).check(registry.load("v2"), registry.release("v2"))
