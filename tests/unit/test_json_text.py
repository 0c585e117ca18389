"""shared.domain.json_text: orjson where it can, the standard library for what orjson refuses."""
import json
import math

import numpy as np

from shared.domain import json_text
from shared.domain.features import CustomerProfile


def test_the_text_is_compact_json_with_non_ascii_kept():
    value = {"a": [1, 2.5, None, True], "name": "Ọlá ₦", "nested": {"x": "y"}}
    text = json_text.dumps(value)
    assert text == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json_text.loads(text) == value and json_text.loads(text.encode()) == value


def test_what_orjson_refuses_to_encode_is_encoded_by_the_standard_library():
    # a numpy scalar, a dict with integer keys, an integer beyond 64 bits: orjson raises TypeError for each
    for value in ({"score": np.float64(0.25)}, {1: "one"}, {"n": 2**70}):
        assert json.loads(json_text.dumps(value)) == json.loads(json.dumps(value))


def test_a_lone_surrogate_is_escaped_by_the_standard_library_unless_asked_not_to():
    escaped = json_text.dumps({"s": "a\ud800b", "t": "₦"})  # an entity, a response: always UTF-8
    assert escaped == '{"s":"a\\ud800b","t":"\\u20a6"}' and escaped.encode("utf-8")
    assert json_text.dumps({"t": "₦"}) == '{"t":"₦"}'  # what orjson writes stays UTF-8
    # the archive line keeps it and replaces it itself
    assert json_text.dumps({"s": "a\ud800b"}, ascii_fallback=False) == '{"s":"a\ud800b"}'


def test_a_response_echoing_a_lone_surrogate_is_still_a_json_response():
    import json as stdlib

    from functions.http import json_response

    response = json_response({"errors": [{"field": "customer_id", "problem": "bad \ud800 value"}]}, 400)
    assert stdlib.loads(response.get_body())["errors"][0]["problem"] == "bad \ud800 value"


def test_rows_the_standard_library_wrote_with_non_finite_floats_still_read():
    text = json.dumps({"x": float("nan"), "y": float("inf")}, separators=(",", ":"))
    parsed = json_text.loads(text)
    assert math.isnan(parsed["x"]) and parsed["y"] == math.inf


def test_a_profile_state_reads_back_the_same_and_as_the_standard_library_wrote_it():
    profile = CustomerProfile()
    for k, ring in enumerate(profile.rings.values()):
        ring.add(1_700_000_000.0 + 3600 * k, 1234.56 + k)
    profile.devices["d"] = [1.0, 2.5e-7]
    text = profile.to_json()
    assert json.loads(text) == json_text.loads(text)
    again = CustomerProfile.from_json(json.dumps(json.loads(text), separators=(",", ":")))  # a row written before
    assert again.to_json() == text
