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
EVENTHUB_CONNECTION = "EventHubConnection"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        STORAGE_CONNECTION,
        "UseDevelopmentStorage=true",
        "Storage account for the host and for the app's tables, blobs and queues. "
        "Locally a connection string (Azurite); in Azure identity-based.",
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
    Setting("FRAUD_RETRAIN_MIN_RECALL", "0.5", "Live recall at the review threshold below which retraining is asked for."),
    Setting("FRAUD_RETRAIN_MIN_LABELLED_FRAUD", "20", "Labelled fraud needed in the window before recall is judged."),
    Setting("FRAUD_RETRAIN_COOLDOWN_HOURS", "24", "At most one retrain request per this many hours."),
    Setting("FRAUD_MERCHANT_TABLE", "merchantrisk", "Table of per-merchant risk (hourly counts, known fraud), written by the timer."),
    Setting("FRAUD_MERCHANT_CACHE_SECONDS", "600", "How long a scoring process reuses a merchant's risk row."),
    Setting("FRAUD_LABEL_DELAY_DAYS", "7", "When a label has no labelled_at, it counts as known this long after the transaction."),
    Setting("FRAUD_TRAINING_CONTAINER", "training-data", "Blob container of base training data; a new CSV starts a retrain."),
    Setting("FRAUD_RETRAIN_MAX_ROWS", "300000", "Row cap of a retrain (all fraud kept, legitimate rows sampled)."),
    Setting("FRAUD_RETRAIN_LOOKBACK_DAYS", "30", "Labelled decisions from the audit log this far back join the training set."),
    Setting("FRAUD_PROMOTION_MIN_AP_GAIN", "0.005", "Average-precision gain a challenger needs over the champion to be promoted."),
    Setting("FRAUD_HTTP_MAX_BODY_BYTES", "65536", "Largest HTTP request body accepted (413 above)."),
    Setting("FRAUD_STORAGE_RETRIES", "5", "Retries of a storage call on transient errors (exponential backoff)."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


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
