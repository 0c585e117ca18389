"""The Azure adapters pass the ports' contract suite on Azurite (the in-memory fakes pass the
same suite in tests/unit/test_fake_contracts.py)."""
import pytest

from contracts import (AlertContract, AuditContract, DeadLetterContract, DecisionArchiveContract, DecisionStagingContract,
                       LabelStoreContract, MerchantRiskStoreContract, ModelRegistryContract, ProfileContract)


class TestProfileTable(ProfileContract):
    @pytest.fixture(params=[0, 100], ids=["uncached", "cached"])
    def store(self, services, request):
        from shared.adapters.profile_table import ProfileStore

        return ProfileStore(services.table_service.get_table_client(services.config.profile_table), cache_size=request.param)


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


class TestDecisionStagingBlobs(DecisionStagingContract):
    @pytest.fixture
    def store(self, services):
        return services.archive_staging


class TestDecisionArchiveBlobs(DecisionArchiveContract):
    @pytest.fixture
    def store(self, services):
        return services.decision_archive
