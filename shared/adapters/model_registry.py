"""The model registry: a Blob Storage adapter.

Layout in the container (``FRAUD_MODEL_CONTAINER``, default ``models``)::

    <version>/model.onnx
    <version>/manifest.json
    current.json            {"version": ..., "updated_at": ..., "previous": ...}

``current.json`` is only ever written with an ETag condition, so two writers that read
the same pointer cannot both move it.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.domain.model import ModelArtifact
from shared.adapters.storage_account import create_if_missing
from shared.service.ports import CurrentPointer, StalePointer, VersionExists

POINTER = "current.json"


class ModelRegistry:
    def __init__(self, blob_service: Any, container: str = "models") -> None:
        self._container = blob_service.get_container_client(container)

    def ensure_container(self) -> None:
        create_if_missing(self._container.create_container)

    # -- versions -----------------------------------------------------------------------
    def publish(self, artifact: ModelArtifact) -> str:
        """Upload a version's files; a version is immutable once published."""
        version = artifact.version
        if "/" in version or not version:
            raise ValueError(f"bad model version {version!r}")
        try:
            # manifest last: a version is listed only once both files exist
            self._container.upload_blob(f"{version}/model.onnx", artifact.onnx_bytes, overwrite=False)
            self._container.upload_blob(
                f"{version}/manifest.json", json.dumps(artifact.manifest, indent=1).encode(), overwrite=False
            )
        except ResourceExistsError:
            raise VersionExists(f"model version {version} is already published") from None
        return version

    def load(self, version: str) -> ModelArtifact:
        onnx_bytes = self._container.download_blob(f"{version}/model.onnx").readall()
        manifest_bytes = self._container.download_blob(f"{version}/manifest.json").readall()
        return ModelArtifact.from_files(onnx_bytes, manifest_bytes)

    def manifest(self, version: str) -> dict[str, Any]:
        return json.loads(self._container.download_blob(f"{version}/manifest.json").readall())

    def list_versions(self) -> list[str]:
        names = (b.name for b in self._container.list_blobs())
        return sorted(n.split("/")[0] for n in names if n.endswith("/manifest.json"))

    # -- the current pointer ------------------------------------------------------------
    def current(self) -> CurrentPointer:
        try:
            downloader = self._container.download_blob(POINTER)
        except ResourceNotFoundError:
            return CurrentPointer(None, None, {})
        document = json.loads(downloader.readall())
        return CurrentPointer(document.get("version"), downloader.properties.etag, document)

    def set_current(self, version: str, expected: CurrentPointer, **details: Any) -> CurrentPointer:
        """Point ``current`` at ``version`` if the pointer is still ``expected``.

        Raises ``StalePointer`` when someone else moved it first.
        """
        if version not in self.list_versions():
            raise ValueError(f"model version {version} is not published")
        document = {
            "version": version,
            "updated_at": datetime.now(timezone.utc).isoformat(),
            "previous": expected.version,
            **details,
        }
        body = json.dumps(document).encode()
        blob = self._container.get_blob_client(POINTER)
        try:
            if expected.etag is None:
                result = blob.upload_blob(body, overwrite=False)
            else:
                result = blob.upload_blob(
                    body, overwrite=True, etag=expected.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError):
            raise StalePointer(f"the current model pointer moved since it was read (expected {expected.version})") from None
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                raise StalePointer(str(exc)) from None
            raise
        return CurrentPointer(version, result["etag"], document)

    def load_current(self) -> ModelArtifact | None:
        pointer = self.current()
        if pointer.version is None:
            return None
        return self.load(pointer.version)
