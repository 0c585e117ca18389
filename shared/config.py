"""Every app setting the code reads, in one place.

``SETTINGS`` is the registry: the README's settings table, ``local.settings.example.json``
and the Bicep template are all checked against it by tests, so a setting cannot be read
by the code without being documented and deployed.

Connection settings (``kind="connection"``) follow the Functions convention: locally a
connection string under the plain name; in Azure the identity-based form
``<NAME>__<property>`` (service URIs or ``fullyQualifiedNamespace``, ``credential``,
``clientId``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    description: str
    kind: str = "plain"  # "plain" | "connection"
    identity_properties: tuple[str, ...] = ()


STORAGE_CONNECTION = "AzureWebJobsStorage"
DATA_CONNECTION = "FRAUD_DATA_STORAGE"
EVENTHUB_CONNECTION = "EventHubConnection"
MODEL_CONNECTION = "FRAUD_MODEL_STORAGE"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        STORAGE_CONNECTION,
        "UseDevelopmentStorage=true",
        "Storage account of the Functions host (Event Hubs checkpoints, leases, the deployment package); "
        "also of the app's data when FRAUD_DATA_STORAGE is empty. Locally a connection string (Azurite); "
        "in Azure identity-based.",
        kind="connection",
        identity_properties=("blobServiceUri", "queueServiceUri", "tableServiceUri", "credential", "clientId"),
    ),
    Setting(
        EVENTHUB_CONNECTION,
        "",
        "Event Hubs namespace the scoring function reads from. A connection string locally; "
        "in Azure identity-based.",
        kind="connection",
        identity_properties=("fullyQualifiedNamespace", "credential", "clientId"),
    ),
    Setting("EVENTHUB_NAME", "transactions", "Event hub carrying the bank's transactions."),
    Setting("EVENTHUB_CONSUMER_GROUP", "fraud-scoring", "Consumer group of the scoring function."),
    Setting("FRAUD_DEFAULT_CURRENCY", "NGN", "ISO 4217 currency assumed when a transaction has none."),
    Setting("FRAUD_MAX_AMOUNT", "1000000000", "Largest transaction amount accepted; larger is a validation error."),
    Setting("FRAUD_MODEL_CONTAINER", "models", "Blob container of the model registry."),
    Setting(
        "FRAUD_MODEL_REFRESH_SECONDS",
        "60",
        "How often a scoring process checks the registry's current pointer for a new model.",
    ),
    Setting("FRAUD_HIGH_THRESHOLD", "", "Override of the manifest's High threshold (score above it: block)."),
    Setting("FRAUD_MEDIUM_THRESHOLD", "", "Override of the manifest's Medium threshold (score above it: review)."),
    Setting("FRAUD_ALERT_THRESHOLD", "", "Override of the manifest's is_fraud threshold."),
    Setting("FRAUD_RULES", "", "Decision rules as JSON (block-lists, amount ceilings per channel)."),
    Setting("FRAUD_RULES_BLOB", "", "Decision rules as a blob, 'container/name'; used when FRAUD_RULES is empty."),
    Setting("FRAUD_PROFILE_TABLE", "profiles", "Table of customer profiles and their scored transactions."),
    Setting(
        "FRAUD_PROFILE_CACHE_SIZE",
        "20000",
        "Customer profiles kept in memory per process (ETag-checked at commit; 0 disables).",
    ),
    Setting("FRAUD_AUDIT_TABLE", "scores", "Audit log table of every decision."),
    Setting("FRAUD_AUDIT_SHARDS", "8", "Shards per hour of the audit log's partitions."),
    Setting("FRAUD_ALERT_QUEUE", "fraud-alerts", "Storage queue receiving High decisions."),
    Setting("FRAUD_ALERT_WEBHOOK_URL", "", "Optional Teams-style webhook that High decisions are also posted to."),
    Setting("FRAUD_DEAD_LETTER_CONTAINER", "dead-letter", "Blob container of events that could not be scored."),
    Setting("FRAUD_LABEL_TABLE", "labels", "Table of received labels, label files read, compromised customers."),
    Setting("FRAUD_LABELS_CONTAINER", "labels", "Blob container where label files (CSV / JSON lines) arrive."),
    Setting("FRAUD_MONITORING_CONTAINER", "monitoring", "Blob container of monitoring reports (latest.json)."),
    Setting("FRAUD_RETRAIN_CONTAINER", "retrain-requests", "Blob container of retrain requests (the retraining trigger)."),
    Setting("FRAUD_MONITOR_SCHEDULE", "0 */15 * * * *", "NCRONTAB schedule (UTC) of the monitoring timer."),
    Setting("FRAUD_MONITOR_WINDOW_HOURS", "24", "Recent window of logged decisions that drift and performance use."),
    Setting("FRAUD_PSI_WARN", "0.1", "Population stability index at which a feature is flagged 'warn'."),
    Setting("FRAUD_PSI_ALERT", "0.2", "PSI at which a feature is flagged 'alert' (asks for retraining)."),
    Setting("FRAUD_DRIFT_MIN_BIN_ROWS", "20", "Rows a drift bin must expect; sparser adjacent bins are merged."),
    Setting("FRAUD_RETRAIN_MIN_RECALL", "0.5", "Live recall at the review threshold below which retraining is asked for."),
    Setting("FRAUD_RETRAIN_MIN_LABELLED_FRAUD", "20", "Labelled fraud needed in the window before recall is judged."),
    Setting("FRAUD_RETRAIN_COOLDOWN_HOURS", "24", "At most one retrain request (by the monitor) and one retrain start "
            "(by a training-data or retrain-requests blob; later triggers are recorded and skipped) per this many hours."),
    Setting("FRAUD_MERCHANT_TABLE", "merchantrisk", "Table of per-merchant risk (hourly counts, known fraud), written by the timer."),
    Setting("FRAUD_MERCHANT_CACHE_SECONDS", "600", "How long a scoring process reuses a merchant's risk row."),
    Setting("FRAUD_LABEL_DELAY_DAYS", "7", "When a label has no labelled_at, it counts as known this long after the transaction."),
    Setting("FRAUD_LABEL_MATURITY_DAYS", "", "Days after which an unlabelled decision counts as legitimate (matured "
            "performance, the retrain's training set and gate); empty: FRAUD_LABEL_DELAY_DAYS."),
    Setting("FRAUD_TRAINING_CONTAINER", "training-data", "Blob container of base training data; a new CSV starts a retrain."),
    Setting("FRAUD_RETRAIN_MAX_ROWS", "300000", "Row cap of a retrain: the training sample's reader keeps at most this "
            "many rows (a hash threshold tightens, legitimate rows first; weights undo it), and the training rows "
            "after the split are capped to it too."),
    Setting("FRAUD_RETRAIN_LOOKBACK_DAYS", "30", "Decisions of the training sample this far back join a retrain's rows once "
            "matured (labelled, or unlabelled as legitimate)."),
    Setting("FRAUD_RETRAIN_SEARCH_CANDIDATES", "3", "Hyperparameter candidates a retrain tries (early-stopped, time-ordered)."),
    Setting("FRAUD_PROMOTION_MIN_AP_GAIN", "0.005", "Average-precision gain a challenger needs over the champion to be promoted."),
    Setting("FRAUD_PROMOTION_MAX_ALERT_RATIO", "1.25", "Review alerts per day a challenger may send on the holdout, as a "
            "multiple of the champion's (each at its own threshold), when no capacity is set; empty: no relative budget."),
    Setting("FRAUD_PROMOTION_MAX_ALERTS_PER_DAY", "", "The analysts' capacity: review alerts per day a challenger may "
            "send on the holdout; when set it is the budget instead of the ratio to the champion."),
    Setting("FRAUD_PROMOTION_MAX_ECE_INCREASE", "0.01", "How much higher than the champion's a challenger's expected "
            "calibration error (ECE, 10 bins) may be on the holdout."),
    Setting("FRAUD_PROMOTION_TOP_K", "20", "Customers a day in card precision@k, the analysts' queue metric of a "
            "retrain's evaluation and of the promotion gate."),
    Setting("FRAUD_HTTP_MAX_BODY_BYTES", "65536", "Largest HTTP request body accepted (413 above)."),
    Setting("FRAUD_STORAGE_RETRIES", "5", "Retries of a storage call on transient errors (exponential backoff)."),
    Setting("FRAUD_STORAGE_TRANSPORT", "lean", "HTTP transport under the storage SDKs: 'lean' (http.client keep-alive "
            "connections, shared/adapters/http_transport.py) or 'requests' (azure-core's RequestsTransport). "
            "A proxy variable in the environment (http_proxy, https_proxy, all_proxy) means 'requests'."),
    # -- the loop at bank volume (#15)
    Setting(
        DATA_CONNECTION,
        "",
        "Storage account of the app's data (every table, container and queue the app uses, and the "
        "containers the blob-triggered retrain watches), separate from the host's AzureWebJobsStorage. "
        "Locally a connection string; in Azure identity-based. Empty: the app's own clients use "
        "AzureWebJobsStorage, but the Functions host needs it set for the retrain's blob triggers.",
        kind="connection",
        identity_properties=("blobServiceUri", "queueServiceUri", "tableServiceUri", "credential", "clientId"),
    ),
    Setting("FRAUD_PROFILE_ACCOUNTS", "", "Names of connection settings (comma-separated, each in the connection "
            "form of FRAUD_DATA_STORAGE) of the storage accounts customer profiles are spread over by a stable "
            "hash of the customer id; the data account holds profiles only if its own setting is listed. Empty: "
            "profiles live in the data account. Changing the list moves most customers to another account."),
    Setting("FRAUD_AGGREGATE_TABLE", "monitoraggregates", "Table of the scoring processes' hourly monitoring aggregates (one row per process and flush)."),
    Setting("FRAUD_MONITOR_FLUSH_SECONDS", "60", "How often a scoring process writes its monitoring aggregates."),
    Setting("FRAUD_ARCHIVE_LINGER_MS", "1000", "How long (ms) a small scoring call's (an HTTP request's) archive and "
            "training-sample lines may wait to share one Blob append with the next calls' (0: appended with the "
            "call). A process that dies loses at most this much of its small calls' lines; the audit log keeps them."),
    Setting("FRAUD_ARCHIVE_CONTAINER", "decision-archive", "Blob container of the open decision archive (Parquet, decisions/date=YYYY-MM-DD/hour=HH/); immutable in Azure."),
    Setting("FRAUD_ARCHIVE_STAGING_CONTAINER", "decision-staging", "Blob container of the scoring processes' hourly append blobs of decisions, compacted into the archive."),
    Setting("FRAUD_ARCHIVE_SCHEDULE", "0 10 * * * *", "NCRONTAB schedule (UTC) of the timer that compacts finished hours into the archive."),
    Setting("FRAUD_ARCHIVE_GRACE_MINUTES", "10", "Minutes after an hour ends before the archive timer compacts it."),
    Setting("FRAUD_TRAINING_SAMPLE_CONTAINER", "training-sample", "Blob container of the training sample (hourly blobs of sampled decisions and labelled frauds)."),
    Setting("FRAUD_TRAINING_SAMPLE_RATE", "0.0001", "Share of decisions kept in the training sample (by a hash of the transaction "
            "id); every labelled fraud is kept. 0.0001: 30 days at 1,000 tx/s leave 259,200 sampled rows, within "
            "FRAUD_RETRAIN_MAX_ROWS."),
    Setting("FRAUD_AUDIT_RETENTION_DAYS", "180", "Days per-decision audit rows and their id index are kept (the archive keeps every decision)."),
    Setting("FRAUD_DEAD_LETTER_RETENTION_DAYS", "30", "Days dead-lettered events are kept."),
    Setting("FRAUD_LABEL_RETENTION_DAYS", "400", "Days received labels are kept."),
    Setting("FRAUD_PROFILE_INACTIVE_DAYS", "90", "Days without a transaction after which a customer's profile is removed; also the age at which applied-transaction rows go."),
    Setting("FRAUD_RETENTION_SCHEDULE", "0 40 * * * *", "NCRONTAB schedule (UTC) of the retention timer (hourly: each run deletes about an hour's worth)."),
    # -- a bank's security review (#16)
    Setting("FRAUD_ANALYST_AUTH", "entra", "How analysts are identified on the dashboard and POST /api/labels: 'entra' "
            "(App Service Authentication with Microsoft Entra ID: the platform's X-MS-CLIENT-PRINCIPAL header, trusted "
            "only when the platform reports authentication on) or 'development' (the local host injects a documented "
            "development principal; never deployed)."),
    Setting("FRAUD_RELEASE_KEY", "", "The release key that signs models and rules: in Azure a Key Vault key identifier "
            "(https://<vault>.vault.azure.net/keys/<name>); locally the path of a PEM EC P-256 private key file. Scoring "
            "verifies with its public half and refuses an unsigned or wrongly signed release."),
    Setting("FRAUD_AUTO_PROMOTE", "false", "'true': a retrain whose challenger passes the gate signs and promotes it; "
            "otherwise it stops at 'candidate' and a person with Fraud.Admin approves it (python -m tools.models approve)."),
    Setting("FRAUD_TRAINING_MAX_AGE_DAYS", "730", "Training rows dated more than this many days before a retrain (or after it) are refused."),
    Setting(
        MODEL_CONNECTION,
        "",
        "Storage the retraining function writes model candidates with: the release identity, the only one that may write "
        "to the model container. Same forms as FRAUD_DATA_STORAGE; empty: FRAUD_DATA_STORAGE.",
        kind="connection",
        identity_properties=("blobServiceUri", "credential", "clientId"),
    ),
    Setting("FRAUD_PSEUDONYM_KEY", "", "Key of the keyed pseudonyms (HMAC-SHA-256) of customer and device ids in profiles "
            "and in everything sent out of the bank: in Azure a Key Vault reference; locally 'file:<path>' of a key file."),
)

_BY_NAME = {s.name: s for s in SETTINGS}
ANALYST_AUTH_MODES = ("entra", "development")
STORAGE_TRANSPORTS = ("lean", "requests")


def _flag(name: str, value: str) -> bool:
    """'true'/'false' (any case); anything else fails at startup."""
    normalised = value.strip().lower()
    if normalised not in ("true", "false"):
        raise ValueError(f"{name} must be 'true' or 'false', not {value!r}")
    return normalised == "true"


def setting(name: str, env: Mapping[str, str] | None = None) -> str:
    """The value of a registered setting, or its default when unset or empty."""
    spec = _BY_NAME[name]  # KeyError: reading an unregistered setting is a bug
    value = (os.environ if env is None else env).get(name, "")
    return value if value != "" else spec.default


def setting_int(name: str, env: Mapping[str, str] | None = None) -> int:
    return int(setting(name, env))


def setting_float(name: str, env: Mapping[str, str] | None = None) -> float | None:
    value = setting(name, env)
    return float(value) if value != "" else None


def storage_transport(env: Mapping[str, str] | None = None) -> str:
    """FRAUD_STORAGE_TRANSPORT, checked: 'lean' or 'requests' (any case); anything else fails at startup."""
    value = setting("FRAUD_STORAGE_TRANSPORT", env)
    normalised = value.strip().lower()
    if normalised not in STORAGE_TRANSPORTS:
        raise ValueError(f"FRAUD_STORAGE_TRANSPORT must be one of {', '.join(STORAGE_TRANSPORTS)}, not {value!r}")
    return normalised


def _first_set(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass(frozen=True)
class FraudConfig:
    """The app's settings, read once per process (``FraudConfig.from_env``) and typed.

    The composition root builds services from this; nothing else reads the environment.
    The storage connections (``AzureWebJobsStorage``, ``FRAUD_DATA_STORAGE`` and those that
    ``FRAUD_PROFILE_ACCOUNTS`` names) are read by ``StorageAccount.from_settings`` (they have
    several forms).
    """

    default_currency: str
    max_amount: float
    http_max_body_bytes: int
    storage_retries: int
    model_container: str
    model_refresh_seconds: float
    high_threshold: float | None
    medium_threshold: float | None
    alert_threshold: float | None
    rules_inline: str
    rules_blob: str
    profile_table: str
    profile_cache_size: int
    audit_table: str
    audit_shards: int
    alert_queue: str
    alert_webhook_url: str
    dead_letter_container: str
    label_table: str
    labels_container: str
    monitoring_container: str
    retrain_container: str
    merchant_table: str
    merchant_cache_seconds: float
    monitor_window_hours: float
    psi_warn: float
    psi_alert: float
    drift_min_bin_rows: float
    retrain_min_recall: float
    retrain_min_labelled_fraud: int
    retrain_cooldown_hours: float
    label_delay_days: float
    label_maturity_days: float
    training_container: str
    retrain_max_rows: int
    retrain_lookback_days: float
    retrain_search_candidates: int
    promotion_min_ap_gain: float
    promotion_max_alert_ratio: float | None
    promotion_max_alerts_per_day: float | None
    promotion_max_ece_increase: float
    promotion_top_k: int
    profile_accounts: str
    aggregate_table: str
    monitor_flush_seconds: float
    archive_linger_ms: float
    archive_container: str
    archive_staging_container: str
    archive_grace_minutes: float
    training_sample_container: str
    training_sample_rate: float
    audit_retention_days: float
    dead_letter_retention_days: float
    label_retention_days: float
    profile_inactive_days: float
    analyst_auth: str = "entra"
    release_key: str = ""
    auto_promote: bool = False
    training_max_age_days: float = 730.0
    pseudonym_key: str = ""
    storage_transport: str = "lean"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "FraudConfig":
        env = os.environ if env is None else env

        def text(name: str) -> str:
            return setting(name, env)

        def number(name: str) -> float:
            return float(setting(name, env))

        return cls(
            default_currency=text("FRAUD_DEFAULT_CURRENCY"),
            max_amount=number("FRAUD_MAX_AMOUNT"),
            http_max_body_bytes=setting_int("FRAUD_HTTP_MAX_BODY_BYTES", env),
            storage_retries=setting_int("FRAUD_STORAGE_RETRIES", env),
            model_container=text("FRAUD_MODEL_CONTAINER"),
            model_refresh_seconds=number("FRAUD_MODEL_REFRESH_SECONDS"),
            high_threshold=setting_float("FRAUD_HIGH_THRESHOLD", env),
            medium_threshold=setting_float("FRAUD_MEDIUM_THRESHOLD", env),
            alert_threshold=setting_float("FRAUD_ALERT_THRESHOLD", env),
            rules_inline=text("FRAUD_RULES"),
            rules_blob=text("FRAUD_RULES_BLOB"),
            profile_table=text("FRAUD_PROFILE_TABLE"),
            profile_cache_size=setting_int("FRAUD_PROFILE_CACHE_SIZE", env),
            audit_table=text("FRAUD_AUDIT_TABLE"),
            audit_shards=setting_int("FRAUD_AUDIT_SHARDS", env),
            alert_queue=text("FRAUD_ALERT_QUEUE"),
            alert_webhook_url=text("FRAUD_ALERT_WEBHOOK_URL"),
            dead_letter_container=text("FRAUD_DEAD_LETTER_CONTAINER"),
            label_table=text("FRAUD_LABEL_TABLE"),
            labels_container=text("FRAUD_LABELS_CONTAINER"),
            monitoring_container=text("FRAUD_MONITORING_CONTAINER"),
            retrain_container=text("FRAUD_RETRAIN_CONTAINER"),
            merchant_table=text("FRAUD_MERCHANT_TABLE"),
            merchant_cache_seconds=number("FRAUD_MERCHANT_CACHE_SECONDS"),
            monitor_window_hours=number("FRAUD_MONITOR_WINDOW_HOURS"),
            psi_warn=number("FRAUD_PSI_WARN"),
            psi_alert=number("FRAUD_PSI_ALERT"),
            drift_min_bin_rows=number("FRAUD_DRIFT_MIN_BIN_ROWS"),
            retrain_min_recall=number("FRAUD_RETRAIN_MIN_RECALL"),
            retrain_min_labelled_fraud=setting_int("FRAUD_RETRAIN_MIN_LABELLED_FRAUD", env),
            retrain_cooldown_hours=number("FRAUD_RETRAIN_COOLDOWN_HOURS"),
            label_delay_days=number("FRAUD_LABEL_DELAY_DAYS"),
            label_maturity_days=_first_set(setting_float("FRAUD_LABEL_MATURITY_DAYS", env),
                                           number("FRAUD_LABEL_DELAY_DAYS")),
            training_container=text("FRAUD_TRAINING_CONTAINER"),
            retrain_max_rows=setting_int("FRAUD_RETRAIN_MAX_ROWS", env),
            retrain_lookback_days=number("FRAUD_RETRAIN_LOOKBACK_DAYS"),
            retrain_search_candidates=setting_int("FRAUD_RETRAIN_SEARCH_CANDIDATES", env),
            promotion_min_ap_gain=number("FRAUD_PROMOTION_MIN_AP_GAIN"),
            promotion_max_alert_ratio=setting_float("FRAUD_PROMOTION_MAX_ALERT_RATIO", env),
            promotion_max_alerts_per_day=setting_float("FRAUD_PROMOTION_MAX_ALERTS_PER_DAY", env),
            promotion_max_ece_increase=number("FRAUD_PROMOTION_MAX_ECE_INCREASE"),
            promotion_top_k=setting_int("FRAUD_PROMOTION_TOP_K", env),
            profile_accounts=text("FRAUD_PROFILE_ACCOUNTS"),
            aggregate_table=text("FRAUD_AGGREGATE_TABLE"),
            monitor_flush_seconds=number("FRAUD_MONITOR_FLUSH_SECONDS"),
            archive_linger_ms=number("FRAUD_ARCHIVE_LINGER_MS"),
            archive_container=text("FRAUD_ARCHIVE_CONTAINER"),
            archive_staging_container=text("FRAUD_ARCHIVE_STAGING_CONTAINER"),
            archive_grace_minutes=number("FRAUD_ARCHIVE_GRACE_MINUTES"),
            training_sample_container=text("FRAUD_TRAINING_SAMPLE_CONTAINER"),
            training_sample_rate=number("FRAUD_TRAINING_SAMPLE_RATE"),
            audit_retention_days=number("FRAUD_AUDIT_RETENTION_DAYS"),
            dead_letter_retention_days=number("FRAUD_DEAD_LETTER_RETENTION_DAYS"),
            label_retention_days=number("FRAUD_LABEL_RETENTION_DAYS"),
            profile_inactive_days=number("FRAUD_PROFILE_INACTIVE_DAYS"),
            analyst_auth=text("FRAUD_ANALYST_AUTH").strip().lower(),
            release_key=text("FRAUD_RELEASE_KEY"),
            auto_promote=_flag("FRAUD_AUTO_PROMOTE", text("FRAUD_AUTO_PROMOTE")),
            training_max_age_days=number("FRAUD_TRAINING_MAX_AGE_DAYS"),
            pseudonym_key=text("FRAUD_PSEUDONYM_KEY"),
            storage_transport=storage_transport(env),
        )

    def __post_init__(self) -> None:
        if self.analyst_auth not in ANALYST_AUTH_MODES:
            raise ValueError(f"FRAUD_ANALYST_AUTH must be one of {', '.join(ANALYST_AUTH_MODES)}, not {self.analyst_auth!r}")
        if self.storage_transport not in STORAGE_TRANSPORTS:
            raise ValueError(f"FRAUD_STORAGE_TRANSPORT must be one of {', '.join(STORAGE_TRANSPORTS)}, "
                             f"not {self.storage_transport!r}")
        self.profile_account_settings  # a malformed list fails at startup, not at the first profile read

    @property
    def profile_account_settings(self) -> tuple[str, ...]:
        """The connection settings named by FRAUD_PROFILE_ACCOUNTS, in order (the order is the
        routing: a customer's account is its hash modulo the list's length)."""
        names = tuple(name.strip() for name in self.profile_accounts.split(",") if name.strip())
        if len(set(names)) != len(names):
            raise ValueError(f"FRAUD_PROFILE_ACCOUNTS names a connection setting twice: {self.profile_accounts}")
        return names

    @property
    def threshold_overrides(self) -> dict[str, float | None]:
        return {"high": self.high_threshold, "medium": self.medium_threshold, "alert": self.alert_threshold}
