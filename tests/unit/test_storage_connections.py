"""Which account each store lives in, from settings alone (no network: clients are built, never called).

The host keeps ``AzureWebJobsStorage``; the app's data goes to ``FRAUD_DATA_STORAGE`` when it is
set in any of its forms; profiles go to the accounts ``FRAUD_PROFILE_ACCOUNTS`` names."""
import pytest

from shared.adapters.storage_account import (AZURITE_KEY, StorageAccount, azurite_connection_string,
                                             data_connection)
from fakes import TEST_PSEUDONYM_KEY
from shared.composition import AppServices
from shared.config import FraudConfig

HOST = azurite_connection_string(table=20002)
DATA = "DefaultEndpointsProtocol=https;AccountName=frauddata;AccountKey=" + AZURITE_KEY + ";EndpointSuffix=core.windows.net"


@pytest.mark.parametrize("env, expected", [
    ({"AzureWebJobsStorage": HOST}, "AzureWebJobsStorage"),
    ({"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE": ""}, "AzureWebJobsStorage"),
    ({"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE": "UseDevelopmentStorage=true"}, "FRAUD_DATA_STORAGE"),
    ({"FRAUD_DATA_STORAGE__tableServiceUri": "https://frauddata.table.core.windows.net"}, "FRAUD_DATA_STORAGE"),
    ({"FRAUD_DATA_STORAGE__accountName": "frauddata"}, "FRAUD_DATA_STORAGE"),
    # how to authenticate does not say which account: still the host's
    ({"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE__credential": "managedidentity"}, "AzureWebJobsStorage"),
])
def test_the_data_account_is_fraud_data_storage_in_any_form_else_the_hosts(env, expected):
    assert data_connection(env) == expected


def test_one_service_uri_is_enough_the_others_follow_from_the_account_name():
    account = StorageAccount.for_data({"FRAUD_DATA_STORAGE__blobServiceUri": "https://frauddata.blob.core.chinacloudapi.cn",
                                       "FRAUD_DATA_STORAGE__credential": "managedidentity",
                                       "FRAUD_DATA_STORAGE__clientId": "11111111-2222-3333-4444-555555555555"})
    assert (account.blob_uri, account.queue_uri, account.table_uri) == (
        "https://frauddata.blob.core.chinacloudapi.cn", "https://frauddata.queue.core.chinacloudapi.cn",
        "https://frauddata.table.core.chinacloudapi.cn")
    assert account.client_id == "11111111-2222-3333-4444-555555555555" and account.connection_string is None


def test_an_endpoint_that_does_not_name_the_account_needs_each_service_uri():
    account = StorageAccount.from_settings({"P__tableServiceUri": "https://tables.bank.example"}, "P")
    assert account.table_service().url.startswith("https://tables.bank.example")
    with pytest.raises(RuntimeError, match="P__blobServiceUri"):
        account.blob_service()


def test_an_unset_connection_is_named_in_the_error():
    with pytest.raises(RuntimeError, match="FRAUD_PROFILES_2"):
        StorageAccount.from_settings({}, "FRAUD_PROFILES_2")


def test_an_account_key_is_not_in_the_repr():
    assert AZURITE_KEY not in repr(StorageAccount.from_settings({"X": DATA}, "X"))


def test_every_store_is_built_on_the_data_account_not_the_hosts():
    services = AppServices({"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE": DATA, "FRAUD_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY})
    assert services.table_service.account_name == "frauddata"
    assert services.blob_service.account_name == "frauddata"
    assert services.queue_service.account_name == "frauddata"
    assert services.profiles._table.account_name == "frauddata"


def test_profile_accounts_are_the_listed_settings_in_order_with_the_cache_split():
    env = {"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE": DATA, "FRAUD_PROFILE_CACHE_SIZE": "1001",
           "FRAUD_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
           "FRAUD_PROFILE_ACCOUNTS": " FRAUD_DATA_STORAGE, FRAUD_PROFILES_2 ,",
           "FRAUD_PROFILES_2__tableServiceUri": "https://fraudprofiles2.table.core.windows.net"}
    services = AppServices(env)
    stores = services.profile_stores
    assert [s._table.account_name for s in stores] == ["frauddata", "fraudprofiles2"]
    assert {s._table.table_name for s in stores} == {services.config.profile_table}
    assert [s.cache.capacity for s in stores] == [501, 501]
    assert services.profiles.stores == stores  # the router the scoring service gets


def test_without_profile_accounts_the_profiles_are_the_data_accounts_one_store():
    services = AppServices({"FRAUD_DATA_STORAGE": DATA, "FRAUD_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY})
    (store,) = services.profile_stores
    assert services.profiles is store and store._table.account_name == "frauddata"


def test_a_profile_account_listed_twice_fails_at_startup():
    with pytest.raises(ValueError, match="twice"):
        FraudConfig.from_env({"FRAUD_PROFILE_ACCOUNTS": "A,B,A"})


@pytest.mark.parametrize("env, expected", [
    ({"AzureWebJobsStorage": HOST}, "AzureWebJobsStorage"),
    ({"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE": DATA}, "FRAUD_DATA_STORAGE"),
    ({"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE": DATA, "FRAUD_MODEL_STORAGE": ""}, "FRAUD_DATA_STORAGE"),
    ({"FRAUD_DATA_STORAGE": DATA, "FRAUD_MODEL_STORAGE__blobServiceUri": "https://frauddata.blob.core.windows.net",
      "FRAUD_MODEL_STORAGE__clientId": "release-identity"}, "FRAUD_MODEL_STORAGE"),
])
def test_the_model_registry_is_written_through_fraud_model_storage_else_the_data_account(env, expected):
    from shared.adapters.storage_account import model_connection

    assert model_connection(env) == expected


def test_the_retrain_writes_the_registry_as_the_release_identity_while_scoring_reads_it_as_its_own():
    services = AppServices({"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE": DATA,
                            "FRAUD_MODEL_STORAGE__blobServiceUri": "https://frauddata.blob.core.windows.net",
                            "FRAUD_MODEL_STORAGE__credential": "managedidentity",
                            "FRAUD_MODEL_STORAGE__clientId": "release-identity"})
    assert services.release_registry is not services.registry
    assert services.release_registry._container.url == "https://frauddata.blob.core.windows.net/models"
    assert services.registry._container.account_name == "frauddata"
    assert services.serving_model.source is services.registry  # scoring never uses the release identity
    alone = AppServices({"AzureWebJobsStorage": HOST, "FRAUD_DATA_STORAGE": DATA})
    assert alone.release_registry is alone.registry
