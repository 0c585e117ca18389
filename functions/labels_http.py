"""POST /api/labels: fraud outcomes from analysts and case systems.

Body: one label object, a list of them, or {"labels": [...]}, each
{transaction_id, label: fraud|legitimate|1|0, customer_id?, labelled_at?, source?}.
202 with what was joined and which transaction ids are not (yet) known (kept and joined
by the timer once they are). 400 names every offending item and field; a request is all
or nothing, so a caller can resend it whole.
"""
from __future__ import annotations

import azure.functions as func

from functions.http import json_response, problem, read_json_body, storage_unavailable
from shared.domain.labels import parse_label
from shared.composition import app_services
from shared.adapters.transient import is_transient

bp = func.Blueprint()


@bp.function_name("labels_http")
@bp.route(route="labels", methods=["POST"])
def labels_http(req: func.HttpRequest) -> func.HttpResponse:
    services = app_services()
    payload, error = read_json_body(req, services.config.http_max_body_bytes, empty_error="invalid_labels")
    if error is not None:
        return error
    items = payload.get("labels") if isinstance(payload, dict) and "labels" in payload else payload
    items = items if isinstance(items, list) else [items]
    if not items:
        return problem(400, "invalid_labels", "no labels in the request", [{"field": "labels", "problem": "is empty"}])
    labels, errors = [], []
    for i, item in enumerate(items):
        label, problems = parse_label(item, default_source="api")
        if label is None:
            errors += [{"field": f"labels[{i}].{p.field}" if p.field != "$" else f"labels[{i}]", "problem": p.problem}
                       for p in problems]
        else:
            labels.append(label)
    if errors:
        return problem(400, "invalid_labels", "some labels failed validation; nothing was recorded", errors)
    try:
        outcome = services.monitoring.accept_labels(labels)
    except Exception as exc:
        if is_transient(exc):
            return storage_unavailable(exc)  # labels are upserts by id: resending is safe
        raise
    return json_response({"received": len(labels), **outcome}, status=202)
