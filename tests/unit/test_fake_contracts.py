"""The in-memory fakes pass the ports' contract suite (the Azurite adapters pass the same
suite in tests/integration/test_adapter_contracts.py)."""
import pytest

from contracts import (AlertContract, AuditContract, DeadLetterContract, DecisionArchiveContract, DecisionStagingContract,
                       LabelStoreContract, MerchantRiskStoreContract, ModelRegistryContract, ProfileContract)
from fakes import (FakeAlertQueue, FakeAuditLog, FakeDeadLetters, FakeDecisionArchive, FakeDecisionStaging, FakeLabelStore,
                   FakeMerchantRiskStore, FakeModelRegistry, FakeProfiles)


class TestFakeProfiles(ProfileContract):
    @pytest.fixture
    def store(self):
        return FakeProfiles()


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


class TestFakeDecisionStaging(DecisionStagingContract):
    @pytest.fixture
    def store(self):
        return FakeDecisionStaging()


class TestFakeDecisionArchive(DecisionArchiveContract):
    @pytest.fixture
    def store(self):
        return FakeDecisionArchive()
