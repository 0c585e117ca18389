"""The composition root: builds the app's services from settings, once per process.

Entry points call ``app_services()``; tests call ``reset_app_services()`` after changing
settings. Clients are created lazily and reused across invocations, as the Functions
host expects.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from shared.alerts import AlertQueue, AlertWebhook
from shared.audit_log import AuditLog
from shared.dead_letter import DeadLetterStore
from shared.decision import DecisionPolicy, DecisionRules, Thresholds
from shared.model import FraudModel
from shared.label_store import LabelStore
from shared.merchant_store import MerchantRiskCache, MerchantRiskStore
from shared.model_registry import ModelRegistry
from shared.monitoring import MonitoringConfig, MonitoringService
from shared.monitoring_store import LabelFileContainer, MonitoringBlobs
from shared.profile_store import CommitConflict, ProfileStore
from shared.scoring import FraudScoringService
from shared.serving_model import ServingModel
from shared.settings import setting, setting_float, setting_int
from shared.storage import StorageAccount

log = logging.getLogger(__name__)


@dataclass
class RulesSource:
    """Decision rules from the FRAUD_RULES setting, or from a blob re-read every minute."""

    inline: str
    blob_path: str
    blob_service: Any
    refresh_seconds: float = 60.0
    _cached: DecisionRules | None = None
    _read_at: float = 0.0

    def rules(self) -> DecisionRules:
        if self.inline:
            if self._cached is None:
                self._cached = DecisionRules.from_json(self.inline)
            return self._cached
        if not self.blob_path:
            return DecisionRules()
        if self._cached is None or time.monotonic() - self._read_at > self.refresh_seconds:
            container, _, name = self.blob_path.partition("/")
            try:
                text = self.blob_service.get_blob_client(container, name).download_blob().readall()
                self._cached = DecisionRules.from_json(text)
            except Exception as exc:
                if self._cached is None:
                    raise
                log.error("could not refresh rules from %s, keeping the previous rules: %s", self.blob_path, exc)
            self._read_at = time.monotonic()
        return self._cached


@dataclass
class AppServices:
    env: Mapping[str, str]
    _policies: dict[str, DecisionPolicy] = field(default_factory=dict)

    @cached_property
    def storage(self) -> StorageAccount:
        return StorageAccount.from_settings(self.env)

    @cached_property
    def blob_service(self):
        return self.storage.blob_service()

    @cached_property
    def table_service(self):
        return self.storage.table_service()

    @cached_property
    def queue_service(self):
        return self.storage.queue_service()

    @cached_property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.blob_service, setting("FRAUD_MODEL_CONTAINER", self.env))

    @cached_property
    def serving_model(self) -> ServingModel:
        return ServingModel(self.registry, refresh_seconds=float(setting("FRAUD_MODEL_REFRESH_SECONDS", self.env)))

    @cached_property
    def profiles(self) -> ProfileStore:
        return ProfileStore(self.table_service.get_table_client(setting("FRAUD_PROFILE_TABLE", self.env)),
                            cache_size=setting_int("FRAUD_PROFILE_CACHE_SIZE", self.env))

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.table_service.get_table_client(setting("FRAUD_AUDIT_TABLE", self.env)),
                        setting_int("FRAUD_AUDIT_SHARDS", self.env))

    @cached_property
    def alerts(self) -> AlertQueue:
        return AlertQueue(self.queue_service, setting("FRAUD_ALERT_QUEUE", self.env))

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        return DeadLetterStore(self.blob_service, setting("FRAUD_DEAD_LETTER_CONTAINER", self.env))

    @cached_property
    def rules_source(self) -> RulesSource:
        return RulesSource(setting("FRAUD_RULES", self.env), setting("FRAUD_RULES_BLOB", self.env), self.blob_service)

    def policy_for(self, model: FraudModel) -> DecisionPolicy:
        overrides = {k: setting_float(f"FRAUD_{k.upper()}_THRESHOLD", self.env) for k in ("high", "medium", "alert")}
        rules = self.rules_source.rules()
        cached = self._policies.get(model.version)
        if cached is None or cached.rules is not rules:
            cached = DecisionPolicy(Thresholds.resolve(model.thresholds, overrides), rules)
            self._policies[model.version] = cached
        return cached

    @cached_property
    def scoring(self) -> FraudScoringService:
        webhook_url = setting("FRAUD_ALERT_WEBHOOK_URL", self.env)
        return FraudScoringService(
            profiles=self.profiles,
            audit=self.audit,
            alerts=self.alerts,
            dead_letters=self.dead_letters,
            model=self.serving_model,
            policy_for=self.policy_for,
            conflict_error=CommitConflict,
            webhook=AlertWebhook(webhook_url) if webhook_url else None,
            merchants=self.merchant_cache,
            default_currency=setting("FRAUD_DEFAULT_CURRENCY", self.env),
            max_amount=float(setting("FRAUD_MAX_AMOUNT", self.env)),
        )

    @cached_property
    def label_store(self) -> LabelStore:
        return LabelStore(self.table_service.get_table_client(setting("FRAUD_LABEL_TABLE", self.env)))

    @cached_property
    def label_files(self) -> LabelFileContainer:
        return LabelFileContainer(self.blob_service, setting("FRAUD_LABELS_CONTAINER", self.env))

    @cached_property
    def monitoring_blobs(self) -> MonitoringBlobs:
        return MonitoringBlobs(self.blob_service, setting("FRAUD_MONITORING_CONTAINER", self.env),
                               setting("FRAUD_RETRAIN_CONTAINER", self.env))

    def serving_manifest(self) -> dict | None:
        """The manifest of the model serving now (or the registry's current one)."""
        model = self.serving_model.loaded
        if model is not None:
            return model.manifest
        current = self.registry.current()
        return self.registry.manifest(current.version) if current.version else None

    @cached_property
    def monitoring(self) -> MonitoringService:
        config = MonitoringConfig(
            window_hours=float(setting("FRAUD_MONITOR_WINDOW_HOURS", self.env)),
            psi_warn=float(setting("FRAUD_PSI_WARN", self.env)),
            psi_alert=float(setting("FRAUD_PSI_ALERT", self.env)),
            retrain_cooldown_hours=float(setting("FRAUD_RETRAIN_COOLDOWN_HOURS", self.env)),
            min_labelled_fraud=setting_int("FRAUD_RETRAIN_MIN_LABELLED_FRAUD", self.env),
            min_recall=float(setting("FRAUD_RETRAIN_MIN_RECALL", self.env)),
            label_delay_days=float(setting("FRAUD_LABEL_DELAY_DAYS", self.env)),
        )
        return MonitoringService(self.audit, self.label_store, self.label_files, self.monitoring_blobs,
                                 self.serving_manifest, merchants=self.merchant_store, config=config)

    @cached_property
    def merchant_store(self) -> MerchantRiskStore:
        return MerchantRiskStore(self.table_service.get_table_client(setting("FRAUD_MERCHANT_TABLE", self.env)))

    @cached_property
    def merchant_cache(self) -> MerchantRiskCache:
        return MerchantRiskCache(self.merchant_store, float(setting("FRAUD_MERCHANT_CACHE_SECONDS", self.env)))

    def ensure_resources(self) -> None:
        """Create the tables, containers and queue if missing (idempotent; local runs and tests)."""
        self.profiles.ensure_table()
        self.audit.ensure_table()
        self.alerts.ensure_queue()
        self.dead_letters.ensure_container()
        self.registry.ensure_container()
        self.label_store.ensure_table()
        self.merchant_store.ensure_table()
        self.label_files.ensure_container()
        self.monitoring_blobs.ensure_containers()


_services: AppServices | None = None
_services_lock = threading.Lock()


def app_services() -> AppServices:
    global _services
    if _services is None:
        with _services_lock:
            if _services is None:
                import os

                services = AppServices(os.environ)
                try:
                    services.ensure_resources()
                except Exception as exc:  # storage down at start: the next call reports it
                    log.warning("could not ensure storage resources: %s", exc)
                _services = services
    return _services


def reset_app_services() -> None:
    global _services
    _services = None
