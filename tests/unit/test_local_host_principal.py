"""The local host stands in for App Service Authentication: it adds the documented development
principal to the analysts' routes only, and passes on a principal the caller sends."""
import json
import re

import azure.functions as func

from function_app import indexed_functions
from shared.domain.analyst_identity import DEVELOPMENT_NAME, encode_client_principal, parse_client_principal
from tools.local_host import DEVELOPMENT, HttpRoute, dispatch, http_routes


def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"principal": req.headers.get("x-ms-client-principal")}), status_code=200)


ROUTES = [HttpRoute("alerts", re.compile(r"^/api/alerts/?$"), frozenset({"GET"}), echo, anonymous=True),
          HttpRoute("score", re.compile(r"^/api/score/?$"), frozenset({"POST"}), echo, anonymous=False)]


def sent(method, path, headers=None, analyst=DEVELOPMENT):
    response = dispatch(ROUTES, method, f"http://127.0.0.1:7071{path}", headers or {}, b"", analyst)
    return json.loads(response.get_body())["principal"]


def test_the_analysts_routes_get_the_development_principal_and_machine_routes_none():
    assert parse_client_principal(sent("GET", "/api/alerts")).name == DEVELOPMENT_NAME
    assert sent("POST", "/api/score") is None  # a key route: no principal made up for it


def test_a_principal_the_caller_sends_is_passed_on_and_none_is_injected_with_no_analyst():
    viewer = encode_client_principal("viewer@localhost", ("Fraud.Viewer",))
    assert sent("GET", "/api/alerts", {"x-ms-client-principal": viewer}) == viewer
    assert sent("GET", "/api/alerts", analyst=None) is None


def test_the_anonymous_routes_the_host_sees_are_the_analysts_routes():
    anonymous = {r.name for r in http_routes(indexed_functions()) if r.anonymous}
    assert anonymous == {"dashboard_http", "dashboard_static_http", "alerts_http", "stats_http", "labels_http"}
