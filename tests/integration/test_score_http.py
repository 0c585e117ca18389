"""The HTTP contract, calling the decorated functions with real func.HttpRequest objects."""
import json
from pathlib import Path

import jsonschema
import pytest

from fraud_events import ProfilesLoadedTogether, analyst_post, http_get, http_post, transaction
from functions.score_http import health_http, openapi_http, predict_http, score_http

SPEC = json.loads((Path(__file__).resolve().parents[2] / "functions" / "openapi.json").read_text())
SEED_EXAMPLE = {"customer_id": "C12345", "transaction_amount": 250000, "device_id": "new_device_99",
                "merchant_category": "electronics", "channel": "online"}


def assert_matches(response, path, method="post"):
    """The response conforms to the OpenAPI description for its status."""
    operation = SPEC["paths"][path][method]
    spec = operation["responses"][str(response.status_code)]
    if "$ref" in spec:
        spec = SPEC["components"]["responses"][spec["$ref"].split("/")[-1]]
    schema = {**spec["content"]["application/json"]["schema"], "components": SPEC["components"]}
    body = json.loads(response.get_body())
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
    return body


def call(fn, req):
    """Invoke the decorated function as the worker does: with a real func.HttpRequest."""
    return fn(req)


def test_the_seeds_example_gets_an_explained_decision(published):
    response = call(score_http, http_post("score", SEED_EXAMPLE))
    assert response.status_code == 200
    body = assert_matches(response, "/score")
    assert body["model_version"] == published.version
    assert set(body["generated_fields"]) == {"transaction_id", "timestamp"}
    assert 0.0 <= body["fraud_probability"] <= 1.0
    assert body["action"] == {"High": "block", "Medium": "review", "Low": "approve"}[body["risk_level"]]
    if body["risk_level"] != "Low":
        assert 1 <= len(body["reasons"]) <= 3


def test_predict_is_the_same_contract(published):
    response = call(predict_http, http_post("predict", transaction(1)))
    assert response.status_code == 200
    assert_matches(response, "/predict")["transaction_id"] == "T1"


def test_bad_fields_are_a_400_naming_each_field(published):
    bad = {**transaction(2), "transaction_amount": -3, "customer_id": "a/b"}
    response = call(score_http, http_post("score", bad))
    assert response.status_code == 400
    body = assert_matches(response, "/score")
    assert [e["field"] for e in body["errors"]] == ["customer_id", "transaction_amount"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[1,2]", b"null", b'"text"'])
def test_unparseable_or_non_object_bodies_are_400_at_the_root(published, raw):
    response = call(score_http, http_post("score", None, raw=raw))
    assert response.status_code == 400
    body = assert_matches(response, "/score")
    assert body["errors"][0]["field"] == "$"


def test_an_oversize_body_is_413(published, monkeypatch):
    monkeypatch.setenv("FRAUD_HTTP_MAX_BODY_BYTES", "1000")
    response = call(score_http, http_post("score", {**transaction(3), "merchant_category": "x" * 2000}))
    assert response.status_code == 413
    assert_matches(response, "/score")


def test_no_published_model_is_a_clear_503(services):
    response = call(score_http, http_post("score", transaction(4)))
    assert response.status_code == 503
    body = assert_matches(response, "/score")
    assert body["error"] == "no_model" and "no model is published" in body["message"]
    assert response.headers["Retry-After"]


def test_a_repeated_transaction_id_returns_the_decision_already_made(published, services):
    first = json.loads(call(score_http, http_post("score", transaction(5, amount=9000))).get_body())
    again = json.loads(call(score_http, http_post("score", transaction(5, amount=9000))).get_body())
    assert again["duplicate"] is True and first["duplicate"] is False
    assert again["fraud_probability"] == first["fraud_probability"]
    assert services.profiles.load("C1").profile.history_count == 1


def test_a_retry_without_timestamp_is_a_duplicate_not_a_conflict(published, services):
    body = {k: v for k, v in transaction(6).items() if k != "timestamp"}
    first = json.loads(call(score_http, http_post("score", body)).get_body())
    again = call(score_http, http_post("score", body))  # the server fills a new 'now'
    assert again.status_code == 200 and json.loads(again.get_body())["duplicate"] is True
    assert first["generated_fields"] == ["timestamp"]


def test_a_reused_transaction_id_with_other_content_is_a_409_naming_the_field(published, services):
    call(score_http, http_post("score", transaction(5, amount=9000)))
    response = score_http(http_post("score", transaction(5, amount=999999)))
    body = assert_matches(response, "/score", "post")
    assert response.status_code == 409
    assert body["errors"][0]["field"] == "transaction_id" and "transaction_amount" in body["errors"][0]["problem"]
    # the same id for another customer, scored earlier in another request: also refused
    other = score_http(http_post("score", transaction(5, customer="C2", amount=9000)))
    assert other.status_code == 409 and "customer_id" in json.loads(other.get_body())["errors"][0]["problem"]
    assert services.profiles.load("C1").profile.history_count == 1
    assert services.profiles.load("C2").profile.history_count == 0


def test_a_reused_transaction_id_from_another_device_is_a_409_though_profiles_keep_only_pseudonyms(published, services):
    first = call(score_http, http_post("score", transaction(7, device_id="Dev-A")))
    assert first.status_code == 200
    same = call(score_http, http_post("score", transaction(7, device_id="Dev-A")))
    assert same.status_code == 200 and json.loads(same.get_body())["duplicate"] is True
    other = score_http(http_post("score", transaction(7, device_id="Dev-B")))
    assert other.status_code == 409
    problem = json.loads(other.get_body())["errors"][0]["problem"]
    assert "device_id" in problem and "Dev-" not in problem


def test_health_reports_model_and_storage(published):
    response = call(health_http, http_get("health"))
    body = assert_matches(response, "/health", "get")
    assert response.status_code == 200 and body["model_version"] == published.version and body["storage_reachable"]


def test_health_without_a_model_is_degraded(services):
    response = call(health_http, http_get("health"))
    assert response.status_code == 503 and assert_matches(response, "/health", "get")["status"] == "degraded"


def test_the_openapi_document_is_served_and_describes_the_routes():
    response = call(openapi_http, http_get("openapi.json"))
    doc = json.loads(response.get_body())
    assert {"/score", "/predict", "/health"} <= set(doc["paths"])
    jsonschema.Draft202012Validator.check_schema({**doc["components"]["schemas"]["Decision"]})


def test_labels_and_model_follow_the_openapi_description(published):
    from functions.labels_http import labels_http
    from functions.model_http import model_http

    score_http(http_post("score", transaction(30)))
    accepted = labels_http(analyst_post("labels", [{"transaction_id": "T30", "label": "fraud"}]))
    assert accepted.status_code == 202 and assert_matches(accepted, "/labels")["joined"] == 1
    refused = labels_http(analyst_post("labels", {"transaction_id": "T30"}))
    assert refused.status_code == 400 and assert_matches(refused, "/labels")["errors"][0]["field"] == "labels[0].label"
    status = model_http(http_get("model"))
    assert assert_matches(status, "/model", "get")["serving_version"] == published.version


def test_two_instances_scoring_one_new_id_for_two_customers_at_once_give_it_to_one(published, services):
    """Two app instances (two AppServices on one storage) score the same new transaction id for
    two customers at the same moment: the id-index claim lets exactly one through."""
    import os
    import threading

    from shared.composition import AppServices

    barrier = threading.Barrier(2)
    instances = [AppServices(dict(os.environ)) for _ in range(2)]
    for instance in instances:
        instance.scoring.profiles = ProfilesLoadedTogether(instance.scoring.profiles, barrier)
    outcomes = {}

    def score(instance, customer):
        outcomes[customer] = instance.scoring.score_request(transaction(77, customer=customer))

    threads = [threading.Thread(target=score, args=(i, c)) for i, c in zip(instances, ("C1", "C2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["C1", "C2"]
    winners = [c for c, o in outcomes.items() if not o.conflict]
    assert len(winners) == 1
    loser = ({"C1", "C2"} - set(winners)).pop()
    assert outcomes[loser].errors[0].field == "transaction_id"
    assert services.profiles.load(winners[0]).profile.history_count == 1
    assert services.profiles.load(loser).etag is None
    where = services.audit.locate(["T77"])["T77"]
    assert where.customer_id == winners[0] and services.audit.scored([(where.audit_pk, "T77")]) == {"T77"}
