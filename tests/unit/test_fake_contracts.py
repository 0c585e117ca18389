"""The in-memory fakes pass the ports' contract suite (the Azurite adapters pass the same
suite in tests/integration/test_adapter_contracts.py)."""
import pytest

from contracts import (AlertContract, AuditContract, DeadLetterContract, DecisionArchiveContract, DecisionStagingContract,
                       LabelStoreContract, MerchantRiskStoreContract, ModelRegistryContract, MonitoringAggregateContract,
                       ProfileContract)
from fakes import (FakeAlertQueue, FakeAuditLog, FakeDeadLetters, FakeDecisionArchive, FakeDecisionStaging, FakeLabelStore,
                   FakeMerchantRiskStore, FakeModelRegistry, FakeProfiles, TEST_PSEUDONYMS)


class TestFakeProfiles(ProfileContract):
    @pytest.fixture
    def store(self):
        return FakeProfiles()


class TestFakeProfilesOverTwoAccounts(ProfileContract):
    @pytest.fixture
    def store(self):
        from shared.adapters.profile_accounts import ProfileAccountRouter

        return ProfileAccountRouter([FakeProfiles(), FakeProfiles()], pseudonyms=TEST_PSEUDONYMS)


class TestFakeAuditLog(AuditContract):
    @pytest.fixture
    def store(self):
        return FakeAuditLog()


class TestFakeAlertQueue(AlertContract):
    @pytest.fixture
    def store(self):
        return FakeAlertQueue()


class TestFakeDeadLetters(DeadLetterContract):
    @pytest.fixture
    def store(self):
        return FakeDeadLetters()


class TestFakeModelRegistry(ModelRegistryContract):
    @pytest.fixture
    def store(self):
        return FakeModelRegistry()


class TestFakeLabelStore(LabelStoreContract):
    @pytest.fixture
    def store(self):
        return FakeLabelStore()


class TestFakeMerchantRiskStore(MerchantRiskStoreContract):
    @pytest.fixture
    def store(self):
        return FakeMerchantRiskStore()


class TestFakeMonitoringAggregates(MonitoringAggregateContract):
    @pytest.fixture
    def store(self):
        from fakes import FakeMonitoringAggregates

        return FakeMonitoringAggregates()

# -- retention -----------------------------------------------------------------------------------
from contracts import (AuditRetentionContract, DeadLetterRetentionContract, HourlyRowsRetentionContract,  # noqa: E402
                       LabelRetentionContract, ProfileRetentionContract)
from fakes import FakeHourlyRows  # noqa: E402


class TestFakeAuditRetention(AuditRetentionContract):
    @pytest.fixture
    def store(self):
        return FakeAuditLog()


class TestFakeLabelRetention(LabelRetentionContract):
    @pytest.fixture
    def store(self):
        return FakeLabelStore()


class TestFakeDeadLetterRetention(DeadLetterRetentionContract):
    @pytest.fixture
    def store(self):
        return FakeDeadLetters()


class TestFakeProfileRetention(ProfileRetentionContract):
    @pytest.fixture
    def store(self):
        return FakeProfiles()


class TestFakeHourlyRowsRetention(HourlyRowsRetentionContract):
    @pytest.fixture
    def store(self):
        return FakeHourlyRows()

    @pytest.fixture
    def seed(self, store):
        return lambda partition, row: store.put(partition, row)


class TestFakeDecisionStaging(DecisionStagingContract):
    @pytest.fixture
    def store(self):
        return FakeDecisionStaging()


class TestFakeDecisionArchive(DecisionArchiveContract):
    @pytest.fixture
    def store(self):
        return FakeDecisionArchive()
