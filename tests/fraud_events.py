"""Builders of real azure.functions trigger objects for the tests."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import azure.functions as func
from azure.functions import meta


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


def event_hub_batch(bodies: list[Any], partition: str = "0", first_sequence: int = 100) -> list[func.EventHubEvent]:
    """A cardinality=many batch as the host delivers it: bodies plus shared trigger metadata."""
    metadata = {"PartitionContext": meta.Datum(json.dumps({"PartitionId": partition, "EventHubName": "transactions"}), "json")}
    events = []
    for k, body in enumerate(bodies):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        events.append(func.EventHubEvent(body=raw, trigger_metadata=metadata, sequence_number=first_sequence + k,
                                         enqueued_time=datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc),
                                         partition_key=None, offset=str(k)))
    return events


def http_post(route: str, body: Any, raw: bytes | None = None) -> func.HttpRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    return func.HttpRequest(method="POST", url=f"http://localhost/api/{route}", headers={"content-type": "application/json"},
                            params={}, route_params={}, body=data)


def http_get(route: str, params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method="GET", url=f"http://localhost/api/{route}", headers={}, params=params or {},
                            route_params={}, body=b"")
