"""The Azure adapters pass the ports' contract suite on Azurite (the in-memory fakes pass the
same suite in tests/unit/test_fake_contracts.py)."""
import pytest

from contracts import (AlertContract, AuditContract, DeadLetterContract, DecisionArchiveContract, DecisionStagingContract,
                       LabelStoreContract, MerchantRiskStoreContract, ModelRegistryContract, MonitoringAggregateContract,
                       ProfileContract)


class TestProfileTable(ProfileContract):
    @pytest.fixture(params=[0, 100], ids=["uncached", "cached"])
    def store(self, services, request):
        from shared.adapters.profile_table import ProfileStore

        return ProfileStore(services.table_service.get_table_client(services.config.profile_table), cache_size=request.param,
                            pseudonyms=services.pseudonyms)


class TestAuditTable(AuditContract):
    @pytest.fixture
    def store(self, services):
        return services.audit


class TestAlertQueue(AlertContract):
    @pytest.fixture
    def store(self, services):
        return services.alerts


class TestDeadLetterBlobs(DeadLetterContract):
    @pytest.fixture
    def store(self, services):
        return services.dead_letters


class TestModelRegistryBlobs(ModelRegistryContract):
    @pytest.fixture
    def store(self, services):
        return services.registry


class TestLabelTable(LabelStoreContract):
    @pytest.fixture
    def store(self, services):
        return services.label_store


class TestFakeMerchantRiskStore(MerchantRiskStoreContract):
    @pytest.fixture
    def store(self, services):
        return services.merchant_store


class TestAggregateTable(MonitoringAggregateContract):
    @pytest.fixture
    def store(self, services):
        return services.aggregate_table

# -- retention -----------------------------------------------------------------------------------
from contracts import (AuditRetentionContract, DeadLetterRetentionContract, HourlyRowsRetentionContract,  # noqa: E402
                       LabelRetentionContract, ProfileRetentionContract)


class TestAuditTableRetention(AuditRetentionContract):
    @pytest.fixture
    def store(self, services):
        return services.audit


class TestLabelTableRetention(LabelRetentionContract):
    @pytest.fixture
    def store(self, services):
        return services.label_store


class TestDeadLetterBlobsRetention(DeadLetterRetentionContract):
    @pytest.fixture
    def store(self, services):
        return services.dead_letters


class TestProfileTableRetention(ProfileRetentionContract):
    @pytest.fixture(params=[0, 100], ids=["uncached", "cached"])
    def store(self, services, request):
        from shared.adapters.profile_table import ProfileStore

        return ProfileStore(services.table_service.get_table_client(services.config.profile_table), cache_size=request.param,
                            pseudonyms=services.pseudonyms)


class TestAggregateTableRetention(HourlyRowsRetentionContract):
    @pytest.fixture
    def table(self, services):
        import uuid

        return services.table_service.create_table(f"aggregates{uuid.uuid4().hex[:8]}")

    @pytest.fixture
    def store(self, table):
        from shared.adapters.aggregate_table import MonitoringAggregateTable

        return MonitoringAggregateTable(table)

    @pytest.fixture
    def seed(self, table):
        return lambda partition, row: table.upsert_entity({"PartitionKey": partition, "RowKey": row, "flushes": 1})


class TestDecisionStagingBlobs(DecisionStagingContract):
    @pytest.fixture
    def store(self, services):
        return services.archive_staging


class TestDecisionArchiveBlobs(DecisionArchiveContract):
    @pytest.fixture
    def store(self, services):
        return services.decision_archive


# -- the profile cache across a refused commit (#17) ----------------------------------------------
def test_a_commit_refused_for_an_existing_transaction_row_keeps_the_cached_profile(services):
    """The profile's condition held (the 409 is a transaction row's, operation 1 on): the cached
    profile is still current, so the caller's re-read costs no request. A changed profile (412)
    evicts it."""
    from fraud_events import decision_record
    from shared.adapters.profile_table import ProfileStore
    from shared.service.ports import CommitConflict
    from contracts import NOW

    store = ProfileStore(services.table_service.get_table_client(services.config.profile_table), cache_size=10,
                         pseudonyms=services.pseudonyms)
    first = decision_record("K1", NOW, "Low", customer="C1")
    store.commit(store.load("C1"), [first])
    cached = store.load("C1")
    assert store.cache.get(store.partition_of("C1")) is not None and cached.recent == ("K1",)
    with pytest.raises(CommitConflict):
        store.commit(cached, [decision_record("K2", NOW, "Low", customer="C1"), first])  # K1 exists
    assert store.cache.get(store.partition_of("C1"))[1] == cached.etag  # kept: still current
    store.commit(store.load("C1"), [decision_record("K3", NOW, "Low", customer="C1")])
    with pytest.raises(CommitConflict):
        store.commit(cached, [decision_record("K4", NOW, "Low", customer="C1")])  # stale ETag: 412
    assert store.cache.get(store.partition_of("C1")) is None
