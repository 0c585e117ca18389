"""The app's storage on Azurite's three emulated accounts: the host's (devstoreaccount1), the
data account (devstoreaccount2, FRAUD_DATA_STORAGE) and a second profile account
(devstoreaccount3). Profiles are spread over the data account and the second one
(FRAUD_PROFILE_ACCOUNTS=FRAUD_DATA_STORAGE,FRAUD_PROFILES_2)."""
import os

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from conftest import make_artifact
from contracts import ProfileContract
from fraud_events import audit_rows, event_hub_batch, transaction
from functions.score_stream import score_stream
from shared.adapters.profile_accounts import account_of
from shared.adapters.storage_account import AZURITE_ACCOUNT, AZURITE_EXTRA_ACCOUNTS
from shared.composition import AppServices, reset_app_services

HOST = AZURITE_ACCOUNT
DATA, PROFILES_2 = AZURITE_EXTRA_ACCOUNTS


@pytest.fixture
def spread_env(app_env, azurite, monkeypatch):
    """Settings as in Azure at 10,000 tx/s, in miniature: data apart from the host, profiles over two accounts."""
    monkeypatch.setenv("FRAUD_DATA_STORAGE", azurite.connection_string_for(DATA))
    monkeypatch.setenv("FRAUD_PROFILES_2", azurite.connection_string_for(PROFILES_2))
    monkeypatch.setenv("FRAUD_PROFILE_ACCOUNTS", "FRAUD_DATA_STORAGE,FRAUD_PROFILES_2")
    reset_app_services()
    return app_env


@pytest.fixture
def services(spread_env) -> AppServices:
    services = AppServices(dict(os.environ))
    services.ensure_resources()
    return services


def tables_in(azurite, account: str) -> set[str]:
    client = TableServiceClient.from_connection_string(azurite.connection_string_for(account))
    return {t.name for t in client.list_tables()}


def containers_in(azurite, account: str) -> set[str]:
    client = BlobServiceClient.from_connection_string(azurite.connection_string_for(account))
    return {c.name for c in client.list_containers()}


def queues_in(azurite, account: str) -> set[str]:
    client = QueueServiceClient.from_connection_string(azurite.connection_string_for(account))
    return {q.name for q in client.list_queues()}


def partitions_in(azurite, account: str, table: str) -> set[str]:
    client = TableServiceClient.from_connection_string(azurite.connection_string_for(account)).get_table_client(table)
    return {e["PartitionKey"] for e in client.list_entities(select=["PartitionKey"])}


def test_azurite_serves_the_well_known_account_beside_the_extra_ones(azurite):
    """AZURITE_ACCOUNTS replaces the default account unless it is listed: tools/azurite.py lists it."""
    for account in (HOST, DATA, PROFILES_2):
        TableServiceClient.from_connection_string(azurite.connection_string_for(account)).create_table(f"probe{account[-1]}")
        assert f"probe{account[-1]}" in tables_in(azurite, account)


def test_every_table_container_and_queue_is_in_the_data_account_none_in_the_hosts(services, azurite):
    config = services.config
    tables = {config.profile_table, config.audit_table, config.label_table, config.merchant_table}
    containers = {config.dead_letter_container, config.model_container, config.labels_container,
                  config.monitoring_container, config.retrain_container}
    assert tables <= tables_in(azurite, DATA)
    assert containers <= containers_in(azurite, DATA)
    assert config.alert_queue in queues_in(azurite, DATA)
    assert not (tables & tables_in(azurite, HOST) or containers & containers_in(azurite, HOST)
                or config.alert_queue in queues_in(azurite, HOST))
    # the second profile account holds the profile table and nothing else of the app
    assert tables & tables_in(azurite, PROFILES_2) == {config.profile_table}


def test_a_scored_batch_goes_to_the_data_account_and_each_profile_to_its_own_account(services, azurite):
    from training.pipeline import publish_current

    publish_current(services.registry, make_artifact("accounts-v1"), services.release_signer)
    customers = [f"C{k}" for k in range(24)]
    bodies = [transaction(i, customer=customers[i % 24]) for i in range(48)]
    score_stream(event_hub_batch(bodies))

    assert sorted(r["transaction_id"] for r in audit_rows(services)) == sorted(b["transaction_id"] for b in bodies)
    table = services.config.profile_table
    held = {DATA: partitions_in(azurite, DATA, table), PROFILES_2: partitions_in(azurite, PROFILES_2, table)}
    assert held[DATA] and held[PROFILES_2] and not held[DATA] & held[PROFILES_2]
    pseudonym = services.pseudonyms.customer  # partitions are the customers' keyed pseudonyms
    assert held[DATA] | held[PROFILES_2] == {pseudonym(c) for c in customers}
    assert all(pseudonym(c) in held[(DATA, PROFILES_2)[account_of(pseudonym(c), 2)]] for c in customers)
    assert not {services.config.audit_table, table} & tables_in(azurite, HOST)

    # a new process (another instance, the dashboard) finds every customer where it was written
    reset_app_services()
    elsewhere = AppServices(dict(os.environ))
    assert all(elsewhere.profiles.load(c).profile.history_count == 2 for c in customers)


class TestProfilesOverTwoAccounts(ProfileContract):
    """The router over two real accounts keeps every promise of one profile table."""

    @pytest.fixture(params=["0", "100"], ids=["uncached", "cached"])
    def store(self, spread_env, monkeypatch, request):
        monkeypatch.setenv("FRAUD_PROFILE_CACHE_SIZE", request.param)
        services = AppServices(dict(os.environ))
        services.ensure_resources()
        assert len(services.profile_stores) == 2
        return services.profiles
