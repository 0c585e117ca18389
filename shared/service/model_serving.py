"""The model a scoring process serves, loaded lazily and hot-swapped without a restart.

``ServingModel.get()`` returns the loaded ``FraudModel``. The first call loads the
registry's current model (thread-safe, once per process). After that, at most every
``refresh_seconds`` a background thread re-reads the registry's ``current`` pointer; a new
version is downloaded, verified (sha256, feature-schema hash, smoke prediction) and then
swapped in with one reference assignment. A request holds the model object it started
with, so it finishes on that model; a refused artifact is logged and the old model
keeps serving.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from shared.domain.model import FraudModel, ModelArtifact, ModelRejected, load_model
from shared.service.ports import ModelRegistryPort

log = logging.getLogger(__name__)


class NoModelPublished(Exception):
    pass


class ModelUnavailable(Exception):
    """The current model could not be loaded (refused or unreachable), and none is serving."""


@dataclass
class SwapEvent:
    at: str
    version: str | None
    outcome: str  # "loaded" | "refused" | "error"
    detail: str = ""


@dataclass
class ServingModel:
    source: ModelRegistryPort
    refresh_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    load: Callable[[ModelArtifact], FraudModel] = load_model  # verifies (sha256, feature schema, smoke test) or raises ModelRejected
    _model: FraudModel | None = None
    _checked_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refreshing: bool = False
    history: list[SwapEvent] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # version -> why (not retried)

    def _record(self, version: str | None, outcome: str, detail: str = "") -> None:
        self.history.append(SwapEvent(datetime.now(timezone.utc).isoformat(), version, outcome, detail))
        del self.history[:-50]

    def _load_version(self, version: str) -> FraudModel:
        return self.load(self.source.load(version))

    def _refresh(self) -> None:
        """Check the pointer; load and swap in a new version. Never raises."""
        try:
            pointer = self.source.current()
            version = pointer.version
            current = self._model.version if self._model else None
            if version is None or version == current or version in self.refused:
                return
            try:
                model = self._load_version(version)
            except ModelRejected as exc:
                self.refused[version] = str(exc)
                self._record(version, "refused", str(exc))
                log.error("refused model %s, still serving %s: %s", version, current, exc)
                return
            self._model = model  # the swap: one reference assignment
            self._record(version, "loaded")
            log.info("now serving model %s (was %s)", version, current)
        except Exception as exc:  # storage down etc.: keep serving what we have
            self._record(None, "error", str(exc))
            log.warning("model refresh failed, still serving %s: %s", self._model.version if self._model else None, exc)
        finally:
            self._checked_at = self.clock()
            self._refreshing = False

    def get(self) -> FraudModel:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._load_first()
                model = self._model
        elif self.clock() - self._checked_at >= self.refresh_seconds and not self._refreshing:
            with self._lock:
                if not self._refreshing:
                    self._refreshing = True
                    threading.Thread(target=self._refresh, name="model-refresh", daemon=True).start()
        assert model is not None
        return model

    def _load_first(self) -> None:
        pointer = self.source.current()
        self._checked_at = self.clock()
        if pointer.version is None:
            raise NoModelPublished("no model is published: train and publish one (make run does)")
        if pointer.version in self.refused:
            raise ModelUnavailable(f"model {pointer.version} was refused: {self.refused[pointer.version]}")
        try:
            self._model = self._load_version(pointer.version)
        except ModelRejected as exc:
            self.refused[pointer.version] = str(exc)
            self._record(pointer.version, "refused", str(exc))
            log.error("refused model %s: %s", pointer.version, exc)
            raise ModelUnavailable(f"model {pointer.version} was refused: {exc}") from None
        self._record(pointer.version, "loaded")

    def refresh_now(self) -> None:
        """Synchronous check (tests, tools)."""
        if self._model is None:
            with self._lock:
                self._load_first()
            return
        self._refreshing = True
        self._refresh()

    @property
    def loaded(self) -> FraudModel | None:
        return self._model
