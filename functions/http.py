"""What the HTTP entry points share: JSON responses, the problem document, body parsing
and the 503 for a storage outage. Entry points import this module, never each other."""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Mapping

import azure.functions as func

from shared.domain import json_text
from shared.domain.analyst_identity import (ANALYST_ROLES, PRINCIPAL_HEADER, AnalystPrincipal, PrincipalRefused,
                                            authorise_principal)

log = logging.getLogger("fraud.http")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json_text.dumps(body), status_code=status, mimetype="application/json", headers=headers)


def problem(status: int, error: str, message: str, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> func.HttpResponse:
    body: dict[str, Any] = {"error": error, "message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status, headers)


def read_json_body(req: func.HttpRequest, limit: int,
                   empty_error: str = "invalid_transaction") -> tuple[Any, func.HttpResponse | None]:
    """The parsed JSON body, or the 4xx response that explains why there is none."""
    body = req.get_body() or b""
    if len(body) > limit:
        return None, problem(413, "body_too_large", f"request body is {len(body)} bytes; the limit is {limit}")
    if not body.strip():
        return None, problem(400, empty_error, "request body is empty",
                             [{"field": "$", "problem": "a JSON object is required"}])
    try:
        return json.loads(body), None
    except (UnicodeDecodeError, ValueError) as exc:
        return None, problem(400, "invalid_json", "request body is not valid JSON",
                             [{"field": "$", "problem": f"not valid JSON: {exc}"}])
    except RecursionError:  # '[[[[…' deeper than the parser's recursion limit, well within the size limit
        return None, problem(400, "invalid_json", "request body is not valid JSON",
                             [{"field": "$", "problem": "not valid JSON: nested too deeply"}])


def storage_unavailable(exc: BaseException) -> func.HttpResponse:
    """503 for a storage outage (after the SDK's retries): the caller retries, nothing was half-done."""
    log.warning("storage unavailable: %s", exc)
    return problem(503, "storage_unavailable", "storage is unavailable; retry the request", headers={"Retry-After": "5"})


def authorise(req: func.HttpRequest, config: Any, roles: frozenset[str] = ANALYST_ROLES,
              environ: Mapping[str, str] | None = None) -> tuple[AnalystPrincipal | None, func.HttpResponse | None]:
    """The signed-in analyst of an analysts' route, or the 401/403 problem that refuses the request.

    These routes are anonymous at the Functions level: App Service Authentication signs people in
    (``FRAUD_ANALYST_AUTH=entra``) and this check refuses a request without a trusted principal
    or without one of ``roles`` (``shared/domain/analyst_identity.py``)."""
    try:
        principal = authorise_principal(req.headers.get(PRINCIPAL_HEADER), config.analyst_auth,
                                        os.environ if environ is None else environ, roles)
    except PrincipalRefused as exc:
        if exc.field is None:
            log.error("analyst route refused: %s", exc)  # the app's configuration, not the caller's mistake
        errors = [{"field": exc.field, "problem": str(exc)}] if exc.field else None
        return None, problem(exc.status, exc.error, str(exc), errors,
                             headers={"WWW-Authenticate": 'Bearer realm="fraud-dashboard"'} if exc.status == 401 else None)
    return principal, None
