"""Schema-based fuzzing of the HTTP API: schemathesis generates requests from the OpenAPI
description (functions/openapi.json) and sends them to the real local HTTP server
(tools/local_host.py serving the registered functions) on this test's Azurite.

Promises checked for every generated request, valid (positive) and invalid (negative):

* no response is a 5xx (a client error is never a server error);
* every 4xx says what is wrong (``field_at_fault``): a JSON object with an ``error`` code;
  a 400 or 409 also lists ``errors: [{field, problem}]``, each naming a field of the
  request, at the root (``$``) only when the body is not a JSON object at all;
* status codes, content types, headers and bodies are the ones the description declares;
* a request the description calls invalid is refused with a 4xx (``negative_data_rejection``).

Generation: schemathesis's examples, coverage (boundary values, missing and mistyped
fields, undeclared methods and content types) and fuzzing phases, both generation modes,
``MAX_EXAMPLES`` fuzzed requests per operation. Raw bodies that are not JSON, or not
UTF-8, or nested too deeply, with any content type, are fuzzed separately
(``test_raw_bodies_...``).

Function keys are the Functions host's business (it answers 401 before a function runs;
``tools/local_host.py`` does not check them, as ``func start`` does not), so no key
parameters are generated here.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from function_app import indexed_functions
from tools.local_host import serve_in_background

SPEC_PATH = Path(__file__).resolve().parents[2] / "functions" / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
MAX_EXAMPLES = 60  # fuzzed requests per operation, on top of the examples and coverage phases

schema = schemathesis.openapi.from_path(SPEC_PATH, config=schemathesis.Config.from_dict({
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "with-security-parameters": False},
}))

# -- what a 4xx promises ------------------------------------------------------------------
TRANSACTION_FIELDS = frozenset(SPEC["components"]["schemas"]["Transaction"]["properties"])
TRANSACTION_REQUIRED = frozenset(SPEC["components"]["schemas"]["Transaction"]["required"])
LABEL_FIELDS = frozenset(SPEC["components"]["schemas"]["Label"]["properties"])
LABEL_REQUIRED = frozenset(SPEC["components"]["schemas"]["Label"]["required"])
LABEL_ITEM = re.compile(r"labels\[(\d+)\](?:\.(\w+))?")
FIELD_ERROR_STATUSES = (400, 409)  # problem() with errors=[{field, problem}]
CODE_ONLY_STATUSES = (401, 403, 404, 405, 413)  # who may call (the analyst's principal), routing (local host) and
# body_too_large: about the request, not a field of its body


NESTED_TOO_DEEPLY = object()


def parsed_body(raw: bytes | str | None) -> tuple[bool, Any]:
    """(is JSON, value) of a request body as the functions read it."""
    raw = raw.encode() if isinstance(raw, str) else (raw or b"")
    if not raw.strip():
        return False, None
    try:
        return True, json.loads(raw)
    except ValueError:
        return False, None
    except RecursionError:  # the server, on a shallower stack, may still have parsed it
        return False, NESTED_TOO_DEEPLY


def assert_names_the_field_at_fault(route: str, request_body: bytes | str | None, status: int, content: bytes) -> None:
    """A 4xx body says what is wrong: an error code, and for 400/409 each field at fault."""
    if not 400 <= status < 500:
        return
    assert status in FIELD_ERROR_STATUSES + CODE_ONLY_STATUSES, f"undeclared client error {status}: {content[:300]!r}"
    body = json.loads(content)
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], f"no error code: {body}"
    if status in CODE_ONLY_STATUSES:
        return
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, f"a {status} must list the fields at fault: {body}"
    for item in errors:
        assert isinstance(item, dict) and isinstance(item.get("field"), str) and item["field"], f"no field: {item}"
        assert isinstance(item.get("problem"), str) and item["problem"], f"no problem: {item}"
    fields = [item["field"] for item in errors]
    is_json, payload = parsed_body(request_body)
    if fields == ["$"] and "nested too deeply" in errors[0]["problem"]:
        assert not is_json, f"parsed here, too deep for the server: {request_body[:200]!r}"
        return
    if payload is NESTED_TOO_DEEPLY:  # parsed by the server, too deep to judge here
        return
    if not is_json:  # empty, not UTF-8, not JSON: the body as a whole is at fault
        assert fields == ["$"], f"a body that is not JSON is reported at the root: {fields}"
        return
    if route in ("score", "predict"):
        if not isinstance(payload, dict):
            assert fields == ["$"], f"a body that is not an object is reported at the root: {fields}"
            return
        for field in fields:  # a field of the transaction, sent or required
            assert field in TRANSACTION_FIELDS, f"{field!r} is not a transaction field"
            assert field in payload or field in TRANSACTION_REQUIRED, f"{field!r} blamed but not sent: {payload}"
        if status == 409:
            assert fields[0] == "transaction_id", fields
        return
    assert route == "labels", route
    items = payload.get("labels") if isinstance(payload, dict) and "labels" in payload else payload
    items = items if isinstance(items, list) else [items]
    if not items:
        assert fields == ["labels"], fields
        return
    for field in fields:  # labels[i] (not an object) or labels[i].<field> (sent or required)
        match = LABEL_ITEM.fullmatch(field)
        assert match and int(match[1]) < len(items), f"{field!r} does not name one of {len(items)} labels"
        item = items[int(match[1])]
        if match[2] is None:
            assert not isinstance(item, dict), f"{field!r} blames a label that is an object"
        else:
            assert match[2] in LABEL_FIELDS, f"{field!r} is not a label field"
            assert match[2] in item or match[2] in LABEL_REQUIRED or (match[2] == "label" and "is_fraud" in item), \
                f"{field!r} blamed but not sent: {item}"


def field_at_fault(ctx, response, case) -> None:
    """schemathesis check: every 4xx names the field at fault (see assert_names_the_field_at_fault)."""
    route = case.operation.path.strip("/")
    if case.method.upper() != case.operation.method.upper():  # coverage probes an undeclared method
        assert response.status_code == 405, f"{case.method} answered {response.status_code}, not 405"
        if case.method.upper() != "HEAD":
            assert json.loads(response.content).get("error") == "method_not_allowed", response.content
        return
    assert_names_the_field_at_fault(route, response.request.body, response.status_code, response.content)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, field_at_fault]


# -- the server ---------------------------------------------------------------------------
@pytest.fixture
def api(published):
    """The HTTP functions on a real socket, with a model published in this test's storage.
    Function-scoped: each operation's fuzzing starts from fresh tables."""
    server, base = serve_in_background(indexed_functions())
    with requests.Session() as session:
        yield f"{base}/api", session
    server.shutdown()
    server.server_close()


FUZZ_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_within_its_contract(case, api):
    base_url, session = api
    response = case.call(base_url=base_url, session=session, timeout=30)
    case.validate_response(response, checks=CHECKS)


# -- raw bodies: not JSON, not UTF-8, too deep, too large, any content type ----------------
CONTENT_TYPES = st.sampled_from([None, "application/json", "application/json; charset=utf-16", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data", "application/xml",
                                 "application/octet-stream", "", "*/*", "garbage/"])
json_fragments = st.sampled_from([
    b"{", b"}", b"[", b"]", b'"', b":", b",", b"null", b"true", b"NaN", b"-Infinity", b"1e999", b"-0", b"9" * 5000,
    b'"customer_id"', b'"transaction_amount"', b'"labels"', b'"label"', b'"transaction_id"', b'"C1"', b"12.5",
    b'"\\ud800"', b'"\\u0000"', b"\xff", b"\xef\xbb\xbf", b"\x00", b" ", b"\n",
])
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.lists(json_fragments, max_size=40).map(b"".join),
    st.builds(lambda n, inner: b"[" * n + inner + b"]" * n, st.integers(1, 5000), st.sampled_from([b"", b"{}", b"1"])),
    st.builds(lambda n: b'{"customer_id": ' + b"[" * n + b"]" * n + b', "transaction_amount": 1}', st.integers(1, 3000)),
)
ROUTES = st.sampled_from(["score", "predict", "labels"])
RAW_EXAMPLES = 100


@settings(FUZZ_SETTINGS, max_examples=RAW_EXAMPLES)
@given(route=ROUTES, body=raw_bodies, content_type=CONTENT_TYPES)
@example(route="score", body=b"[" * 50_000, content_type="application/json")
@example(route="labels", body=b'{"labels": ' + b"[" * 50_000, content_type="application/json")
@example(route="predict", body=b'{"customer_id": "C1", "transaction_amount": 1, "merchant_category": "' + b"x" * 70_000 + b'"}',
         content_type="application/json")  # over FRAUD_HTTP_MAX_BODY_BYTES: 413
@example(route="score", body=b'{"customer_id": "C1", "transaction_amount": 5, "merchant_category": "\\ud800"}',
         content_type="application/json")  # a lone surrogate: valid JSON, not encodable UTF-8
@example(route="labels", body=b'[{"transaction_id": "T1", "label": 1, "source": "\\udfff\\u0000"}]', content_type=None)
def test_raw_bodies_get_a_4xx_naming_the_field_never_a_5xx(api, route, body, content_type):
    base_url, session = api
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = session.post(f"{base_url}/{route}", data=body, headers=headers, timeout=30)
    assert response.status_code < 500, f"{response.status_code} for {body[:200]!r}: {response.content[:300]!r}"
    assert response.status_code in (200, 202, 400, 409, 413), response.status_code
    assert response.headers["Content-Type"].startswith("application/json")
    assert_names_the_field_at_fault(route, body, response.status_code, response.content)


# -- what the fuzzing found, pinned ----------------------------------------------------------
@pytest.mark.parametrize("route", ["score", "predict", "labels"])
def test_json_nested_deeper_than_the_parser_allows_is_a_400_at_the_root(route, development_auth):
    """'[[[[…' within the size limit made json.loads raise RecursionError: a 500."""
    from fraud_events import ANALYST, http_post
    from functions.labels_http import labels_http
    from functions.score_http import predict_http, score_http

    function = {"score": score_http, "predict": predict_http, "labels": labels_http}[route]
    response = function(http_post(route, None, raw=b'{"labels": ' + b"[" * 50_000, headers=ANALYST))
    assert response.status_code == 400
    body = json.loads(response.get_body())
    assert body["error"] == "invalid_json" and body["errors"] == [{"field": "$", "problem": "not valid JSON: nested too deeply"}]


def test_a_label_file_line_nested_too_deeply_is_rejected_not_raised():
    """The same parser failure in a JSON-lines label file took the whole file down."""
    from shared.domain.labels import parse_label_file

    labels, rejected = parse_label_file("x.jsonl", b'{"transaction_id": "T1", "label": 1}\n' + b"[" * 50_000 + b"\n")
    assert [label.transaction_id for label in labels] == ["T1"]
    assert rejected == [{"line": 2, "errors": [{"field": "$", "problem": "not valid JSON: nested too deeply"}]}]


def test_an_empty_labels_request_is_named_as_labels_not_as_a_transaction(development_auth):
    from fraud_events import analyst_post
    from functions.labels_http import labels_http

    body = json.loads(labels_http(analyst_post("labels", None, raw=b" ")).get_body())
    assert body["error"] == "invalid_labels" and body["errors"][0]["field"] == "$"


def test_a_label_source_must_be_text():
    """A number or an object as the source was stored as its Python repr; now the field is named."""
    from shared.domain.labels import parse_label

    for source in (5, {"a": 1}, ["x"], True):
        label, errors = parse_label({"transaction_id": "T1", "label": 1, "source": source}, default_source="api")
        assert label is None and [e.field for e in errors] == ["source"]
    for source, kept in ((None, "api"), ("", "api"), ("chargeback", "chargeback")):
        assert parse_label({"transaction_id": "T1", "label": 1, "source": source}, default_source="api")[0].source == kept


def test_undeclared_methods_are_a_405_from_the_local_host_not_a_501():
    """http.server answered OPTIONS, TRACE, HEAD and unknown methods with an HTML 501."""
    server, base = serve_in_background(indexed_functions())
    try:
        for method in ("OPTIONS", "TRACE", "HEAD", "QUERY", "BREW"):
            response = requests.request(method, f"{base}/api/score", timeout=10)
            assert response.status_code == 405, (method, response.status_code)
            if method != "HEAD":
                assert response.json() == {"error": "method_not_allowed"}
            else:
                assert response.content == b""
        assert requests.request("OPTIONS", f"{base}/api/nowhere", timeout=10).status_code == 404
    finally:
        server.shutdown()
        server.server_close()
