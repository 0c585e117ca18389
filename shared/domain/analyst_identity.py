"""Who is asking: the signed-in analyst, read from App Service Authentication's principal. Pure.

In Azure, App Service Authentication (Microsoft Entra ID) signs people in before a request
reaches the dashboard or ``POST /api/labels`` and passes the principal on as the
``X-MS-CLIENT-PRINCIPAL`` header: base64 of a JSON document

    {"auth_typ": "aad", "name_typ": "<claim type of the name>", "role_typ": "<claim type of roles>",
     "claims": [{"typ": "...", "val": "..."}, ...]}

The platform removes a caller's own copy of that header, so it can be trusted only when the
platform says authentication is on (``WEBSITE_AUTH_ENABLED=True``, set by App Service when
``authsettingsV2`` is enabled). ``FRAUD_ANALYST_AUTH=development`` trusts the header as given
(the local host injects a development principal, ``tools/local_host.py``) and is refused when
the app runs in Azure.

App roles (the Entra app registration's ``appRoles``): ``Fraud.Analyst`` reviews alerts and
gives verdicts; ``Fraud.Admin`` does that too and approves model releases.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Mapping

ANALYST = "Fraud.Analyst"
ADMIN = "Fraud.Admin"
ANALYST_ROLES = frozenset({ANALYST, ADMIN})  # admin implies analyst
PRINCIPAL_HEADER = "x-ms-client-principal"
MAX_PRINCIPAL_BYTES = 64 * 1024  # a principal with many group claims is a few KiB
ROLES_CLAIM = "roles"
OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
NAME_CLAIMS = ("preferred_username", "name")  # in this order, then the principal's name_typ claim
MAX_NAME = 128

DEVELOPMENT_NAME = "dev.analyst@localhost"
DEVELOPMENT_ROLES = (ANALYST, ADMIN)
DEVELOPMENT_OBJECT_ID = "00000000-0000-0000-0000-000000000de7"


class PrincipalRefused(ValueError):
    """The request names no usable analyst: ``status`` is 401 (who?) or 403 (not allowed)."""

    def __init__(self, status: int, error: str, message: str, field: str | None = "X-MS-CLIENT-PRINCIPAL") -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.field = field  # what is at fault: the header, its roles, or None (the app's configuration)


@dataclass(frozen=True)
class AnalystPrincipal:
    name: str  # preferred_username / name: what is recorded as labelled_by
    object_id: str | None  # Entra object id, when the principal carries it
    roles: frozenset[str]
    auth_type: str

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.roles & set(roles))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "object_id": self.object_id, "roles": sorted(self.roles), "auth_type": self.auth_type}


def _refused(message: str, field: str | None = "X-MS-CLIENT-PRINCIPAL") -> PrincipalRefused:
    return PrincipalRefused(401, "unauthenticated", message, field)


def parse_client_principal(header: str | None) -> AnalystPrincipal:
    """The analyst of an ``X-MS-CLIENT-PRINCIPAL`` value; ``PrincipalRefused`` (401) says what is wrong."""
    if header is None or not header.strip():
        raise _refused("no signed-in analyst: the X-MS-CLIENT-PRINCIPAL header is missing")
    text = header.strip()
    if len(text) > MAX_PRINCIPAL_BYTES:
        raise _refused(f"X-MS-CLIENT-PRINCIPAL is {len(text)} bytes; at most {MAX_PRINCIPAL_BYTES} are read")
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise _refused("X-MS-CLIENT-PRINCIPAL is not base64") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _refused("X-MS-CLIENT-PRINCIPAL is not base64 of a JSON document") from None
    if not isinstance(document, dict):
        raise _refused("X-MS-CLIENT-PRINCIPAL is not a JSON object")
    claims = document.get("claims")
    if not isinstance(claims, list) or not claims:
        raise _refused("X-MS-CLIENT-PRINCIPAL has no claims")
    pairs: list[tuple[str, str]] = []
    for claim in claims:
        if not isinstance(claim, dict) or not isinstance(claim.get("typ"), str) or not isinstance(claim.get("val"), str):
            raise _refused("X-MS-CLIENT-PRINCIPAL has a claim that is not {typ: string, val: string}")
        pairs.append((claim["typ"], claim["val"]))
    for field in ("auth_typ", "name_typ", "role_typ"):
        if document.get(field) is not None and not isinstance(document[field], str):
            raise _refused(f"X-MS-CLIENT-PRINCIPAL's {field} is not a string")
    role_types = {ROLES_CLAIM} | ({document["role_typ"]} if document.get("role_typ") else set())
    roles = frozenset(val for typ, val in pairs if typ in role_types)
    by_type: dict[str, str] = {}
    for typ, val in pairs:
        if val.strip():
            by_type.setdefault(typ, val.strip())
    name_types = NAME_CLAIMS + ((document["name_typ"],) if document.get("name_typ") else ())
    name = next((by_type[t] for t in name_types if t in by_type), None)
    if name is None:
        raise _refused("X-MS-CLIENT-PRINCIPAL names nobody (no preferred_username, name or name_typ claim)")
    return AnalystPrincipal(name=name[:MAX_NAME], object_id=by_type.get(OBJECT_ID_CLAIM) or by_type.get("oid"),
                            roles=roles, auth_type=str(document.get("auth_typ") or ""))


def require_role(principal: AnalystPrincipal, allowed: frozenset[str] = ANALYST_ROLES) -> AnalystPrincipal:
    """The principal if it holds one of ``allowed``; otherwise ``PrincipalRefused`` (403)."""
    if not principal.has_any(allowed):
        held = ", ".join(sorted(principal.roles)) or "none"
        raise PrincipalRefused(403, "forbidden", f"{principal.name} holds no role allowed here "
                                                 f"(needs one of {', '.join(sorted(allowed))}; holds {held})", "roles")
    return principal


def in_azure(environ: Mapping[str, str]) -> bool:
    """The app runs on App Service / Functions in Azure (the platform sets these; a laptop does not)."""
    return bool(environ.get("WEBSITE_INSTANCE_ID") or environ.get("WEBSITE_SITE_NAME"))


def platform_refusal(mode: str, environ: Mapping[str, str]) -> str | None:
    """Why the principal header cannot be trusted under ``FRAUD_ANALYST_AUTH=mode`` here, or None."""
    if mode == "development":
        if in_azure(environ):
            return ("FRAUD_ANALYST_AUTH=development is refused in Azure (WEBSITE_INSTANCE_ID/WEBSITE_SITE_NAME is set): "
                    "it trusts any caller's X-MS-CLIENT-PRINCIPAL; set it to 'entra'")
        return None
    if mode == "entra":
        if str(environ.get("WEBSITE_AUTH_ENABLED", "")).strip().lower() != "true":
            return ("authentication is not configured: FRAUD_ANALYST_AUTH=entra trusts X-MS-CLIENT-PRINCIPAL only "
                    "when App Service Authentication is on (WEBSITE_AUTH_ENABLED=True)")
        return None
    return f"FRAUD_ANALYST_AUTH={mode!r} is not a known mode"


def authorise_principal(header: str | None, mode: str, environ: Mapping[str, str],
                        allowed: frozenset[str] = ANALYST_ROLES) -> AnalystPrincipal:
    """The analyst allowed to make this request; ``PrincipalRefused`` (401/403) otherwise."""
    refusal = platform_refusal(mode, environ)
    if refusal is not None:
        raise _refused(refusal, None)
    return require_role(parse_client_principal(header), allowed)


def encode_client_principal(name: str, roles: tuple[str, ...] | list[str], object_id: str | None = None,
                            auth_type: str = "aad") -> str:
    """An ``X-MS-CLIENT-PRINCIPAL`` value as App Service Authentication sends it (local host, tests)."""
    role_typ = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
    claims = [{"typ": "preferred_username", "val": name}, {"typ": "name", "val": name}]
    if object_id:
        claims.append({"typ": OBJECT_ID_CLAIM, "val": object_id})
    claims += [{"typ": "roles", "val": role} for role in roles]
    document = {"auth_typ": auth_type, "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                "role_typ": role_typ, "claims": claims}
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def development_principal(name: str = DEVELOPMENT_NAME, roles: tuple[str, ...] = DEVELOPMENT_ROLES) -> str:
    """The documented development principal the local host injects on the analysts' routes."""
    return encode_client_principal(name, roles, DEVELOPMENT_OBJECT_ID, auth_type="development")
