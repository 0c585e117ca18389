"""Retraining and hot swap on Azurite: promotion gate, ETag race, refusal of bad artifacts,
and swaps during continuous scoring without a failed request."""
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import azure.functions as func
import pytest

from conftest import make_artifact
from fraud_events import http_get, http_post, transaction
from functions.model_http import model_http
from functions.retrain_blob import retrain_on_request, retrain_on_training_data
from functions.score_http import score_http
from shared.domain.features import FEATURE_NAMES
from shared.domain.model import ModelArtifact, sha256_hex
from shared.service.ports import StalePointer
from shared.composition import app_services


def input_stream(container: str, name: str, data: bytes) -> func.InputStream:
    from azure.functions.blob import InputStream

    return InputStream(name=f"{container}/{name}", uri=f"http://127.0.0.1/{container}/{name}", length=len(data), data=data)


def drop_training_data(services, simulated_csv, name="base.csv"):
    data = simulated_csv.read_bytes()
    services.blob_service.get_container_client("training-data").upload_blob(name, data, overwrite=True)
    return input_stream("training-data", name, data)


@pytest.fixture
def training_container(services, monkeypatch):
    monkeypatch.setenv("FRAUD_TRAINING_CONTAINER", "training-data")
    monkeypatch.setenv("FRAUD_RETRAIN_MAX_ROWS", "12000")
    container = services.blob_service.get_container_client("training-data")
    try:
        container.create_container()
    except Exception:
        for blob in container.list_blobs():
            container.delete_blob(blob.name)
    return container


def test_a_training_data_drop_promotes_a_model_a_running_scorer_then_serves(published, services, training_container,
                                                                            simulated_csv, monkeypatch):
    monkeypatch.setenv("FRAUD_MODEL_REFRESH_SECONDS", "0")
    from shared.composition import reset_app_services

    reset_app_services()
    first = json.loads(score_http(http_post("score", transaction(1))).get_body())
    assert first["model_version"] == published.version
    # a weak champion: fitted on real features with shuffled labels (no skill, not degenerate)
    from shared.domain.features import replay
    from training.dataset import merchant_risk_replay, read_labelled_csv

    data = read_labelled_csv(simulated_csv)
    X = replay(data.transactions[:4000], merchants=merchant_risk_replay(data, 7.0))
    y = data.labels[:4000].copy()
    __import__("numpy").random.default_rng(0).shuffle(y)
    y[:20] = 1
    weak = make_artifact("weak-champion", X=X, y=y)
    services.registry.publish(weak)
    services.registry.set_current("weak-champion", services.registry.current())
    retrain_on_training_data(drop_training_data(services, simulated_csv))
    current = services.registry.current()
    manifest = services.registry.manifest(current.version)
    assert current.version not in (published.version, "weak-champion")
    assert manifest["promotion"]["promoted"] and manifest["promotion"]["champion"]["version"] == "weak-champion"
    app_services().serving_model.refresh_now()  # what the background check does every N seconds
    after = json.loads(score_http(http_post("score", transaction(2))).get_body())
    assert after["model_version"] == current.version
    body = json.loads(model_http(http_get("model")).get_body())
    assert body["serving_version"] == current.version
    assert {v["version"] for v in body["versions"]} >= {published.version, "weak-champion", current.version}
    assert [e["outcome"] for e in body["swap_history"]][-1] == "loaded"


def test_a_worse_challenger_leaves_the_champion_in_place(published, services, training_container, simulated_csv,
                                                         monkeypatch):
    # base data whose labels are noise: the challenger cannot beat the trained champion
    import csv
    import io
    import random

    rng = random.Random(0)
    reader = csv.DictReader(io.StringIO(simulated_csv.read_text()))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
    writer.writeheader()
    for row in reader:
        writer.writerow({**row, "is_fraud": int(rng.random() < 0.01), "fraud_scenario": "", "fraud_incident": "",
                         "labelled_at": ""})
    data = out.getvalue().encode()
    training_container.upload_blob("noise.csv", data)
    retrain_on_training_data(input_stream("training-data", "noise.csv", data))
    assert services.registry.current().version == published.version
    candidates = [v for v in services.registry.list_versions() if v != published.version]
    assert len(candidates) == 1
    promotion = services.registry.manifest(candidates[0])["promotion"]
    assert promotion["promoted"] is False and "average precision" in promotion["reason"]


def test_a_retrain_request_blob_also_retrains(published, services, training_container, simulated_csv):
    drop_training_data(services, simulated_csv)
    request = json.dumps({"reasons": ["feature drift (PSI >= 0.2): amount"]}).encode()
    retrain_on_request(input_stream("retrain-requests", "requests/x.json", request))
    versions = services.registry.list_versions()
    assert len(versions) == 2
    new = [v for v in versions if v != published.version][0]
    assert "feature drift" in services.registry.manifest(new)["promotion"]["trigger"]


def test_two_concurrent_promotions_have_one_winner(services):
    registry = services.registry
    for v in ("a", "b"):
        registry.publish(make_artifact(v))
    seen = registry.current()
    barrier = threading.Barrier(2)

    def promote(version):
        barrier.wait()
        try:
            registry.set_current(version, seen)
            return "won"
        except StalePointer:
            return "lost"

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(promote, ["a", "b"]))
    assert results == ["lost", "won"]


def test_corrupt_and_mismatched_artifacts_are_refused_and_the_old_model_keeps_serving(published, services):
    serving = app_services().serving_model
    serving.refresh_now()
    assert serving.loaded.version == published.version
    good = make_artifact("tmp")
    corrupt = ModelArtifact(good.onnx_bytes[: len(good.onnx_bytes) // 2],
                            {**good.manifest, "version": "corrupt", "onnx_sha256": sha256_hex(good.onnx_bytes)})
    mismatched = ModelArtifact(good.onnx_bytes, {**good.manifest, "version": "old-schema",
                                                 "feature_schema_hash": "feedfacefeedface",
                                                 "feature_names": list(FEATURE_NAMES[:-1])})
    for artifact in (corrupt, mismatched):
        services.registry.publish(artifact)
        services.registry.set_current(artifact.version, services.registry.current())
        serving.refresh_now()
        assert serving.loaded.version == published.version
        assert artifact.version in serving.refused
        response = score_http(http_post("score", transaction(hash(artifact.version) % 1000)))
        assert response.status_code == 200 and json.loads(response.get_body())["model_version"] == published.version


def test_ten_swaps_during_continuous_scoring_fail_no_request(published, services, monkeypatch):
    monkeypatch.setenv("FRAUD_MODEL_REFRESH_SECONDS", "0")
    from shared.composition import reset_app_services

    reset_app_services()
    versions = [published.version]
    stop = threading.Event()
    responses = []

    def score_continuously(worker):
        i = 0
        while not stop.is_set():
            r = score_http(http_post("score", transaction(worker * 100000 + i, customer=f"C{worker}")))
            responses.append((r.status_code, json.loads(r.get_body()).get("model_version")))
            i += 1

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(score_continuously, w) for w in range(3)]
        for k in range(10):
            artifact = make_artifact(f"swap-{k}", seed=k)
            services.registry.publish(artifact)
            services.registry.set_current(artifact.version, services.registry.current())
            versions.append(artifact.version)
            app_services().serving_model.refresh_now()
            before = len(responses)
            while len(responses) < before + 3:
                threading.Event().wait(0.01)
        stop.set()
        for f in futures:
            f.result()
    assert responses and all(status == 200 for status, _ in responses)
    assert all(version in versions for _, version in responses)
    assert app_services().serving_model.loaded.version == versions[-1]
    assert len({v for _, v in responses}) >= 5  # responses really came from many of the swapped models
