"""Profiles backfilled from history are keyed as serving keys them (customer and device
pseudonyms), so the first live transaction from a known device is not "new"; a profile built
without the store's device pseudonyms is refused rather than stored with unkeyed device hashes."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.domain.features import CustomerProfile, feature_index
from shared.domain.transaction import Transaction
from training.backfill import build_profiles, write_profiles

LAGOS = timezone(timedelta(hours=1))


def history(customer: str, device: str, n: int = 5) -> list[Transaction]:
    start = datetime(2026, 11, 1, 12, tzinfo=LAGOS)
    return [Transaction(f"H{customer}{i}", customer, 5000.0, "NGN", start + timedelta(days=i), device, "M1", "grocery",
                        "pos", "NG") for i in range(n)]


def test_a_backfilled_profile_knows_the_customers_devices_when_serving(services):
    counts = write_profiles(services.profiles, build_profiles(history("Cust-Bo", "Dev-home"), services.profiles.new_profile))
    assert counts == {"written": 1, "kept": 0}
    table = services.table_service.get_table_client(services.config.profile_table)
    (entity,) = table.list_entities()
    assert entity["PartitionKey"] == services.pseudonyms.customer("Cust-Bo") and "Dev-home" not in entity["state"]
    loaded = services.profiles.load("Cust-Bo").profile
    assert loaded.history_count == 5 and set(loaded.devices) == {services.pseudonyms.device("Dev-home")}
    from shared.domain.features import transaction_features

    later = datetime(2026, 11, 7, 12, tzinfo=LAGOS)
    known = transaction_features(loaded, Transaction("L1", "Cust-Bo", 5000.0, "NGN", later, "Dev-home", "M1"))
    fresh = transaction_features(loaded, Transaction("L2", "Cust-Bo", 5000.0, "NGN", later, "Dev-new", "M1"))
    assert known[feature_index("is_new_device")] == 0.0 and fresh[feature_index("is_new_device")] == 1.0


def test_a_profile_built_with_another_device_key_is_refused(services):
    unkeyed = build_profiles(history("Cust-Cy", "Dev-x"), CustomerProfile)
    with pytest.raises(ValueError, match="device pseudonyms"):
        write_profiles(services.profiles, unkeyed)
    assert list(services.table_service.get_table_client(services.config.profile_table).list_entities()) == []
