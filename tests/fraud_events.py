"""Builders of real azure.functions trigger objects for the tests."""
from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from tools.send_events import event_hub_batch  # noqa: F401  (re-exported for the tests)


def transaction(i: int, customer: str = "C1", amount: float = 12000.0, when: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": f"T{i}",
        "customer_id": customer,
        "transaction_amount": amount,
        "currency": "NGN",
        "timestamp": when or f"2026-11-2{(i // 1440) % 8 + 1}T{(i // 60) % 24:02d}:{i % 60:02d}:00+01:00",
        "device_id": "D1",
        "merchant_id": "M1",
        "merchant_category": "grocery",
        "channel": "pos",
        "country": "NG",
        **extra,
    }


def audit_rows(services) -> list[dict[str, Any]]:
    """The audit log's decision rows (its id index lives in partitions idx-*)."""
    return [r for r in services.audit.entities() if not r["PartitionKey"].startswith("idx-")]


def http_post(route: str, body: Any, raw: bytes | None = None, headers: dict[str, str] | None = None) -> func.HttpRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    return func.HttpRequest(method="POST", url=f"http://localhost/api/{route}",
                            headers={"content-type": "application/json", **(headers or {})},
                            params={}, route_params={}, body=data)


def http_get(route: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
             route_params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method="GET", url=f"http://localhost/api/{route}", headers=headers or {}, params=params or {},
                            route_params=route_params or {}, body=b"")


def principal(name: str = "alice@bank.example", roles: tuple[str, ...] = ("Fraud.Analyst",),
              object_id: str | None = "11111111-2222-3333-4444-555555555555") -> dict[str, str]:
    """The X-MS-CLIENT-PRINCIPAL header App Service Authentication would send for this analyst."""
    from shared.domain.analyst_identity import encode_client_principal

    return {"x-ms-client-principal": encode_client_principal(name, roles, object_id)}


ANALYST = principal()


def analyst_post(route: str, body: Any, raw: bytes | None = None) -> func.HttpRequest:
    """A POST by a signed-in analyst (Fraud.Analyst), as the analysts' routes require."""
    return http_post(route, body, raw, headers=ANALYST)


def analyst_get(route: str, params: dict[str, str] | None = None, route_params: dict[str, str] | None = None) -> func.HttpRequest:
    return http_get(route, params, headers=ANALYST, route_params=route_params)


def decision_record(txn_id: str, when, risk: str = "High", customer: str = "C1", amount: float = 50000.0,
                    score: float | None = None, features=(0.0, 1.0), model_version: str = "test-v1",
                    latency_ms: float = 4.0, merchant_id: str | None = "M7", is_fraud: bool | None = None):
    """A decision as the scoring service makes it, for tests that seed the audit log directly."""
    import numpy as np

    from shared.domain.decision import ACTIONS, Verdict
    from shared.domain.decision_record import DecisionRecord
    from shared.domain.transaction import Transaction

    score = score if score is not None else {"High": 0.95, "Medium": 0.6, "Low": 0.05}[risk]
    reasons = ("amount 14x the 30-day average",) if risk != "Low" else ()
    txn = Transaction(txn_id, customer, float(amount), "NGN", when, device_id="D9", merchant_id=merchant_id,
                      channel="online")
    verdict = Verdict(risk, ACTIONS[risk], risk == "High" if is_fraud is None else is_fraud, reasons, ())
    return DecisionRecord(txn, float(score), verdict, model_version, np.asarray(features, dtype=np.float32), when,
                          "test", latency_ms)


def record_decisions(services, records) -> None:
    """What the scoring service does with the decisions it made, for tests that make them
    directly: the audit log, then every outlet (monitoring aggregates, archive, training
    sample), and the aggregates flushed so the monitor sees them."""
    from shared.domain.decision_record import Delivery

    services.audit.write(records)
    deliveries = [Delivery(r) for r in records]
    for outlet in services.decision_outlets:
        outlet.record(deliveries)
    services.monitoring_aggregator.flush()


class ProfilesLoadedTogether:
    """A profile store whose loads wait at ``barrier`` for the other scorer's: both have read
    their profiles (and, before #17, looked the transaction id up and found nothing) before
    either writes. Everything else goes to the store it wraps."""

    def __init__(self, inner, barrier) -> None:
        self.inner, self.barrier = inner, barrier

    def load(self, customer_id):
        stored = self.inner.load(customer_id)
        self.barrier.wait(timeout=30)
        return stored

    def __getattr__(self, name):
        return getattr(self.inner, name)
