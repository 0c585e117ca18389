"""Retraining and hot swap on Azurite: promotion gate (windows, split and every figure in the
manifest; matured sampled decisions in, fresh ones out), a passing challenger stopping at
"candidate" until approved, the triggers' cooldown, ETag race, refusal of bad artifacts, and
swaps during continuous scoring without a failed request."""
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest

from conftest import make_artifact, publish_signed
from fraud_events import decision_record, http_get, http_post, transaction
from functions.model_http import model_http
from functions.retrain_blob import retrain_on_request, retrain_on_training_data
from functions.score_http import score_http
from shared.domain.features import FEATURE_NAMES
from shared.domain.model import ModelArtifact, sha256_hex
from shared.domain.promotion import DAY, TimeWindows
from shared.service.ports import StalePointer
from training.dataset import read_labelled_csv
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


def test_a_training_data_drop_makes_a_candidate_that_a_running_scorer_serves_once_approved(
        published, services, training_container, simulated_csv, monkeypatch, capsys):
    monkeypatch.setenv("FRAUD_MODEL_REFRESH_SECONDS", "0")
    # the weak champion barely alerts: the analysts' stated capacity is the budget, not a multiple of it
    monkeypatch.setenv("FRAUD_PROMOTION_MAX_ALERTS_PER_DAY", "40")
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
    seen = data.times[:4000]  # its training data: the first 4000 rows
    windows = TimeWindows(float(seen[0]), float(seen[-1]) + 1, float(seen[-1]) + 1, float(seen[-1]) + 1)
    weak = make_artifact("weak-champion", X=X, y=y, windows=windows.to_dict())
    publish_signed(services, weak, current=True)
    retrain_on_training_data(drop_training_data(services, simulated_csv))
    candidate = [v for v in services.registry.list_versions() if v not in (published.version, "weak-champion")]
    assert len(candidate) == 1
    manifest = services.registry.manifest(candidate[0])
    assert manifest["promotion"]["promoted"] and manifest["promotion"]["champion"]["version"] == "weak-champion"
    assert manifest["promotion"]["reason"].startswith("promoted: average precision +")
    assert manifest["promotion"]["checks"]["alert_budget"]["budget"] == 40.0
    # the gate passed it, but without FRAUD_AUTO_PROMOTE it is a candidate: unsigned, not current
    assert services.registry.current().version == "weak-champion" and services.registry.release(candidate[0]) is None
    app_services().serving_model.refresh_now()
    assert json.loads(score_http(http_post("score", transaction(3))).get_body())["model_version"] == "weak-champion"
    from tools.models import main as models

    assert models(["list"]) == 0
    assert {line.split()[0]: line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:]
            if not line.startswith("*")}[candidate[0]] == "candidate"
    assert models(["approve", candidate[0], "--by", "ada@bank.example"]) == 0  # a person with the release key
    assert f"{candidate[0]} is now current, signed by ada@bank.example" in capsys.readouterr().out
    current = services.registry.current()
    assert current.version == candidate[0] and current.document["approved_by"] == "ada@bank.example"
    app_services().serving_model.refresh_now()  # what the background check does every N seconds
    after = json.loads(score_http(http_post("score", transaction(2))).get_body())
    assert after["model_version"] == current.version
    body = json.loads(model_http(http_get("model")).get_body())
    assert body["serving_version"] == current.version
    assert {v["version"] for v in body["versions"]} >= {published.version, "weak-champion", current.version}
    assert [e["outcome"] for e in body["swap_history"]][-1] == "loaded"


def test_a_worse_challenger_leaves_the_champion_in_place_even_with_auto_promotion(
        published, services, training_container, simulated_csv, monkeypatch):
    monkeypatch.setenv("FRAUD_AUTO_PROMOTE", "true")
    from shared.composition import reset_app_services

    reset_app_services()
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
    assert promotion["promoted"] is False and "average_precision_gain" in promotion["failed"]
    assert "average precision" in promotion["reason"]


def sample_served_decisions(services, simulated_csv, now):
    """Decisions in the training sample (hash rate 1: every decision) with real feature vectors:
    20-10 days old (matured: 40 labelled fraud, 40 labelled legitimate, 120 unlabelled) and 3-1
    days old (fresh: 20 labelled fraud, 60 unlabelled), as the outlet and the label join write them."""
    from shared.domain.decision_record import Delivery
    from shared.domain.features import replay
    from shared.service.training_sample import TrainingSampleOutlet
    from training.dataset import merchant_risk_replay, read_labelled_csv

    data = read_labelled_csv(simulated_csv)
    X = replay(data.transactions[:280], merchants=merchant_risk_replay(data, 7.0))
    groups = [("MF", 40, 1, 20, 10), ("ML", 40, 0, 20, 10), ("MU", 120, None, 20, 10), ("FF", 20, 1, 3, 2),
              ("FU", 60, None, 3, 2)]  # tag, decisions, label, first day (days ago), days spanned
    records, labels, i = [], {}, 0
    for tag, count, label, days_ago, span in groups:
        for j in range(count):
            when = now - timedelta(days=days_ago) + timedelta(days=span * j / count)
            records.append(decision_record(f"{tag}{j}", when, "Low", customer=f"S{j % 30}", score=0.05,
                                           features=X[i], merchant_id=None))
            if label is not None:
                labels[f"{tag}{j}"] = label
            i += 1
    services.audit.write(records)
    outlet = TrainingSampleOutlet(services.training_sample_store, rate=1.0, audit=services.audit)
    outlet.record([Delivery(r) for r in records])
    where = services.audit.locate(list(labels))
    outlet.add_labels([(where[t].audit_pk, t, {"label": label, "labelled_at": ""}) for t, label in labels.items()])


def test_a_retrain_request_records_its_windows_split_and_every_figure_with_matured_sampled_decisions(
        published, services, training_container, simulated_csv):
    sample_served_decisions(services, simulated_csv, datetime.now(timezone.utc))
    drop_training_data(services, simulated_csv)
    request = json.dumps({"reasons": ["feature drift (PSI >= 0.2): amount"]}).encode()
    retrain_on_request(input_stream("retrain-requests", "requests/x.json", request))
    versions = services.registry.list_versions()
    assert len(versions) == 2
    new = [v for v in versions if v != published.version][0]
    manifest = services.registry.manifest(new)
    promotion = manifest["promotion"]
    assert "feature drift" in promotion["trigger"]
    # sampled decisions: matured ones in (unlabelled as legitimate), fresh ones out, labelled or not
    sample = manifest["data"]["sample"]
    assert sample["labelled_fraud"] == 40 and sample["labelled_legitimate"] == 40
    assert sample["matured_unlabelled_as_legitimate"] == 120 and sample["kept"] == {"fraud": 40, "legitimate": 160}
    assert "fresh_left_out" not in sample and sample["buffer"]["tightened"] == 0  # fresh hours are not read
    # the windows: the challenger's rows end a label delay before the holdout, which starts after the champion's
    windows, champion = TimeWindows.from_dict(manifest["windows"]), TimeWindows.from_dict(published.manifest["windows"])
    assert manifest["windows"]["gap_days"] == pytest.approx(7.0) and promotion["windows"]["gap_days"] == pytest.approx(7.0)
    assert windows.test_start >= champion.train_end and windows.test_start - windows.train_end == pytest.approx(7 * DAY)
    assert promotion["windows"]["champion_training_end_source"] == "windows"
    # the holdout: the newest 20% of the app's own matured decisions (40 of the 200, 8 of them labelled
    # fraud), chosen by their time; no base row, whatever the dropped file's dates
    split = manifest["data"]["split"]
    assert split["holdout_from"] == "the app's decisions"
    assert promotion["holdout"]["rows"] == split["holdout_rows"] == 40
    assert promotion["holdout"]["fraud"] == split["holdout_fraud"] == 8
    assert windows.test_start > read_labelled_csv(simulated_csv).times[-1]  # the base file ends before it
    assert split["training_rows"] <= 12000 < split["training_rows_before_cap"] and split["legitimate_weight"] > 1
    assert manifest["rows"]["test"] == split["holdout_rows"] and split["gap_rows_unused"] > 0
    # every comparison figure, for both models, and every check with its numbers
    for side in ("challenger", "champion"):
        figures = promotion[side]
        for name in ("average_precision", "card_precision_at_k", "ece"):
            assert isinstance(figures[name], float), (side, name)
        for level in ("review", "block"):
            assert {"threshold", "alerts_per_day", "precision", "recall"} <= set(figures[level])
    assert promotion["champion"]["version"] == published.version
    assert promotion["challenger"]["review"]["threshold"] == manifest["thresholds"]["medium"]
    assert promotion["champion"]["review"]["threshold"] == published.manifest["thresholds"]["medium"]
    assert set(promotion["checks"]) == {"challenger_training_before_holdout", "holdout_after_champion_training",
                                        "average_precision_gain", "card_precision_not_worse", "calibration_not_worse",
                                        "alert_budget"}
    assert promotion["failed"] == [n for n, c in promotion["checks"].items() if not c["passed"]]
    assert promotion["promoted"] == (promotion["failed"] == [])
    assert promotion["policy"]["k"] == 20 and promotion["policy"]["max_alert_ratio"] == 1.25


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
    for artifact in (corrupt, mismatched):  # signed: the release key vouches for them, load_model still refuses
        publish_signed(services, artifact, current=True)
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
            publish_signed(services, artifact, current=True)
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


def test_a_trigger_within_the_cooldown_is_recorded_and_skipped_and_a_later_one_trains_on_its_data(
        services, training_container, simulated_csv, monkeypatch):
    """A blob landing within FRAUD_RETRAIN_COOLDOWN_HOURS of the last retrain start starts no
    retrain; the skip is recorded in the registry's retrain log. The data is not lost: the next
    trigger after the cooldown reads every base file, the skipped one's too."""
    from functions.retrain_blob import run_retrain

    monkeypatch.setenv("FRAUD_RETRAIN_COOLDOWN_HOURS", "6")
    from shared.composition import reset_app_services

    reset_app_services()
    start = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    first = run_retrain("retrain request requests/a.json: manual", now=start)  # nothing to train on yet
    assert first["outcome"] == "skipped" and "no rows" in first["reason"]
    assert services.registry.retrain_log().document["last_started_at"] == start.isoformat()

    drop_training_data(services, simulated_csv, name="later.csv")  # a file lands 2 hours later
    second = run_retrain("training data training-data/later.csv", now=start + timedelta(hours=2))
    assert second["outcome"] == "cooldown" and second["next_allowed_at"] == (start + timedelta(hours=6)).isoformat()
    log = services.registry.retrain_log().document
    assert log["last_started_at"] == start.isoformat()  # the skip did not restart the clock
    assert [s["trigger"] for s in log["skipped"]] == ["training data training-data/later.csv"]
    assert services.registry.list_versions() == []

    third = run_retrain("retrain request requests/b.json: manual", now=start + timedelta(hours=7))
    assert third["outcome"] == "candidate"  # no champion: passed on a valid holdout; waits for approval
    manifest = services.registry.manifest(third["version"])
    assert manifest["data"]["base_files"] == ["later.csv"]  # the skipped trigger's file
    assert services.registry.current().version is None
    assert services.registry.retrain_log().document["previous_started_at"] == start.isoformat()
