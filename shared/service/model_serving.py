"""The model a scoring process serves, loaded lazily and hot-swapped without a restart.

``ServingModel.get()`` returns the loaded ``FraudModel``. The first call loads the
registry's current model (thread-safe, once per process). After that, at most every
``refresh_seconds`` a background thread re-reads the registry's ``current`` pointer; a new
version is downloaded, its signed release checked (``ReleaseCheck``: signed by the release
key over exactly these model bytes and this manifest; an unsigned or wrongly signed version
is refused), verified (sha256, feature-schema hash, smoke prediction) and then swapped in
with one reference assignment. A request holds the model object it started
with, so it finishes on that model; a refused artifact is logged and the old model
keeps serving.

``ServingModel.shadow()`` returns the shadow challenger named by the registry's ``shadow``
pointer, or None. It is loaded with the champion and re-read by the same refresh (one more
small blob read per refresh period, none per batch), verified by the same load function,
and swapped the same way; the champion and the shadow move independently. A shadow that is
refused, cannot be loaded or names the champion's version is not used: scoring never
depends on it.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from shared.domain.model import FraudModel, ModelArtifact, ModelRejected, load_model
from shared.service.model_release import ReleaseCheck
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
    outcome: str  # "loaded" | "refused" | "error" | "dropped" (a shadow no longer used)
    detail: str = ""
    role: str = "champion"  # "champion" | "shadow"


@dataclass
class ServingModel:
    source: ModelRegistryPort
    refresh_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    load: Callable[[ModelArtifact], FraudModel] = load_model  # verifies (sha256, feature schema, smoke test) or raises ModelRejected
    releases: ReleaseCheck = field(default_factory=lambda: ReleaseCheck(None))  # no verifier: every version refused
    _model: FraudModel | None = None
    _shadow: FraudModel | None = None
    _checked_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refreshing: bool = False
    history: list[SwapEvent] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # version -> why (not retried)

    def _record(self, version: str | None, outcome: str, detail: str = "", role: str = "champion") -> None:
        self.history.append(SwapEvent(datetime.now(timezone.utc).isoformat(), version, outcome, detail, role))
        del self.history[:-50]

    def _load_version(self, version: str) -> FraudModel:
        artifact = self.source.load(version)
        self.releases.check(artifact, self.source.release(version))  # ReleaseRefused before any session opens
        return self.load(artifact)

    def _verified(self, version: str, role: str) -> FraudModel | None:
        """``version`` loaded and verified; None (recorded, never retried) when it is refused."""
        if self._shadow is not None and self._shadow.version == version:
            return self._shadow  # a shadow promoted to champion: already verified and loaded
        try:
            return self._load_version(version)
        except ModelRejected as exc:
            self.refused[version] = str(exc)
            self._record(version, "refused", str(exc), role)
            log.error("refused %s model %s: %s", role, version, exc)
            return None

    def _refresh(self) -> None:
        """Check both pointers; load and swap in new versions. Never raises."""
        try:
            self._follow("champion", self._follow_current)
            self._follow("shadow", self._follow_shadow)
        finally:
            self._checked_at = self.clock()
            self._refreshing = False

    def _follow(self, role: str, follow: Callable[[], None]) -> None:
        try:
            follow()
        except Exception as exc:  # storage down etc.: keep serving what we have, retry next time
            self._record(None, "error", str(exc), role)
            log.warning("%s model refresh failed, keeping %s: %s", role, self._held(role), exc)

    def _held(self, role: str) -> str | None:
        model = self._model if role == "champion" else self._shadow
        return model.version if model else None

    def _follow_current(self) -> None:
        version = self.source.current().version
        current = self._held("champion")
        if version is None or version == current or version in self.refused:
            return
        model = self._verified(version, "champion")
        if model is None:
            log.error("still serving %s", current)
            return
        self._model = model  # the swap: one reference assignment
        self._record(version, "loaded")
        log.info("now serving model %s (was %s)", version, current)

    def _follow_shadow(self) -> None:
        """Load the shadow pointer's version; drop the shadow when it is unset, refused or the champion."""
        version = self.source.shadow().version
        held = self._held("shadow")
        if version == held and version != self._held("champion"):
            return
        shadow = None
        if version is not None and version != self._held("champion") and version not in self.refused:
            shadow = self._verified(version, "shadow")
        self._shadow = shadow
        if shadow is not None:
            self._record(version, "loaded", role="shadow")
            log.info("now scoring shadow model %s beside the champion (was %s)", version, held)
        elif held is not None:
            self._record(held, "dropped", f"the shadow pointer names {version}", role="shadow")
            log.info("no longer scoring shadow model %s (the pointer names %s)", held, version)

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
        model = None if pointer.version in self.refused else self._verified(pointer.version, "champion")
        if model is None:
            raise ModelUnavailable(f"model {pointer.version} was refused: {self.refused[pointer.version]}")
        self._model = model
        self._record(pointer.version, "loaded")
        self._follow("shadow", self._follow_shadow)  # the shadow never stops scoring

    def refresh_now(self) -> None:
        """Synchronous check (tests, tools)."""
        if self._model is None:
            with self._lock:
                self._load_first()
            return
        self._refreshing = True
        self._refresh()

    def shadow(self) -> FraudModel | None:
        """The shadow challenger to score beside the champion, or None. Never loads: the
        shadow comes with the champion's first load and its refreshes."""
        return self._shadow

    @property
    def loaded(self) -> FraudModel | None:
        return self._model
