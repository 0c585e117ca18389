"""Hot swap on a fake registry: the first model loads once, a new current version is swapped in
on refresh, a refused artifact never serves, and a registry outage keeps the old model."""
import pytest

from contracts import artifact
from fakes import FakeModel, FakeModelRegistry
from shared.domain.model import ModelRejected
from shared.service.model_serving import ModelUnavailable, NoModelPublished, ServingModel


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
    serving = ServingModel(registry, load=loader([]))
    with pytest.raises(NoModelPublished):
        serving.get()
    registry.publish(artifact("v1"))
    registry.set_current("v1", registry.current())
    assert serving.get().version == "v1"


def test_a_new_current_version_is_swapped_in_and_the_history_says_so(registry):
    loaded, clock = [], Clock()
    registry.publish(artifact("v1"))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, refresh_seconds=60, clock=clock, load=loader(loaded))
    first = serving.get()
    assert serving.get() is first and loaded == ["v1"]  # loaded once
    registry.publish(artifact("v2"))
    registry.set_current("v2", registry.current())
    clock.now = 30
    serving.refresh_now()
    assert serving.get().version == "v2" and first.version == "v1"  # a caller holding v1 keeps it
    assert [(e.version, e.outcome) for e in serving.history] == [("v1", "loaded"), ("v2", "loaded")]


def test_a_refused_version_never_serves_and_is_not_retried(registry):
    loaded = []
    registry.publish(artifact("v1"))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, load=loader(loaded))
    serving.get()
    bad = artifact("v2")
    registry.publish(type(bad)(bad.onnx_bytes, {**bad.manifest, "broken": True}))
    registry.set_current("v2", registry.current())
    serving.refresh_now()
    serving.refresh_now()
    assert serving.get().version == "v1" and "v2" in serving.refused
    assert [e.outcome for e in serving.history] == ["loaded", "refused"]


def test_a_first_refused_model_is_unavailable_not_a_crash(registry):
    bad = artifact("v1")
    registry.publish(type(bad)(bad.onnx_bytes, {**bad.manifest, "broken": True}))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, load=loader([]))
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
    registry.publish(artifact("v1"))
    registry.set_current("v1", registry.current())
    serving = ServingModel(registry, load=loader([]))
    serving.get()
    registry.down = True
    serving.refresh_now()
    assert serving.get().version == "v1" and serving.history[-1].outcome == "error"
