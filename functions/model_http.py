"""GET /api/model: the serving model, when this process loaded it, the shadow challenger
scored beside it (if any), their swap history and the registry's versions with their
metrics and promotion decisions."""
from __future__ import annotations

import azure.functions as func

from functions.http import json_response, storage_unavailable
from shared.composition import app_services
from shared.adapters.transient import is_transient

bp = func.Blueprint()


@bp.function_name("model_http")
@bp.route(route="model", methods=["GET"])
def model_http(req: func.HttpRequest) -> func.HttpResponse:
    try:
        return model_report()
    except Exception as exc:
        if is_transient(exc):
            return storage_unavailable(exc)
        raise


def model_report() -> func.HttpResponse:
    services = app_services()
    serving = services.serving_model
    model = serving.loaded
    if model is None:
        try:
            model = serving.get()
        except Exception:
            model = None
    pointer = services.registry.current()
    shadow = serving.shadow()
    versions = []
    for version in services.registry.list_versions():
        manifest = services.registry.manifest(version)
        test = manifest.get("metrics", {}).get("test", {})
        promotion = manifest.get("promotion") or {}
        versions.append({"version": version, "created_at": manifest.get("created_at"),
                         "roc_auc": test.get("roc_auc"), "average_precision": test.get("average_precision"),
                         "promoted": promotion.get("promoted"), "promotion_reason": promotion.get("reason")})
    return json_response({
        "serving_version": model.version if model else None,
        "loaded_at": model.loaded_at.isoformat() if model else None,
        "current_pointer": pointer.document,
        "shadow_version": shadow.version if shadow else None,
        "shadow_pointer": services.registry.shadow().document,
        "swap_history": [event.__dict__ for event in serving.history],
        "refused_versions": serving.refused,
        "versions": versions,
    })
