"""POST /api/labels: analysts' verdicts (signed in: Fraud.Analyst or Fraud.Admin).

Body: one label object, a list of them, or {"labels": [...]}, each
{transaction_id, label: fraud|legitimate|1|0, customer_id?, labelled_at?, source?}.
Who gave the verdict (``labelled_by``) is the signed-in analyst, never a body field; the
route is anonymous at the Functions level and refused here (401/403) without a trusted
principal holding a role. Case systems deliver label files (the blob trigger) instead.
202 with what was joined, the current label of each transaction named (who gave it, what
it was before) and which transaction ids are not (yet) known (kept and joined by the timer
once they are). 400 names every offending item and field; a request is all or nothing, so
a caller can resend it whole (an exact resend adds no history).
"""
from __future__ import annotations

import azure.functions as func

from functions.http import authorise, json_response, problem, read_json_body, storage_unavailable
from shared.domain.labels import parse_label
from shared.composition import app_services
from shared.adapters.transient import is_transient

bp = func.Blueprint()


@bp.function_name("labels_http")
@bp.route(route="labels", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def labels_http(req: func.HttpRequest) -> func.HttpResponse:
    services = app_services()
    analyst, refused = authorise(req, services.config)
    if refused is not None:
        return refused
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
        outcome = services.monitoring.accept_labels(labels, labelled_by=analyst.name, labelled_by_id=analyst.object_id)
    except Exception as exc:
        if is_transient(exc):
            return storage_unavailable(exc)  # resending is safe: a resent verdict adds no history entry
        raise
    return json_response({"received": len(labels), "labelled_by": analyst.name, **outcome}, status=202)
