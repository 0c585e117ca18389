"""Blob adapters of the monitoring loop: label files in, reports and retrain requests out.

* container ``labels``: label files dropped by the bank (CSV / JSON lines);
* container ``monitoring``: ``<YYYY-MM-DD>/<HHMMSS>.json`` per run, ``latest.json``, and
  ``retrain-state.json`` (when a retrain was last requested; ETag-guarded);
* container ``retrain-requests``: one blob per request — the retraining function's trigger.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.adapters.storage_account import create_if_missing

STATE = "retrain-state.json"


def _ensure(container: Any) -> None:
    create_if_missing(container.create_container)


class LabelFileContainer:
    def __init__(self, blob_service: Any, container: str = "labels") -> None:
        self._container = blob_service.get_container_client(container)

    def ensure_container(self) -> None:
        _ensure(self._container)

    def new_files(self) -> list[tuple[str, str]]:
        return [(b.name, b.etag) for b in self._container.list_blobs() if b.name.endswith((".csv", ".jsonl", ".ndjson", ".json"))]

    def read(self, name: str) -> bytes:
        return self._container.download_blob(name).readall()

    def upload(self, name: str, content: bytes) -> None:
        self._container.upload_blob(name, content, overwrite=True)


class MonitoringBlobs:
    def __init__(self, blob_service: Any, reports: str = "monitoring", requests: str = "retrain-requests") -> None:
        self._reports = blob_service.get_container_client(reports)
        self._requests = blob_service.get_container_client(requests)

    def ensure_containers(self) -> None:
        _ensure(self._reports)
        _ensure(self._requests)

    def write_report(self, report: dict[str, Any], at: datetime) -> str:
        name = f"{at:%Y-%m-%d}/{at:%H%M%S}.json"
        body = json.dumps(report, indent=1, default=str).encode()
        self._reports.upload_blob(name, body, overwrite=True)
        self._reports.upload_blob("latest.json", body, overwrite=True)
        return f"{self._reports.container_name}/{name}"

    def latest(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._reports.download_blob("latest.json").readall())
        except ResourceNotFoundError:
            return None

    def request_retrain(self, request: dict[str, Any], at: datetime, cooldown: timedelta) -> str | None:
        """Write a retrain request unless one was written within the cooldown.

        The state blob is updated with an ETag condition first, so two overlapping runs
        cannot both request: the loser sees the condition fail and writes nothing.
        """
        blob = self._reports.get_blob_client(STATE)
        try:
            downloader = blob.download_blob()
            state, etag = json.loads(downloader.readall()), downloader.properties.etag
        except ResourceNotFoundError:
            state, etag = {}, None
        last = state.get("last_requested_at")
        if last and at - datetime.fromisoformat(last) < cooldown:
            return None
        name = f"requests/{at:%Y%m%dT%H%M%S}.json"
        body = json.dumps({"last_requested_at": at.isoformat(), "request": name}).encode()
        try:
            if etag is None:
                blob.upload_blob(body, overwrite=False)
            else:
                blob.upload_blob(body, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError):
            return None
        self._requests.upload_blob(name, json.dumps(request, indent=1).encode(), overwrite=True)
        return f"{self._requests.container_name}/{name}"

    def retrain_requests(self) -> list[str]:
        return sorted(b.name for b in self._requests.list_blobs())
