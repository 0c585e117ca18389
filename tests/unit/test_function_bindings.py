"""What the Functions host will index: names, triggers and bindings of every function."""
import json

from function_app import indexed_functions


INDEXED = indexed_functions()  # what the host indexes


def functions():
    return {f.get_function_name(): f for f in INDEXED}


def bindings(name):
    return json.loads(functions()[name].get_function_json())["bindings"]


def test_the_event_hub_scorer_reads_batches_with_settings_driven_names():
    (trigger,) = bindings("score_stream")
    assert trigger == {
        "direction": "IN", "dataType": "BINARY", "type": "eventHubTrigger", "name": "events",
        "connection": "EventHubConnection", "eventHubName": "%EVENTHUB_NAME%", "cardinality": "MANY",
        "consumerGroup": "%EVENTHUB_CONSUMER_GROUP%",
    }
    retry = functions()["score_stream"].get_settings_dict("retry_policy")
    assert retry["strategy"] == "exponential_backoff" and int(retry["max_retry_count"]) > 0


def test_http_scoring_routes_need_a_function_key():
    expected = {"score_http": ("score", ["POST"]), "predict_http": ("predict", ["POST"]),
                "health_http": ("health", ["GET"])}
    for name, (route, methods) in expected.items():
        trigger, out = bindings(name)
        assert trigger["type"] == "httpTrigger" and trigger["authLevel"] == "FUNCTION"
        assert (trigger["route"], trigger["methods"]) == (route, methods)
        assert out == {"direction": "OUT", "type": "http", "name": "$return"}


ANALYST_ROUTES = {("dashboard", ("GET",)), ("dashboard/{*path}", ("GET",)), ("alerts", ("GET",)), ("stats", ("GET",)),
                  ("labels", ("POST",))}


def test_only_the_analysts_routes_are_anonymous_and_every_other_route_needs_a_function_key():
    """People sign in (App Service Authentication in front, the principal checked by the app:
    functions.http.authorise); machines use keys. No other route may drop its key."""
    anonymous, keyed = set(), set()
    for function in INDEXED:
        trigger = function.get_trigger()
        if trigger.get_binding_name() != "httpTrigger":
            continue
        binding = trigger.get_dict_repr()
        route = (binding["route"], tuple(str(getattr(m, "value", m)).upper() for m in binding["methods"]))
        assert str(binding["authLevel"]).upper() in ("ANONYMOUS", "FUNCTION"), binding
        (anonymous if str(binding["authLevel"]).upper() == "ANONYMOUS" else keyed).add(route)
    assert anonymous == ANALYST_ROUTES
    assert {r for r, _ in keyed} == {"score", "predict", "health", "model", "openapi.json"}


def test_every_analysts_route_refuses_a_request_without_a_principal(monkeypatch):
    """Anonymous at the Functions level is not open: each analysts' function answers 401 itself."""
    import azure.functions as func

    from shared.composition import reset_app_services

    monkeypatch.setenv("FRAUD_ANALYST_AUTH", "development")
    for key in ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_AUTH_ENABLED"):
        monkeypatch.delenv(key, raising=False)
    reset_app_services()
    try:
        for function in INDEXED:
            trigger = function.get_trigger()
            if trigger.get_binding_name() != "httpTrigger" or str(trigger.get_dict_repr()["authLevel"]).upper() != "ANONYMOUS":
                continue
            binding = trigger.get_dict_repr()
            method = str(getattr(binding["methods"][0], "value", binding["methods"][0])).upper()
            request = func.HttpRequest(method=method, url=f"http://localhost/api/{binding['route']}", headers={},
                                       params={}, route_params={"path": "app.js"}, body=b'{"transaction_id": "T1", "label": 1}')
            response = function.get_user_function()(request)
            assert response.status_code == 401, (function.get_function_name(), response.status_code)
            assert json.loads(response.get_body())["errors"][0]["field"] == "X-MS-CLIENT-PRINCIPAL"
    finally:
        reset_app_services()


def test_function_names_are_unique_and_every_function_has_a_trigger():
    names = [f.get_function_name() for f in INDEXED]
    assert len(names) == len(set(names))
    assert all(f.get_trigger() is not None for f in INDEXED)


def test_the_retrain_blob_triggers_watch_the_data_account_through_event_grid():
    """The containers live where the app writes them: the data account (FRAUD_DATA_STORAGE),
    not the host's AzureWebJobsStorage."""
    expected = {"retrain_on_training_data": "%FRAUD_TRAINING_CONTAINER%/{name}",
                "retrain_on_request": "%FRAUD_RETRAIN_CONTAINER%/{name}"}
    for name, path in expected.items():
        (trigger,) = bindings(name)
        assert (trigger["type"], trigger["path"], trigger["source"]) == ("blobTrigger", path, "EventGrid")
        assert trigger["connection"] == "FRAUD_DATA_STORAGE"


def test_the_retention_timer_runs_on_its_setting_s_schedule():
    (trigger,) = bindings("retention_timer")
    assert trigger == {"direction": "IN", "type": "timerTrigger", "name": "timer",
                       "schedule": "%FRAUD_RETENTION_SCHEDULE%", "runOnStartup": False, "useMonitor": True}


def test_the_archive_timer_compacts_on_a_settings_driven_schedule():
    (trigger,) = bindings("archive_timer")
    assert trigger == {"direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "%FRAUD_ARCHIVE_SCHEDULE%",
                       "runOnStartup": False, "useMonitor": True}
