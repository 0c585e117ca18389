"""The model registry on Azurite: publish, list, load, and a pointer moved only by ETag."""
import pytest

from conftest import make_artifact
from shared.domain.model import ModelRejected, ModelArtifact, load_model
from shared.service.ports import StalePointer, VersionExists


def test_round_trip_and_listing(services):
    registry = services.registry
    a, b = make_artifact("v1"), make_artifact("v2", seed=1)
    registry.publish(a)
    registry.publish(b)
    assert registry.list_versions() == ["v1", "v2"]
    loaded = registry.load("v2")
    assert loaded.onnx_bytes == b.onnx_bytes and loaded.manifest == b.manifest
    assert registry.load_current() is None  # nothing is current until the pointer is set


def test_a_published_version_is_immutable(services):
    services.registry.publish(make_artifact("v1"))
    with pytest.raises(VersionExists):
        services.registry.publish(make_artifact("v1", seed=5))


def test_pointer_updates_need_the_etag_they_read(services):
    registry = services.registry
    for v in ("v1", "v2", "v3"):
        registry.publish(make_artifact(v))
    empty = registry.current()
    first = registry.set_current("v1", empty)
    assert registry.current().version == "v1"
    with pytest.raises(StalePointer):  # a second creator of the pointer loses
        registry.set_current("v2", empty)
    stale = first
    registry.set_current("v2", registry.current())
    with pytest.raises(StalePointer):  # a writer holding an old ETag loses
        registry.set_current("v3", stale)
    current = registry.current()
    assert current.version == "v2" and current.document["previous"] == "v1"
    assert registry.load_current().version == "v2"


def test_the_pointer_cannot_name_an_unpublished_version(services):
    with pytest.raises(ValueError):
        services.registry.set_current("ghost", services.registry.current())


def test_loading_verifies_sha_and_feature_schema():
    good = make_artifact("v1")
    from shared.domain.features import N_FEATURES

    assert load_model(good).predict(__import__("numpy").zeros((3, N_FEATURES), dtype="float32")).shape == (3,)
    tampered = ModelArtifact(good.onnx_bytes[:-1] + b"x", good.manifest)
    with pytest.raises(ModelRejected, match="sha256"):
        load_model(tampered)
    other_schema = ModelArtifact(good.onnx_bytes, {**good.manifest, "feature_schema_hash": "0000"})
    with pytest.raises(ModelRejected, match="feature schema"):
        load_model(other_schema)
    garbage = b"not an onnx model"
    from shared.domain.model import sha256_hex

    with pytest.raises(ModelRejected, match="onnxruntime"):
        load_model(ModelArtifact(garbage, {**good.manifest, "onnx_sha256": sha256_hex(garbage)}))


def test_a_read_only_identity_can_start_without_creating_the_container_and_read_a_signed_release(published, services):
    """Scoring reads the model container, never writes it (in Azure only the release identity may):
    with read-only access, ensure_container's 403 is tolerated and the signed model still loads."""
    from datetime import datetime, timedelta, timezone

    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import AccountSasPermissions, BlobServiceClient, ResourceTypes, generate_account_sas

    from shared.adapters.model_registry import ModelRegistry
    from shared.adapters.storage_account import AZURITE_KEYS
    from shared.service.model_release import ReleaseCheck

    account = services.blob_service.account_name
    sas = generate_account_sas(account, AZURITE_KEYS[account], ResourceTypes(service=True, container=True, object=True),
                               AccountSasPermissions(read=True, list=True),
                               expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    read_only = BlobServiceClient(services.blob_service.url, credential=sas)
    registry = ModelRegistry(read_only, services.config.model_container)
    registry.ensure_container()  # 403: logged, not raised
    ModelRegistry(read_only, "models-never-created").ensure_container()  # 403 for a missing one too
    assert "models-never-created" not in [c.name for c in services.blob_service.list_containers()]
    with pytest.raises(HttpResponseError) as refused:
        registry.put_release(published.version, {"statement": {}})  # and it cannot write
    assert refused.value.status_code == 403
    version = registry.current().version
    assert version == published.version
    ReleaseCheck(services.release_verifier).check(registry.load(version), registry.release(version))
