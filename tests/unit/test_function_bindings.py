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


def test_function_names_are_unique_and_every_function_has_a_trigger():
    names = [f.get_function_name() for f in INDEXED]
    assert len(names) == len(set(names))
    assert all(f.get_trigger() is not None for f in INDEXED)


def test_the_archive_timer_compacts_on_a_settings_driven_schedule():
    (trigger,) = bindings("archive_timer")
    assert trigger == {"direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "%FRAUD_ARCHIVE_SCHEDULE%",
                       "runOnStartup": False, "useMonitor": True}
