"""Blob-triggered retraining: a new base data file or a retrain request starts a
champion/challenger retrain (``training/retrain.py``); a challenger that passes the promotion
gate (ranking gain, calibration, alert budget, on a holdout neither model learned from) is
a candidate that a person approves (``python -m tools.models approve``), or with
FRAUD_AUTO_PROMOTE=true is signed with the release key and promoted; every running scorer picks
up a signed current model within FRAUD_MODEL_REFRESH_SECONDS, without a restart.

A trigger within FRAUD_RETRAIN_COOLDOWN_HOURS of the last retrain start is recorded and skipped
(``shared/service/retrain_cooldown.py``); the next one after the cooldown trains on its data too.
The registry is written through FRAUD_MODEL_STORAGE (the release identity), never as the scoring
identity.

``source="EventGrid"``: the only blob trigger source on the Flex Consumption plan. In Azure
an Event Grid subscription on the data storage account delivers BlobCreated events for the two
containers to the function's blobs_extension endpoint (docs/DEPLOY.md).

``connection="FRAUD_DATA_STORAGE"``: the containers live in the data account, where the app
writes retrain requests and reads training data, not in the host's ``AzureWebJobsStorage``.
The host reads the binding's connection itself and has no fallback, so FRAUD_DATA_STORAGE
must be set wherever the host runs (the Bicep sets it; ``local.settings.example.json`` sets it
to ``UseDevelopmentStorage=true``, the same Azurite account as ``AzureWebJobsStorage``). Locally the tests
call these functions with real ``func.InputStream`` objects. Training libraries are
imported here, inside the function, never on the scoring path.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import azure.functions as func

from shared.composition import app_services

bp = func.Blueprint()
log = logging.getLogger("fraud.retrain")


def run_retrain(trigger: str, now: datetime | None = None) -> dict:
    from shared.service.retrain_cooldown import claim_retrain_start
    from training.retrain import RetrainConfig, retrain

    services = app_services()
    now = now or datetime.now(timezone.utc)
    registry = services.release_registry
    skipped = claim_retrain_start(registry, trigger, now, timedelta(hours=services.config.retrain_cooldown_hours))
    if skipped is not None:
        return skipped
    config = RetrainConfig.from_settings(services.config, services.promotion_gate)
    signer = services.release_signer if config.auto_promote else None
    outcome = retrain(registry, services.blob_service, services.training_sample_store, trigger, config, now=now,
                      training_container=services.config.training_container, signer=signer)
    log.info(json.dumps({"event": "retrain_done", "trigger": trigger, "outcome": outcome["outcome"],
                         "version": outcome.get("version")}))
    return outcome


@bp.function_name("retrain_on_training_data")
@bp.blob_trigger(arg_name="blob", path="%FRAUD_TRAINING_CONTAINER%/{name}", connection="FRAUD_DATA_STORAGE",
                 source="EventGrid")
def retrain_on_training_data(blob: func.InputStream) -> None:
    if not (blob.name or "").endswith(".csv"):
        log.info("ignoring %s: base data files are CSV", blob.name)
        return
    run_retrain(f"training data {blob.name}")


@bp.function_name("retrain_on_request")
@bp.blob_trigger(arg_name="blob", path="%FRAUD_RETRAIN_CONTAINER%/{name}", connection="FRAUD_DATA_STORAGE",
                 source="EventGrid")
def retrain_on_request(blob: func.InputStream) -> None:
    try:
        request = json.loads(blob.read() or b"{}")
    except ValueError:
        request = {}
    reasons = "; ".join(request.get("reasons", [])) or "manual request"
    run_retrain(f"retrain request {blob.name}: {reasons}")
