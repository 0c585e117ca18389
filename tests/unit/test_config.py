"""Settings are read once, typed, into FraudConfig; the composition root builds from it."""
import pytest

from shared.config import SETTINGS, FraudConfig


def test_defaults_come_from_the_settings_registry_and_are_typed():
    config = FraudConfig.from_env({})
    defaults = {s.name: s.default for s in SETTINGS}
    assert config.audit_table == defaults["FRAUD_AUDIT_TABLE"]
    assert config.audit_shards == int(defaults["FRAUD_AUDIT_SHARDS"]) and isinstance(config.audit_shards, int)
    assert config.max_amount == float(defaults["FRAUD_MAX_AMOUNT"])
    assert config.high_threshold is None and config.threshold_overrides == {"high": None, "medium": None, "alert": None}


def test_environment_values_override_defaults_and_empty_means_default():
    config = FraudConfig.from_env({"FRAUD_AUDIT_SHARDS": "16", "FRAUD_HIGH_THRESHOLD": "0.9", "FRAUD_PSI_ALERT": "",
                                   "FRAUD_HTTP_MAX_BODY_BYTES": "1024"})
    assert (config.audit_shards, config.high_threshold, config.http_max_body_bytes) == (16, 0.9, 1024)
    assert config.psi_alert == FraudConfig.from_env({}).psi_alert


def test_a_malformed_number_fails_at_startup_not_per_request():
    with pytest.raises(ValueError):
        FraudConfig.from_env({"FRAUD_AUDIT_SHARDS": "eight"})


def test_every_setting_the_app_itself_reads_is_read_into_the_config():
    """The host reads the schedules, the Event Hub binding and the connections; the
    storage account reads its connection; everything else is read here, once."""
    class Recording(dict):
        def __init__(self):
            super().__init__()
            self.asked = set()

        def get(self, key, default=None):
            self.asked.add(key)
            return super().get(key, default)

    env = Recording()
    FraudConfig.from_env(env)
    host_or_connection = {"AzureWebJobsStorage", "EventHubConnection", "EVENTHUB_NAME", "EVENTHUB_CONSUMER_GROUP",
                          "FRAUD_MONITOR_SCHEDULE", "FRAUD_ARCHIVE_SCHEDULE", "FRAUD_RETENTION_SCHEDULE",
                          "FRAUD_DATA_STORAGE", "FRAUD_MODEL_STORAGE"}
    assert {s.name for s in SETTINGS} - host_or_connection == env.asked


@pytest.mark.parametrize("env", [{"FRAUD_ANALYST_AUTH": "none"}, {"FRAUD_AUTO_PROMOTE": "yes"}])
def test_security_settings_refuse_values_they_do_not_know(env):
    with pytest.raises(ValueError):
        FraudConfig.from_env(env)


def test_security_settings_default_to_the_safe_side():
    config = FraudConfig.from_env({})
    assert (config.analyst_auth, config.auto_promote) == ("entra", False)
