"""HTTP scoring: a synchronous approve/review/block decision for the bank's callers.

POST /api/score (and /api/predict, the seed's path) -> the decision document;
GET /api/health -> serving model and storage reachability.
Bad input is a 4xx naming the field at fault, never a 500.
"""
from __future__ import annotations

import logging
from pathlib import Path

import azure.functions as func

from functions.http import json_response, problem, read_json_body, storage_unavailable
from shared.composition import app_services
from shared.service.scoring import ScoringContention
from shared.service.model_serving import ModelUnavailable, NoModelPublished
from shared.adapters.transient import is_transient

bp = func.Blueprint()
log = logging.getLogger("fraud.score_http")
OPENAPI = Path(__file__).with_name("openapi.json")


def score(req: func.HttpRequest) -> func.HttpResponse:
    services = app_services()
    payload, error = read_json_body(req, services.config.http_max_body_bytes)
    if error is not None:
        return error
    try:
        outcome = services.scoring.score_request(payload)
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
    if outcome.delivery is None:
        return problem(400, "invalid_transaction", "the transaction failed validation",
                       [e.to_dict() for e in outcome.errors])
    return json_response(outcome.delivery.http_body())


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
