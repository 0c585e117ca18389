"""Profiles over several accounts: each customer has one account, by a stable hash of its keyed
pseudonym, whatever process asks; the customers spread over all of them."""
from datetime import datetime, timezone

from fakes import TEST_PSEUDONYMS, FakeProfiles
from fraud_events import decision_record
from shared.adapters.profile_accounts import ProfileAccountRouter, account_of

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=timezone.utc)


def commit_one(router, customer):
    router.commit(router.load(customer), [decision_record(f"T-{customer}", NOW, "Low", customer=customer)])


def test_each_customer_is_committed_to_exactly_the_account_its_hash_names():
    stores = [FakeProfiles(), FakeProfiles(), FakeProfiles()]
    router = ProfileAccountRouter(stores, pseudonyms=TEST_PSEUDONYMS)
    customers = [f"C{i}" for i in range(300)]
    for customer in customers:
        commit_one(router, customer)
    holders = {c: [i for i, s in enumerate(stores) if s.load(c).etag is not None] for c in customers}
    assert all(holders[c] == [account_of(TEST_PSEUDONYMS.customer(c), 3)] for c in customers)
    per_account = [sum(h == [i] for h in holders.values()) for i in range(3)]
    assert min(per_account) > 70, per_account  # 100 each expected; crc32 spreads ids evenly


def test_another_router_over_the_same_accounts_finds_every_customer_where_it_was_written():
    stores = [FakeProfiles(), FakeProfiles()]
    writer = ProfileAccountRouter(stores, pseudonyms=TEST_PSEUDONYMS)
    reader = ProfileAccountRouter(list(stores), pseudonyms=TEST_PSEUDONYMS)
    for i in range(50):
        commit_one(writer, f"C{i}")
    assert all(reader.load(f"C{i}").profile.history_count == 0 and reader.load(f"C{i}").etag for i in range(50))
    assert all(reader.applied(f"C{i}", [f"T-C{i}"]) for i in range(50))


def test_the_route_is_fixed_by_the_pseudonym_and_the_account_count_alone():
    # pinned: a change of the salt, the hash or the pseudonym would move stored customers to
    # accounts where their profile is empty, so it must show up here, not in production
    route = lambda c, n: account_of(TEST_PSEUDONYMS.customer(c), n)  # noqa: E731
    assert TEST_PSEUDONYMS.customer("C1") == "cu_823bf45e94fcc54e6bb219664ad722c7"
    assert [route(f"C{i}", 2) for i in range(8)] == [1, 1, 1, 0, 1, 0, 1, 0]
    assert [route(f"C{i}", 3) for i in range(8)] == [0, 0, 0, 2, 0, 1, 1, 2]
    # the contract suite's customers use both accounts, so the contract runs through both
    assert {route(c, 2) for c in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "NEW")} == {0, 1}
    assert route("anything", 1) == 0


def test_the_route_follows_the_pseudonym_not_the_raw_id():
    from shared.domain.pseudonym import Pseudonyms

    other = ProfileAccountRouter([FakeProfiles() for _ in range(4)], pseudonyms=Pseudonyms(b"another key" * 4))
    ours = ProfileAccountRouter(other.stores, pseudonyms=TEST_PSEUDONYMS)
    customers = [f"C{i}" for i in range(40)]
    assert [ours.stores.index(ours.store_for(c)) for c in customers] == [account_of(TEST_PSEUDONYMS.customer(c), 4) for c in customers]
    assert any(ours.store_for(c) is not other.store_for(c) for c in customers)  # another key, another route


def test_backfill_and_alert_state_follow_the_customer():
    stores = [FakeProfiles(), FakeProfiles()]
    router = ProfileAccountRouter(stores, pseudonyms=TEST_PSEUDONYMS)
    customer = next(f"C{i}" for i in range(10) if account_of(TEST_PSEUDONYMS.customer(f"C{i}"), 2) == 1)
    from shared.domain.features import CustomerProfile

    assert router.backfill(customer, CustomerProfile())
    assert stores[1].load(customer).etag is not None and stores[0].load(customer).etag is None
    router.commit(router.load(customer), [decision_record("H1", NOW, "High", customer=customer)])
    assert router.pending_alert(customer, "H1")
    router.mark_alert_sent(customer, "H1")
    assert not stores[1].pending_alert(customer, "H1")
    assert [r.transaction_id for r in router.recent_transactions(customer)] == ["H1"]
