"""The composition root: builds the app's services from settings, once per process.

Entry points call ``app_services()``; tests call ``reset_app_services()`` after changing
settings. Clients are created lazily and reused across invocations, as the Functions
host expects.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from datetime import timedelta

from shared.adapters.alert_queue import AlertQueue, AlertWebhook
from shared.adapters.aggregate_table import MonitoringAggregateTable
from shared.adapters.archive_blobs import DecisionArchiveBlobs, DecisionStagingBlobs
from shared.adapters.audit_table import AuditLog
from shared.adapters.dead_letter_blobs import DeadLetterStore
from shared.domain.decision import DecisionPolicy, DecisionRules, Thresholds
from shared.domain.model import FraudModel
from shared.domain.promotion import PromotionGate
from shared.domain.pseudonym import Pseudonyms
from shared.domain.retention import RetentionPolicy
from shared.adapters.label_table import LabelStore
from shared.adapters.merchant_table import MerchantRiskCache, MerchantRiskStore
from shared.adapters.model_registry import ModelRegistry
from shared.service.archive_compaction import DecisionArchiveCompaction
from shared.service.archive_outlet import DecisionArchiveOutlet
from shared.service.dashboard_views import DashboardViews, cursor_key
from shared.service.monitoring import MonitoringConfig, MonitoringService
from shared.service.monitoring_aggregates import MonitoringAggregator, reference_lookup
from shared.service.outlet_buffer import BufferedOutlet
from shared.service.outlet_linger import LingeringOutlet
from shared.adapters.monitoring_blobs import LabelFileContainer, MonitoringBlobs
from shared.adapters.profile_accounts import ProfileAccountRouter
from shared.adapters.profile_table import ProfileStore
from shared.adapters.pseudonym_key import load_pseudonym_key
from shared.service.retention import RetentionService
from shared.adapters.training_sample_blobs import TrainingSampleBlobs
from shared.service.scoring import FraudScoringService
from shared.service.training_sample import TrainingSampleOutlet
from shared.domain.release import ReleaseRefused
from shared.service.model_release import ReleaseCheck
from shared.service.model_serving import ServingModel
from shared.service.ports import CurrentPointer
from shared.config import FraudConfig
from shared.adapters.release_keys import release_signer, release_verifier
from shared.adapters.storage_account import StorageAccount, data_connection, model_connection

log = logging.getLogger(__name__)

# The Azure SDK's loggers: at INFO, the HTTP logging policy logs every storage request's URL and
# headers (table URLs name partition and row keys). The Functions host's host.json levels
# ("Azure.Core": "Warning") govern the host process only, not this Python worker, whose root
# logger passes everything on to Application Insights: so the app quiets them itself, in Azure
# as locally (docs/DATA.md).
QUIET_SDK_LOGGERS = ("azure", "azure.core.pipeline.policies.http_logging_policy", "azure.identity")


def quiet_azure_sdk_logging() -> None:
    """Set the Azure SDK's loggers to WARNING (never lower a level set higher)."""
    for name in QUIET_SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET (0) too
            logger.setLevel(logging.WARNING)


quiet_azure_sdk_logging()  # at import: every entry point builds its services from here


RULES_SIGNATURE_SUFFIX = ".sig"


@dataclass
class RulesSource:
    """Decision rules from the FRAUD_RULES setting, or from a signed blob re-read every minute.

    The blob (``container/name``) is used only with a signature beside it (``<name>.sig``,
    ``python -m tools.models sign-rules``) that the release key made over exactly its bytes.
    An unsigned, wrongly signed or tampered blob is refused and logged: the process keeps the
    last good rules, or the built-in defaults when it has none yet. The inline setting is an app
    setting (protected by Azure's own access control) and needs no signature."""

    inline: str
    blob_path: str
    blob_service: Any
    refresh_seconds: float = 60.0
    check: ReleaseCheck = field(default_factory=lambda: ReleaseCheck(None))
    _cached: DecisionRules | None = None
    _read_at: float = 0.0
    refusals: list[str] = field(default_factory=list)  # the latest refusals, newest last

    def rules(self) -> DecisionRules:
        if self.inline:
            if self._cached is None:
                self._cached = DecisionRules.from_json(self.inline)
            return self._cached
        if not self.blob_path:
            return DecisionRules()
        if self._cached is None or time.monotonic() - self._read_at > self.refresh_seconds:
            try:
                self._cached = self._read_signed()
            except ReleaseRefused as exc:
                self._refuse(str(exc))
            except Exception as exc:
                if self._cached is None:
                    raise
                log.error("could not refresh rules from %s, keeping the previous rules: %s", self.blob_path, exc)
            self._read_at = time.monotonic()
        return self._cached

    def _read_signed(self) -> DecisionRules:
        from azure.core.exceptions import ResourceNotFoundError

        container, _, name = self.blob_path.partition("/")
        data = self.blob_service.get_blob_client(container, name).download_blob().readall()
        try:
            signature = json.loads(self.blob_service.get_blob_client(
                container, name + RULES_SIGNATURE_SUFFIX).download_blob().readall())
        except ResourceNotFoundError:
            signature = None
        except ValueError:
            signature = {}  # not JSON: refused by the check
        self.check.check_rules(self.blob_path, data, signature)
        try:
            return DecisionRules.from_json(data)
        except ValueError as exc:
            raise ReleaseRefused(f"rules {self.blob_path}: signed, but not valid rules: {exc}") from None

    def _refuse(self, why: str) -> None:
        kept = "the previous rules" if self._cached is not None else "the built-in default rules"
        log.error(json.dumps({"event": "rules_refused", "blob": self.blob_path, "reason": why, "keeping": kept}))
        self.refusals.append(why)
        del self.refusals[:-20]
        if self._cached is None:
            self._cached = DecisionRules()


@dataclass
class AppServices:
    env: Mapping[str, str]
    _policies: dict[str, DecisionPolicy] = field(default_factory=dict)

    @cached_property
    def config(self) -> FraudConfig:
        return FraudConfig.from_env(self.env)

    @cached_property
    def storage(self) -> StorageAccount:
        """The data account: ``FRAUD_DATA_STORAGE`` in any of its forms, else ``AzureWebJobsStorage``.
        Every table, container and queue below lives there (profiles too, unless
        ``FRAUD_PROFILE_ACCOUNTS`` spreads them); the host keeps ``AzureWebJobsStorage`` for itself."""
        return StorageAccount.for_data(self.env)

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
        return ModelRegistry(self.blob_service, self.config.model_container)

    @cached_property
    def release_registry(self) -> ModelRegistry:
        """The model registry as the retrain and the release tools write it: through
        ``FRAUD_MODEL_STORAGE`` (the release identity) when it is set, else the data account's
        ``registry``. Scoring only ever reads ``registry``."""
        if model_connection(self.env) == data_connection(self.env):
            return self.registry
        blobs = StorageAccount.for_models(self.env).blob_service()
        return ModelRegistry(blobs, self.config.model_container)

    @cached_property
    def release_verifier(self):
        """The release key's public half (``FRAUD_RELEASE_KEY``), as the scoring identity reads it;
        None (logged) when it is empty or unusable: then no model or rules blob is accepted."""
        try:
            verifier = release_verifier(self.config.release_key,
                                        self.env.get(f"{data_connection(self.env)}__clientId") or None)
        except Exception as exc:
            log.error("FRAUD_RELEASE_KEY cannot be used to verify releases (%s): every model is refused", exc)
            return None
        if verifier is None:
            log.error("FRAUD_RELEASE_KEY is empty: no release can be verified, so no model will serve")
        return verifier

    @cached_property
    def release_check(self) -> ReleaseCheck:
        return ReleaseCheck(self.release_verifier)

    @cached_property
    def release_signer(self):
        """The release key's signer (``FRAUD_RELEASE_KEY``; in Azure as the ``FRAUD_MODEL_STORAGE``
        identity, the release identity), or None when the setting is empty. Raises when it is set
        but unusable (a missing key file)."""
        return release_signer(self.config.release_key,
                              self.env.get(f"{model_connection(self.env)}__clientId") or None)

    @cached_property
    def serving_model(self) -> ServingModel:
        return ServingModel(self.registry, refresh_seconds=self.config.model_refresh_seconds,
                            releases=self.release_check)

    @cached_property
    def pseudonym_key(self) -> bytes:
        """``FRAUD_PSEUDONYM_KEY``, read once. A missing or unresolved key raises ``PseudonymKeyError``,
        so nothing that needs it (scoring, the backfill, the dashboard) starts without it."""
        return load_pseudonym_key(self.config.pseudonym_key, self.env)

    @cached_property
    def pseudonyms(self) -> Pseudonyms:
        """The keyed pseudonyms of customer and device ids: profiles and the webhook use them."""
        return Pseudonyms(self.pseudonym_key)

    @cached_property
    def profile_stores(self) -> list[ProfileStore]:
        """One profile store per account that ``FRAUD_PROFILE_ACCOUNTS`` names, in its order (the
        data account's alone when it names none), each with its own table client. The profile
        cache is split between them: a customer only ever uses its own account's."""
        settings = self.config.profile_account_settings
        table = self.config.profile_table
        if not settings:
            return [ProfileStore(self.table_service.get_table_client(table), cache_size=self.config.profile_cache_size,
                                 pseudonyms=self.pseudonyms)]
        cache_size = -(-self.config.profile_cache_size // len(settings))
        return [ProfileStore(StorageAccount.from_settings(self.env, name).table_service().get_table_client(table),
                             cache_size=cache_size, pseudonyms=self.pseudonyms) for name in settings]

    @cached_property
    def profiles(self) -> ProfileStore | ProfileAccountRouter:
        """The profiles for the scoring service, the dashboard and the backfill: the router over
        ``profile_stores`` (by a stable hash of the customer's pseudonym), or the one store itself."""
        stores = self.profile_stores
        return stores[0] if len(stores) == 1 else ProfileAccountRouter(stores, pseudonyms=self.pseudonyms)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.table_service.get_table_client(self.config.audit_table), self.config.audit_shards)

    @cached_property
    def alerts(self) -> AlertQueue:
        return AlertQueue(self.queue_service, self.config.alert_queue)

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        return DeadLetterStore(self.blob_service, self.config.dead_letter_container)

    @cached_property
    def rules_source(self) -> RulesSource:
        return RulesSource(self.config.rules_inline, self.config.rules_blob, self.blob_service,
                           check=self.release_check)

    def policy_for(self, model: FraudModel) -> DecisionPolicy:
        overrides = self.config.threshold_overrides
        rules = self.rules_source.rules()
        cached = self._policies.get(model.version)
        if cached is None or cached.rules is not rules:
            cached = DecisionPolicy(Thresholds.resolve(model.thresholds, overrides), rules)
            self._policies[model.version] = cached
        return cached

    @cached_property
    def scoring(self) -> FraudScoringService:
        webhook_url = self.config.alert_webhook_url
        return FraudScoringService(
            profiles=self.profiles,
            audit=self.audit,
            alerts=self.alerts,
            dead_letters=self.dead_letters,
            model=self.serving_model,
            policy_for=self.policy_for,
            webhook=AlertWebhook(webhook_url, self.pseudonyms) if webhook_url else None,
            merchants=self.merchant_cache,
            default_currency=self.config.default_currency,
            max_amount=self.config.max_amount,
            outlets=self.decision_outlets,
        )

    @cached_property
    def decision_outlets(self) -> list:
        """Where each batch's decisions go besides the audit log (``DecisionOutletPort``)."""
        return [self.monitoring_aggregator, *self.lingering_outlets]

    @cached_property
    def lingering_outlets(self) -> list[LingeringOutlet]:
        """The Blob-append outlets: a small call's lines wait up to FRAUD_ARCHIVE_LINGER_MS to
        share an append with the next calls' (``LingeringOutlet``), and ride out a Blob outage
        in memory (``BufferedOutlet``)."""
        linger = self.config.archive_linger_ms / 1000
        return [LingeringOutlet(BufferedOutlet(self.training_sample, "training sample"), "training sample", linger),
                LingeringOutlet(BufferedOutlet(self.archive_outlet, "decision archive"), "decision archive", linger)]

    def flush_outlets(self) -> int:
        """Write the lines small calls left waiting (tests, the bench, a run's end)."""
        return sum(outlet.flush() for outlet in self.lingering_outlets)

    @cached_property
    def aggregate_table(self) -> MonitoringAggregateTable:
        return MonitoringAggregateTable(self.table_service.get_table_client(self.config.aggregate_table))

    @cached_property
    def monitoring_aggregator(self) -> MonitoringAggregator:
        """This process's hourly monitoring aggregates (written every FRAUD_MONITOR_FLUSH_SECONDS)."""
        return MonitoringAggregator(self.aggregate_table, reference_lookup(self.manifest_of),
                                    flush_seconds=self.config.monitor_flush_seconds)

    def manifest_of(self, version: str) -> dict | None:
        """A model version's manifest: the loaded champion's or shadow's, else the registry's."""
        for model in (self.serving_model.loaded, self.serving_model.shadow() if self.serving_model.loaded else None):
            if model is not None and model.version == version:
                return model.manifest
        return self.registry.manifest(version)

    @cached_property
    def training_sample_store(self) -> TrainingSampleBlobs:
        """The training sample's hourly blobs: this process's appends, and the retrain's reads."""
        return TrainingSampleBlobs(self.blob_service, self.config.training_sample_container)

    @cached_property
    def training_sample(self) -> TrainingSampleOutlet:
        """Writes the training sample: sampled decisions per batch, labelled frauds and verdicts per label join."""
        return TrainingSampleOutlet(self.training_sample_store, self.config.training_sample_rate, audit=self.audit)

    @cached_property
    def archive_staging(self) -> DecisionStagingBlobs:
        return DecisionStagingBlobs(self.blob_service, self.config.archive_staging_container)

    @cached_property
    def decision_archive(self) -> DecisionArchiveBlobs:
        return DecisionArchiveBlobs(self.blob_service, self.config.archive_container)

    @cached_property
    def archive_outlet(self) -> DecisionArchiveOutlet:
        """This process's staging writer: its decisions, appended to its own hourly append blobs."""
        return DecisionArchiveOutlet(self.archive_staging)

    @cached_property
    def archive_compaction(self) -> DecisionArchiveCompaction:
        """The archive timer's service: finished hours' staging lines into Parquet."""
        return DecisionArchiveCompaction(self.archive_staging, self.decision_archive,
                                         grace=timedelta(minutes=self.config.archive_grace_minutes))

    @cached_property
    def label_store(self) -> LabelStore:
        return LabelStore(self.table_service.get_table_client(self.config.label_table))

    @cached_property
    def label_files(self) -> LabelFileContainer:
        return LabelFileContainer(self.blob_service, self.config.labels_container)

    @cached_property
    def monitoring_blobs(self) -> MonitoringBlobs:
        return MonitoringBlobs(self.blob_service, self.config.monitoring_container, self.config.retrain_container)

    def serving_manifest(self) -> dict | None:
        """The manifest of the model serving now (or the registry's current one)."""
        model = self.serving_model.loaded
        return model.manifest if model is not None else self._pointed_manifest(self.registry.current())

    def shadow_manifest(self) -> dict | None:
        """The manifest of the shadow challenger scored beside it now (None: no shadow); before this
        process has loaded a model, the registry's shadow pointer's (unless it names the champion)."""
        if self.serving_model.loaded is not None:
            shadow = self.serving_model.shadow()
            return shadow.manifest if shadow is not None else None
        pointer = self.registry.shadow()
        return None if pointer.version == self.registry.current().version else self._pointed_manifest(pointer)

    def _pointed_manifest(self, pointer: CurrentPointer) -> dict | None:
        return self.registry.manifest(pointer.version) if pointer.version else None

    @cached_property
    def monitoring(self) -> MonitoringService:
        config = MonitoringConfig(
            window_hours=self.config.monitor_window_hours,
            psi_warn=self.config.psi_warn,
            psi_alert=self.config.psi_alert,
            retrain_cooldown_hours=self.config.retrain_cooldown_hours,
            min_labelled_fraud=self.config.retrain_min_labelled_fraud,
            min_recall=self.config.retrain_min_recall,
            label_delay_days=self.config.label_delay_days,
            label_maturity_days=self.config.label_maturity_days,
            min_expected_per_bin=self.config.drift_min_bin_rows,
        )
        return MonitoringService(self.audit, self.label_store, self.label_files, self.monitoring_blobs,
                                 self.serving_manifest, aggregates=self.aggregate_table, merchants=self.merchant_store,
                                 shadow_manifest=self.shadow_manifest, gate=self.promotion_gate, config=config,
                                 training_sample=self.training_sample)

    @cached_property
    def promotion_gate(self) -> PromotionGate:
        """The champion/challenger policy: the retrain's gate, and the one to judge shadow evidence with."""
        return PromotionGate(min_ap_gain=self.config.promotion_min_ap_gain,
                             max_alert_ratio=self.config.promotion_max_alert_ratio,
                             max_alerts_per_day=self.config.promotion_max_alerts_per_day,
                             max_ece_increase=self.config.promotion_max_ece_increase,
                             k=self.config.promotion_top_k)

    @cached_property
    def merchant_store(self) -> MerchantRiskStore:
        return MerchantRiskStore(self.table_service.get_table_client(self.config.merchant_table))

    @cached_property
    def merchant_cache(self) -> MerchantRiskCache:
        return MerchantRiskCache(self.merchant_store, self.config.merchant_cache_seconds)

    @cached_property
    def dashboard(self) -> DashboardViews:
        return DashboardViews(self.audit, self.label_store, self.profiles, self.registry, self.serving_model,
                              self.monitoring_blobs, psi_warn=self.config.psi_warn, psi_alert=self.config.psi_alert,
                              window_hours=self.config.monitor_window_hours,
                              cursor_key=cursor_key(self.pseudonym_key))

    @cached_property
    def retention_policy(self) -> RetentionPolicy:
        """Days each store keeps its data; raises ``RetentionTooShort`` for a setting below its floor."""
        return RetentionPolicy(audit_days=self.config.audit_retention_days,
                               dead_letter_days=self.config.dead_letter_retention_days,
                               label_days=self.config.label_retention_days,
                               profile_inactive_days=self.config.profile_inactive_days)

    @cached_property
    def retention(self) -> RetentionService:
        """The retention timer's service over every store that keeps data for a limited time."""
        return RetentionService(
            self.retention_policy, audit=self.audit, labels=self.label_store, dead_letters=self.dead_letters,
            profile_stores=self.profile_stores,  # every profile account
            aggregates=self.aggregate_table,
        )

    def ensure_resources(self) -> None:
        """Create the tables, containers and queue if missing (idempotent; local runs and tests)."""
        for store in self.profile_stores:
            store.ensure_table()
        self.audit.ensure_table()
        self.alerts.ensure_queue()
        self.dead_letters.ensure_container()
        self.registry.ensure_container()
        self.label_store.ensure_table()
        self.merchant_store.ensure_table()
        self.aggregate_table.ensure_table()
        self.label_files.ensure_container()
        self.monitoring_blobs.ensure_containers()
        self.training_sample_store.ensure_container()
        self.archive_staging.ensure_container()
        self.decision_archive.ensure_container()


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
