"""The model registry: a Blob Storage adapter.

Layout in the container (``FRAUD_MODEL_CONTAINER``, default ``models``)::

    <version>/model.onnx
    <version>/manifest.json
    <version>/release.json  the signed release (shared/domain/release.py); absent: a candidate, unsigned
    current.json            {"version": ..., "updated_at": ..., "previous": ...}
    shadow.json             {"version": ... or null, "set_at": ..., "previous": ..., "reason": ...}
    retrain-log.json        {"last_started_at": ..., "skipped": [...]}: the retrain triggers' cooldown

``current.json`` names the champion that decides; ``shadow.json`` an optional challenger
that serving scores beside it, logged only (``version`` null: no shadow). Both pointers
are only ever written with an ETag condition, so two writers that read the same pointer
cannot both move it.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.domain.model import ModelArtifact
from shared.adapters.storage_account import create_if_missing
from shared.service.ports import CurrentPointer, StalePointer, VersionExists

POINTER = "current.json"
SHADOW_POINTER = "shadow.json"
log = logging.getLogger(__name__)
RETRAIN_LOG = "retrain-log.json"
RELEASE = "release.json"


class ModelRegistry:
    def __init__(self, blob_service: Any, container: str = "models") -> None:
        self._container = blob_service.get_container_client(container)

    def ensure_container(self) -> None:
        """Create the container if missing. A scoring identity may only read it (in Azure the
        release identity alone writes it, and the Bicep creates it): a refusal (403) is logged,
        never a start-up failure."""
        try:
            create_if_missing(self._container.create_container)
        except HttpResponseError as exc:
            if exc.status_code != 403:
                raise
            log.info("not creating the model container (read-only identity): %s", exc.reason)

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

    def release(self, version: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._container.download_blob(f"{version}/{RELEASE}").readall())
        except ResourceNotFoundError:
            return None
        except ValueError:
            return {}  # not JSON: an unusable release, refused by the check

    def put_release(self, version: str, document: dict[str, Any]) -> None:
        if version not in self.list_versions():
            raise ValueError(f"model version {version} is not published")
        try:
            self._container.upload_blob(f"{version}/{RELEASE}", json.dumps(document, indent=1).encode(), overwrite=False)
        except ResourceExistsError:
            raise VersionExists(f"model version {version} is signed already") from None

    # -- the pointers: current (the champion) and shadow (a challenger, logged only) --------
    def _read_pointer(self, name: str) -> CurrentPointer:
        try:
            downloader = self._container.download_blob(name)
        except ResourceNotFoundError:
            return CurrentPointer(None, None, {})
        document = json.loads(downloader.readall())
        return CurrentPointer(document.get("version"), downloader.properties.etag, document)

    def _write_pointer(self, name: str, document: dict[str, Any], expected: CurrentPointer) -> CurrentPointer:
        """Write a pointer only if it is still ``expected`` (no blob yet when its etag is None)."""
        if document.get("version") is not None and document["version"] not in self.list_versions():
            raise ValueError(f"model version {document['version']} is not published")
        body = json.dumps(document).encode()
        blob = self._container.get_blob_client(name)
        try:
            if expected.etag is None:
                result = blob.upload_blob(body, overwrite=False)
            else:
                result = blob.upload_blob(
                    body, overwrite=True, etag=expected.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError):
            raise StalePointer(f"the model pointer {name} moved since it was read (expected {expected.version})") from None
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                raise StalePointer(str(exc)) from None
            raise
        return CurrentPointer(document.get("version"), result["etag"], document)

    def current(self) -> CurrentPointer:
        return self._read_pointer(POINTER)

    def set_current(self, version: str, expected: CurrentPointer, **details: Any) -> CurrentPointer:
        """Point ``current`` at ``version`` if the pointer is still ``expected``.

        Raises ``StalePointer`` when someone else moved it first.
        """
        document = {
            "version": version,
            "updated_at": datetime.now(timezone.utc).isoformat(),
            "previous": expected.version,
            **details,
        }
        return self._write_pointer(POINTER, document, expected)

    def shadow(self) -> CurrentPointer:
        """The shadow challenger's pointer (version None: no shadow)."""
        return self._read_pointer(SHADOW_POINTER)

    def set_shadow(self, version: str | None, expected: CurrentPointer | None = None, **details: Any) -> CurrentPointer:
        """Point ``shadow`` at a published ``version`` (None clears it), if the pointer is still
        ``expected`` (default: as read now). Raises ``StalePointer`` when someone moved it first."""
        expected = self.shadow() if expected is None else expected
        document = {"version": version, "set_at": datetime.now(timezone.utc).isoformat(),
                    "previous": expected.version, **details}
        return self._write_pointer(SHADOW_POINTER, document, expected)

    def clear_shadow(self, expected: CurrentPointer | None = None, **details: Any) -> CurrentPointer:
        return self.set_shadow(None, expected, **details)

    def retrain_log(self) -> CurrentPointer:
        return self._read_pointer(RETRAIN_LOG)

    def set_retrain_log(self, document: dict[str, Any], expected: CurrentPointer) -> CurrentPointer:
        return self._write_pointer(RETRAIN_LOG, document, expected)

    def load_current(self) -> ModelArtifact | None:
        pointer = self.current()
        if pointer.version is None:
            return None
        return self.load(pointer.version)
