"""Hot swap on a fake registry: the first model loads once, a new current version is swapped in
on refresh, a refused artifact never serves, and a registry outage keeps the old model. The
shadow challenger follows its own pointer the same way, independently of the champion. Every
version must carry a release signed by the release key (real keys): unsigned, wrongly signed or
tampered versions are refused and the old model keeps serving."""
import pytest

from contracts import artifact
from fakes import FakeModel, FakeModelRegistry
from shared.adapters.release_keys import LocalReleaseKey
from shared.domain.model import ModelArtifact, ModelRejected
from shared.service.model_release import ReleaseCheck, sign_model
from shared.service.model_serving import ModelUnavailable, NoModelPublished, ServingModel

KEY = LocalReleaseKey.generate()
CHECK = ReleaseCheck(KEY)


def publish(registry, art, key=KEY):
    """Publish and sign with the release key (None: leave it unsigned)."""
    registry.publish(art)
    if key is not None:
        sign_model(registry, key, art.version, approved_by="tests", artifact=art)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def loader(loaded: list):
    def load(art):
        if art.manifest.get("broken"):
            raise ModelRejected(f"{art.version}: sha256 does not match")
        loaded.append(art.version)
        return FakeModel(version=art.version)
    return load


@pytest.fixture
def registry():
    return FakeModelRegistry()


def test_no_model_is_a_clear_error_until_one_is_published(registry):
    serving = ServingModel(registry, releases=CHECK, load=loader([]))
    with pytest.raises(NoModelPublished):
        serving.get()
    publish(registry, artifact("v1"))
    registry.set_current("v1", registry.current())
    assert serving.get().version == "v1"


def test_a_new_current_version_is_swapped_in_and_the_history_says_so(registry):
    loaded, clock = [], Clock()
    publish(registry, artifact("v1"))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, releases=CHECK, refresh_seconds=60, clock=clock, load=loader(loaded))
    first = serving.get()
    assert serving.get() is first and loaded == ["v1"]  # loaded once
    publish(registry, artifact("v2"))
    registry.set_current("v2", registry.current())
    clock.now = 30
    serving.refresh_now()
    assert serving.get().version == "v2" and first.version == "v1"  # a caller holding v1 keeps it
    assert [(e.version, e.outcome) for e in serving.history] == [("v1", "loaded"), ("v2", "loaded")]


def test_a_refused_version_never_serves_and_is_not_retried(registry):
    loaded = []
    publish(registry, artifact("v1"))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, releases=CHECK, load=loader(loaded))
    serving.get()
    bad = artifact("v2")
    publish(registry, type(bad)(bad.onnx_bytes, {**bad.manifest, "broken": True}))
    registry.set_current("v2", registry.current())
    serving.refresh_now()
    serving.refresh_now()
    assert serving.get().version == "v1" and "v2" in serving.refused
    assert [e.outcome for e in serving.history] == ["loaded", "refused"]


def test_a_first_refused_model_is_unavailable_not_a_crash(registry):
    bad = artifact("v1")
    publish(registry, type(bad)(bad.onnx_bytes, {**bad.manifest, "broken": True}))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, releases=CHECK, load=loader([]))
    with pytest.raises(ModelUnavailable):
        serving.get()


class Unreachable(FakeModelRegistry):
    down = False

    def current(self):
        if self.down:
            raise ConnectionError("blob service unreachable")
        return super().current()


def test_a_registry_outage_keeps_the_old_model_serving():
    registry = Unreachable()
    publish(registry, artifact("v1"))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, releases=CHECK, load=loader([]))
    serving.get()
    registry.down = True
    serving.refresh_now()
    assert serving.get().version == "v1" and serving.history[-1].outcome == "error"


# -- the shadow challenger: served beside the champion, never in its way ---------------------
def serving_with(registry, champion="v1", shadow=None, loaded=None):
    for version in (champion, shadow):
        if version and version not in registry.list_versions():
            publish(registry, artifact(version))
    registry.set_current(champion, registry.current())
    if shadow:
        registry.set_shadow(shadow)
    return ServingModel(registry, releases=CHECK, load=loader([] if loaded is None else loaded))


def test_the_shadow_loads_with_the_champion_and_follows_its_pointer(registry):
    loaded = []
    serving = serving_with(registry, "v1", "v2", loaded)
    assert serving.shadow() is None  # nothing loads before the first call
    assert serving.get().version == "v1" and serving.shadow().version == "v2" and loaded == ["v1", "v2"]
    publish(registry, artifact("v3"))
    registry.set_shadow("v3")
    serving.refresh_now()
    assert serving.shadow().version == "v3" and serving.get().version == "v1"
    registry.clear_shadow()
    serving.refresh_now()
    assert serving.shadow() is None and serving.get().version == "v1"
    assert [(e.role, e.version, e.outcome) for e in serving.history] == [
        ("champion", "v1", "loaded"), ("shadow", "v2", "loaded"), ("shadow", "v3", "loaded"), ("shadow", "v3", "dropped")]
    serving.refresh_now()
    assert loaded == ["v1", "v2", "v3"] and len(serving.history) == 4  # an unchanged pointer loads nothing


def test_a_champion_swap_keeps_the_shadow_and_a_shadow_change_keeps_the_champion(registry):
    loaded = []
    serving = serving_with(registry, "v1", "v2", loaded)
    shadow = (serving.get(), serving.shadow())[1]
    publish(registry, artifact("v3"))
    registry.set_current("v3", registry.current())
    serving.refresh_now()
    assert serving.get().version == "v3" and serving.shadow() is shadow  # the same loaded shadow, not reloaded
    champion = serving.get()
    publish(registry, artifact("v4"))
    registry.set_shadow("v4")
    serving.refresh_now()
    assert serving.get() is champion and serving.shadow().version == "v4"
    assert loaded == ["v1", "v2", "v3", "v4"]


def test_a_shadow_promoted_to_champion_serves_without_a_reload_and_stops_shadowing(registry):
    loaded = []
    serving = serving_with(registry, "v1", "v2", loaded)
    shadow = (serving.get(), serving.shadow())[1]
    registry.set_current("v2", registry.current(), reason="promoted on shadow evidence")
    serving.refresh_now()
    assert serving.get() is shadow and serving.shadow() is None and loaded == ["v1", "v2"]


def test_a_shadow_naming_the_champion_is_ignored(registry):
    serving = serving_with(registry, "v1", "v1")
    assert serving.get().version == "v1" and serving.shadow() is None


def test_a_refused_shadow_is_not_used_and_the_champion_serves_on(registry):
    bad = artifact("v2")
    publish(registry, type(bad)(bad.onnx_bytes, {**bad.manifest, "broken": True}))
    serving = serving_with(registry, "v1", "v2")
    assert serving.get().version == "v1" and serving.shadow() is None and "v2" in serving.refused
    serving.refresh_now()
    assert [(e.role, e.outcome) for e in serving.history] == [("champion", "loaded"), ("shadow", "refused")]  # not retried
    registry.set_current("v2", registry.current())  # nor served as champion
    serving.refresh_now()
    assert serving.get().version == "v1"


class ShadowUnreachable(FakeModelRegistry):
    down = False

    def shadow(self):
        if self.down:
            raise ConnectionError("blob service unreachable")
        return super().shadow()


def test_an_unreadable_shadow_pointer_never_stops_the_champion():
    registry = ShadowUnreachable()
    serving = serving_with(registry, "v1", "v2")
    registry.down = True
    assert serving.get().version == "v1" and serving.shadow() is None
    assert serving.history[-1].role == "shadow" and serving.history[-1].outcome == "error"
    registry.down = False
    serving.refresh_now()  # the next refresh retries it
    assert serving.shadow().version == "v2"
    registry.down = True
    serving.refresh_now()
    assert serving.shadow().version == "v2" and serving.get().version == "v1"  # an outage keeps both


# -- signed releases: what is not signed by the release key over these bytes never serves ---------
@pytest.mark.parametrize("how", ["unsigned", "other key", "tampered thresholds", "tampered model bytes"])
def test_a_version_without_a_good_release_is_refused_and_the_old_model_keeps_serving(registry, how):
    loaded = []
    publish(registry, artifact("v1"))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, releases=CHECK, load=loader(loaded))
    assert serving.get().version == "v1"
    v2 = artifact("v2")
    if how == "unsigned":
        publish(registry, v2, key=None)
    elif how == "other key":
        publish(registry, v2, key=LocalReleaseKey.generate())
    else:
        signed_registry = FakeModelRegistry()  # signed as published elsewhere, then altered in this registry
        publish(signed_registry, v2)
        altered = (ModelArtifact(v2.onnx_bytes, {**v2.manifest, "thresholds": {"high": 0.999, "medium": 0.999}})
                   if how == "tampered thresholds" else ModelArtifact(v2.onnx_bytes + b"tampered", v2.manifest))
        registry.publish(altered)
        registry.put_release("v2", signed_registry.release("v2"))
    registry.set_current("v2", registry.current())
    serving.refresh_now()
    assert serving.get().version == "v1" and "v2" in serving.refused and loaded == ["v1"]  # never even loaded
    refusal = serving.history[-1]
    assert (refusal.version, refusal.outcome, refusal.role) == ("v2", "refused", "champion")
    why = {"unsigned": "not signed", "other key": "bad release signature",
           "tampered thresholds": "manifest sha256", "tampered model bytes": "model bytes sha256"}[how]
    assert why in refusal.detail


def test_with_no_model_ever_accepted_scoring_is_unavailable_never_unsigned(registry):
    publish(registry, artifact("v1"), key=None)
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, releases=CHECK, load=loader([]))
    with pytest.raises(ModelUnavailable, match="not signed"):
        serving.get()
    signed = FakeModelRegistry()
    publish(signed, artifact("v1"))
    signed.set_current("v1", signed.current())
    unverifiable = ServingModel(signed, load=loader([]))  # no release key configured: even a signed one is refused
    with pytest.raises(ModelUnavailable, match="FRAUD_RELEASE_KEY"):
        unverifiable.get()


def test_an_unsigned_shadow_is_refused_like_a_champion(registry):
    publish(registry, artifact("v1"))
    publish(registry, artifact("v2"), key=None)
    serving = serving_with(registry, "v1", "v2")
    assert serving.get().version == "v1" and serving.shadow() is None and "not signed" in serving.refused["v2"]
    assert [(e.role, e.outcome) for e in serving.history] == [("champion", "loaded"), ("shadow", "refused")]
