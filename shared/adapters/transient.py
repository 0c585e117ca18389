"""Which failures are worth retrying (storage hiccups, contention, no model yet)."""
from __future__ import annotations

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from shared.service.scoring import ScoringContention
from shared.service.model_serving import ModelUnavailable, NoModelPublished


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, ScoringContention, NoModelPublished, ModelUnavailable,
                        ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or exc.status_code == 429 or exc.status_code >= 500
    return False
