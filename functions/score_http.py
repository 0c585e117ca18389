"""HTTP scoring: a synchronous approve/review/block decision for the bank's callers.

POST /api/score (and /api/predict, the seed's path) -> the decision document;
GET /api/health -> serving model and storage reachability.
Bad input is a 4xx naming the field at fault, never a 500.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import azure.functions as func

from shared.runtime import app_services
from shared.scoring import ScoringContention, response_body
from shared.serving_model import ModelUnavailable, NoModelPublished
from shared.settings import setting_int
from shared.transient import is_transient

bp = func.Blueprint()
log = logging.getLogger("fraud.score_http")
OPENAPI = Path(__file__).with_name("openapi.json")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json", headers=headers)


def problem(status: int, error: str, message: str, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> func.HttpResponse:
    body: dict[str, Any] = {"error": error, "message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status, headers)


def read_json_body(req: func.HttpRequest, empty_error: str = "invalid_transaction") -> tuple[Any, func.HttpResponse | None]:
    """The parsed JSON body, or the 4xx response that explains why there is none."""
    limit = setting_int("FRAUD_HTTP_MAX_BODY_BYTES")
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


def score(req: func.HttpRequest) -> func.HttpResponse:
    payload, error = read_json_body(req)
    if error is not None:
        return error
    try:
        outcome = app_services().scoring.score_request(payload)
    except NoModelPublished as exc:
        return problem(503, "no_model", str(exc), headers={"Retry-After": "60"})
    except ModelUnavailable as exc:
        return problem(503, "model_unavailable", str(exc), headers={"Retry-After": "60"})
    except ScoringContention as exc:
        return problem(503, "busy", f"{exc}; retry the request", headers={"Retry-After": "1"})
    except Exception as exc:
        if is_transient(exc):
            return storage_unavailable(exc)
        raise
    if outcome.conflict:
        return problem(409, "conflicting_transaction", "this transaction id was already scored with different content",
                       [e.to_dict() for e in outcome.errors])
    if outcome.decision is None:
        return problem(400, "invalid_transaction", "the transaction failed validation",
                       [e.to_dict() for e in outcome.errors])
    return json_response(response_body(outcome.decision))


@bp.function_name("score_http")
@bp.route(route="score", methods=["POST"])
def score_http(req: func.HttpRequest) -> func.HttpResponse:
    return score(req)


@bp.function_name("predict_http")
@bp.route(route="predict", methods=["POST"])
def predict_http(req: func.HttpRequest) -> func.HttpResponse:
    """The seed's path; the same contract as /api/score."""
    return score(req)


@bp.function_name("health_http")
@bp.route(route="health", methods=["GET"])
def health_http(req: func.HttpRequest) -> func.HttpResponse:
    services = app_services()
    model = services.serving_model.loaded
    if model is None:
        try:
            model = services.serving_model.get()
        except Exception as exc:
            log.info("health: no model loaded: %s", exc)
    try:
        services.registry.current()
        storage_ok = True
    except Exception as exc:
        log.warning("health: storage unreachable: %s", exc)
        storage_ok = False
    healthy = storage_ok and model is not None
    body = {
        "status": "ok" if healthy else "degraded",
        "model_version": model.version if model else None,
        "model_loaded_at": model.loaded_at.isoformat() if model else None,
        "storage_reachable": storage_ok,
    }
    return json_response(body, 200 if healthy else 503)


@bp.function_name("openapi_http")
@bp.route(route="openapi.json", methods=["GET"])
def openapi_http(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(OPENAPI.read_bytes(), mimetype="application/json")
