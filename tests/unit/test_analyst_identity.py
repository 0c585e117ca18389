"""People sign in, machines use keys (issue #16, item 1): the analyst's principal as App Service
Authentication sends it, each role and each refusal, through the real entry-point helper with
real ``func.HttpRequest`` objects."""
import base64
import json
from types import SimpleNamespace

import azure.functions as func
import pytest

from functions.http import authorise
from shared.domain.analyst_identity import (ADMIN, ANALYST, ANALYST_ROLES, DEVELOPMENT_NAME, OBJECT_ID_CLAIM,
                                            PrincipalRefused, development_principal, encode_client_principal,
                                            parse_client_principal, platform_refusal)

ENTRA_ON = {"WEBSITE_AUTH_ENABLED": "True", "WEBSITE_INSTANCE_ID": "abc123", "WEBSITE_SITE_NAME": "fraud-func"}
LAPTOP: dict[str, str] = {}
ROLE_TYP = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"


def header_of(document) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def entra_document(roles=(ANALYST,), name="alice@bank.example"):
    """What App Service Authentication sends for an Entra ID sign-in (roles under role_typ)."""
    return {"auth_typ": "aad", "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "role_typ": ROLE_TYP,
            "claims": [{"typ": "aud", "val": "api://fraud"}, {"typ": "name", "val": "Alice Adeyemi"},
                       {"typ": "preferred_username", "val": name},
                       {"typ": OBJECT_ID_CLAIM, "val": "0b5e-oid"}] + [{"typ": ROLE_TYP, "val": r} for r in roles]}


def request(headers=None, method="GET", route="alerts"):
    return func.HttpRequest(method=method, url=f"http://localhost/api/{route}", headers=headers or {}, params={},
                            route_params={}, body=b"")


def config(mode):
    return SimpleNamespace(analyst_auth=mode)


def refusal(response):
    return response.status_code, json.loads(response.get_body())


# -- the principal ---------------------------------------------------------------------------
def test_an_entra_principal_gives_the_analyst_s_name_object_id_and_roles():
    principal = parse_client_principal(header_of(entra_document((ANALYST, "Other.Role"))))
    assert principal.name == "alice@bank.example"  # preferred_username before name
    assert principal.object_id == "0b5e-oid" and principal.auth_type == "aad"
    assert principal.roles == {ANALYST, "Other.Role"}


def test_roles_come_from_the_role_typ_claims_and_the_roles_claim_only():
    document = entra_document(())
    document["claims"] += [{"typ": "roles", "val": ADMIN}, {"typ": "groups", "val": ANALYST}]
    assert parse_client_principal(header_of(document)).roles == {ADMIN}  # a group named like a role is not a role


def test_the_name_falls_back_to_the_name_typ_claim():
    document = {"auth_typ": "aad", "name_typ": "upn", "role_typ": "r", "claims": [{"typ": "upn", "val": "bob@bank"}]}
    assert parse_client_principal(header_of(document)).name == "bob@bank"


@pytest.mark.parametrize("header, says", [
    (None, "header is missing"),
    ("", "header is missing"),
    ("%%%not base64%%%", "not base64"),
    (base64.b64encode(b"\xff\xfe not utf-8").decode(), "JSON document"),
    (base64.b64encode(b"{not json").decode(), "JSON document"),
    (base64.b64encode(b"[" * 100_000).decode()[:60_000], "not base64|JSON document"),
    (header_of(["a", "list"]), "not a JSON object"),
    (header_of({"auth_typ": "aad"}), "no claims"),
    (header_of({"claims": []}), "no claims"),
    (header_of({"claims": [{"typ": "name"}]}), "not {typ: string, val: string}"),
    (header_of({"claims": [{"typ": "name", "val": 5}]}), "not {typ: string, val: string}"),
    (header_of({"claims": ["name"]}), "not {typ: string, val: string}"),
    (header_of({"role_typ": 7, "claims": [{"typ": "name", "val": "x"}]}), "role_typ is not a string"),
    (header_of({"claims": [{"typ": "roles", "val": ANALYST}]}), "names nobody"),
    ("A" * 70_000, "at most"),
])
def test_a_malformed_principal_is_refused_with_401_saying_what_is_wrong(header, says):
    with pytest.raises(PrincipalRefused, match=says) as refused:
        parse_client_principal(header)
    assert refused.value.status == 401 and refused.value.field == "X-MS-CLIENT-PRINCIPAL"


# -- each role, each refusal, through the entry points' helper -------------------------------
@pytest.mark.parametrize("roles", [(ANALYST,), (ADMIN,), (ANALYST, ADMIN)])
def test_an_analyst_or_an_admin_is_let_in_when_entra_is_on(roles):
    principal, refused = authorise(request({"x-ms-client-principal": header_of(entra_document(roles))}),
                                   config("entra"), environ=ENTRA_ON)
    assert refused is None and principal.name == "alice@bank.example" and principal.roles == set(roles)


def test_no_principal_is_401_naming_the_header():
    _, refused = authorise(request(), config("entra"), environ=ENTRA_ON)
    status, body = refusal(refused)
    assert status == 401 and body["error"] == "unauthenticated"
    assert body["errors"] == [{"field": "X-MS-CLIENT-PRINCIPAL", "problem": body["message"]}]
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_malformed_principal_is_401_never_500():
    for bad in ("!!!", base64.b64encode(b"null").decode(), header_of({"claims": "all"})):
        _, refused = authorise(request({"x-ms-client-principal": bad}), config("entra"), environ=ENTRA_ON)
        assert refusal(refused)[0] == 401


@pytest.mark.parametrize("roles", [(), ("Fraud.Viewer",), ("fraud.analyst",)])
def test_no_role_or_a_wrong_role_is_403(roles):
    _, refused = authorise(request({"x-ms-client-principal": header_of(entra_document(roles))}),
                           config("entra"), environ=ENTRA_ON)
    status, body = refusal(refused)
    assert status == 403 and body["error"] == "forbidden" and "alice@bank.example" in body["message"]
    assert body["errors"][0]["field"] == "roles" and "Fraud.Analyst" in body["message"]


def test_an_admin_only_check_refuses_an_analyst():
    _, refused = authorise(request({"x-ms-client-principal": header_of(entra_document((ANALYST,)))}),
                           config("entra"), roles=frozenset({ADMIN}), environ=ENTRA_ON)
    assert refusal(refused)[0] == 403


@pytest.mark.parametrize("environ", [LAPTOP, {"WEBSITE_AUTH_ENABLED": "False", "WEBSITE_INSTANCE_ID": "x"},
                                     {"WEBSITE_INSTANCE_ID": "x", "WEBSITE_SITE_NAME": "fraud-func"}])
def test_entra_without_platform_authentication_trusts_no_header(environ):
    """Anyone can send X-MS-CLIENT-PRINCIPAL; only the platform's copy (auth on) is believed."""
    _, refused = authorise(request({"x-ms-client-principal": header_of(entra_document((ADMIN,)))}),
                           config("entra"), environ=environ)
    status, body = refusal(refused)
    assert status == 401 and "authentication is not configured" in body["message"]
    assert "errors" not in body  # the app's configuration, not the caller's field


@pytest.mark.parametrize("environ", [{"WEBSITE_INSTANCE_ID": "abc"}, {"WEBSITE_SITE_NAME": "fraud-func"}, ENTRA_ON])
def test_development_mode_is_refused_in_azure(environ):
    assert "refused in Azure" in platform_refusal("development", environ)
    _, refused = authorise(request({"x-ms-client-principal": development_principal()}), config("development"),
                           environ=environ)
    status, body = refusal(refused)
    assert status == 401 and "FRAUD_ANALYST_AUTH=development is refused in Azure" in body["message"]


def test_development_mode_on_a_laptop_trusts_the_header_as_given_and_still_checks_roles():
    principal, refused = authorise(request({"x-ms-client-principal": development_principal()}),
                                   config("development"), environ=LAPTOP)
    assert refused is None and principal.name == DEVELOPMENT_NAME and principal.roles == ANALYST_ROLES
    _, refused = authorise(request(), config("development"), environ=LAPTOP)
    assert refusal(refused)[0] == 401  # no header: nobody
    viewer = encode_client_principal("viewer@localhost", ("Fraud.Viewer",))
    _, refused = authorise(request({"x-ms-client-principal": viewer}), config("development"), environ=LAPTOP)
    assert refusal(refused)[0] == 403


def test_the_development_principal_parses_as_documented():
    principal = parse_client_principal(development_principal())
    assert (principal.name, principal.roles, principal.auth_type) == (DEVELOPMENT_NAME, {ANALYST, ADMIN}, "development")
