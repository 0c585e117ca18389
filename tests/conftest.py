"""Shared fixtures: a private Azurite on free ports for the whole session, fresh storage
names per test, and a model trained once on simulated data."""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.composition import AppServices, reset_app_services  # noqa: E402
from tools.azurite import running_azurite  # noqa: E402

from fakes import TEST_PSEUDONYM_KEY  # noqa: E402

# The app has no built-in pseudonym key: every process the tests start gets the tests' one.
os.environ["FRAUD_PSEUDONYM_KEY"] = TEST_PSEUDONYM_KEY


@pytest.fixture(scope="session")
def azurite():
    """Azurite started for this test session (never a mock), stopped at the end."""
    with running_azurite(free_ports=True) as process:
        yield process


@pytest.fixture(scope="session")
def release_key_file(tmp_path_factory) -> Path:
    """The test release key (PEM EC P-256), the local form of FRAUD_RELEASE_KEY: every test's
    app signs and verifies model and rules releases with it."""
    from shared.adapters.release_keys import LocalReleaseKey

    path = tmp_path_factory.mktemp("keys") / "release-signing.pem"
    LocalReleaseKey.create_file(path)
    return path


@pytest.fixture
def release_key(release_key_file):
    from shared.adapters.release_keys import LocalReleaseKey

    return LocalReleaseKey.from_pem_file(release_key_file)


@pytest.fixture
def app_env(azurite, monkeypatch, release_key_file):
    """Settings pointing at Azurite with table/container/queue names unique to this test."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "FRAUD_PROFILE_TABLE": f"profiles{suffix}",
        "FRAUD_AUDIT_TABLE": f"scores{suffix}",
        "FRAUD_ALERT_QUEUE": f"fraud-alerts-{suffix}",
        "FRAUD_DEAD_LETTER_CONTAINER": f"dead-letter-{suffix}",
        "FRAUD_MODEL_CONTAINER": f"models-{suffix}",
        "FRAUD_LABEL_TABLE": f"labels{suffix}",
        "FRAUD_LABELS_CONTAINER": f"labels-{suffix}",
        "FRAUD_MONITORING_CONTAINER": f"monitoring-{suffix}",
        "FRAUD_RETRAIN_CONTAINER": f"retrain-requests-{suffix}",
        "FRAUD_MERCHANT_TABLE": f"merchantrisk{suffix}",
        "FRAUD_AGGREGATE_TABLE": f"monitoraggregates{suffix}",
        "FRAUD_TRAINING_SAMPLE_CONTAINER": f"training-sample-{suffix}",
        "FRAUD_ARCHIVE_CONTAINER": f"decision-archive-{suffix}",
        "FRAUD_ARCHIVE_STAGING_CONTAINER": f"decision-staging-{suffix}",
        "FRAUD_STORAGE_RETRIES": "2",
        "FRAUD_RETRAIN_SEARCH_CANDIDATES": "1",
        "FRAUD_ARCHIVE_LINGER_MS": "0",  # archive lines appended with each call: tests read them at once
        "FRAUD_MONITOR_FLUSH_SECONDS": "0",  # aggregates written at every batch: the monitor sees them at once
        "FRAUD_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "FRAUD_ANALYST_AUTH": "development",  # the principal header is trusted as the tests send it
        "FRAUD_RELEASE_KEY": str(release_key_file),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("FRAUD_RULES", "FRAUD_RULES_BLOB", "FRAUD_HIGH_THRESHOLD", "FRAUD_MEDIUM_THRESHOLD",
                "FRAUD_ALERT_THRESHOLD", "FRAUD_ALERT_WEBHOOK_URL", "FRAUD_PROFILE_ACCOUNTS"):
        monkeypatch.delenv(key, raising=False)
    for key in ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_AUTH_ENABLED"):
        monkeypatch.delenv(key, raising=False)  # not in Azure
    for key in [k for k in os.environ if k.startswith(("FRAUD_DATA_STORAGE", "FRAUD_MODEL_STORAGE"))]:
        monkeypatch.delenv(key)  # the data account (and the model storage) is AzureWebJobsStorage: this test's Azurite
    monkeypatch.delenv("FRAUD_AUTO_PROMOTE", raising=False)
    reset_app_services()
    yield env
    reset_app_services()


@pytest.fixture
def development_auth(monkeypatch):
    """FRAUD_ANALYST_AUTH=development outside Azure, for tests that need no storage: the
    analysts' routes trust the X-MS-CLIENT-PRINCIPAL header the test sends."""
    monkeypatch.setenv("FRAUD_ANALYST_AUTH", "development")
    for key in ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_AUTH_ENABLED"):
        monkeypatch.delenv(key, raising=False)
    reset_app_services()
    yield
    reset_app_services()


@pytest.fixture
def every_decision_high(app_env, monkeypatch):
    """Thresholds at 0: every decision is High (exercises alerts and the analysts' queue)."""
    monkeypatch.setenv("FRAUD_HIGH_THRESHOLD", "0.0")
    monkeypatch.setenv("FRAUD_MEDIUM_THRESHOLD", "0.0")
    reset_app_services()


@pytest.fixture
def services(app_env) -> AppServices:
    services = AppServices(dict(os.environ))
    services.ensure_resources()
    return services


@pytest.fixture(scope="session")
def simulated_csv(tmp_path_factory) -> Path:
    from training.pipeline import simulate_csv

    return simulate_csv(tmp_path_factory.mktemp("sim") / "transactions.csv", customers=400, days=45, seed=11)


@pytest.fixture(scope="session")
def trained_artifact(simulated_csv, tmp_path_factory):
    """A real model: simulated data -> feature replay -> HistGradientBoosting -> ONNX."""
    from training.pipeline import train_artifact

    out = tmp_path_factory.mktemp("model")
    return train_artifact(simulated_csv, out, ["--max-iter", "60", "--search-candidates", "2", "--search-seconds", "3600",
                                                "--version", "test-v1",
                                                "--scores-out", str(out / "scores.csv")])


@pytest.fixture
def published(services, trained_artifact):
    """The trained model published, signed with the test release key and current in this test's registry."""
    from training.pipeline import publish_current

    publish_current(services.registry, trained_artifact, services.release_signer, approved_by="tests")
    return trained_artifact


def publish_signed(services_or_registry, artifact, signer=None, current: bool = False, shadow: bool = False):
    """Publish ``artifact`` in a registry and sign its release (the app's release key unless
    ``signer``); optionally point current or the shadow at it. Returns the version."""
    from shared.service.model_release import sign_model

    registry = getattr(services_or_registry, "registry", services_or_registry)
    signer = signer or services_or_registry.release_signer
    registry.publish(artifact)
    sign_model(registry, signer, artifact.version, approved_by="tests", artifact=artifact)
    if current:
        registry.set_current(artifact.version, registry.current())
    if shadow:
        registry.set_shadow(artifact.version)
    return artifact.version


def make_artifact(version: str, seed: int = 0, X=None, y=None, **manifest_overrides):
    """A small but real ONNX model over the current feature list (for registry and swap tests);
    trained on random data unless X, y are given."""
    import numpy as np

    from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH
    from shared.domain.model import DEFAULT_THRESHOLDS, ModelArtifact, sha256_hex
    from training.train import fit_classifier, to_onnx

    rng = np.random.default_rng(seed)
    if X is None:
        X = rng.normal(size=(400, len(FEATURE_NAMES))).astype(np.float32)
        y = (X[:, 0] + rng.normal(scale=0.5, size=400) > 1.0).astype(int)
    model = fit_classifier(X, y, max_iter=10, seed=seed)
    onnx_bytes = to_onnx(model)
    manifest = {"version": version, "feature_names": list(FEATURE_NAMES), "feature_schema_hash": FEATURE_SCHEMA_HASH,
                "thresholds": dict(DEFAULT_THRESHOLDS), "onnx_sha256": sha256_hex(onnx_bytes), **manifest_overrides}
    return ModelArtifact(onnx_bytes, manifest)
