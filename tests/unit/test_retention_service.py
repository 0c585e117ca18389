"""The retention service on the in-memory fakes: what goes, what stays, the budget, crashes, failing stores."""
from datetime import datetime, timedelta, timezone

import pytest

from fakes import FakeAuditLog, FakeDeadLetters, FakeHourlyRows, FakeLabelStore, FakeProfiles
from fraud_events import decision_record
from shared.domain.dead_letter import DeadLetter
from shared.domain.labels import Label
from shared.domain.retention import RetentionPolicy, utc_hour_key
from shared.service.retention import RetentionBudget, RetentionService

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=timezone.utc)
POLICY = RetentionPolicy(audit_days=180, dead_letter_days=30, label_days=400, profile_inactive_days=90)


class Stores:
    """One fake of every store, seeded on both sides of each cut-off (a day and an hour either side)."""

    def __init__(self, profile_stores: int = 1) -> None:
        self.audit, self.labels, self.letters = FakeAuditLog(), FakeLabelStore(), FakeDeadLetters()
        self.aggregates = FakeHourlyRows()
        self.profiles = [FakeProfiles() for _ in range(profile_stores)]

    def seed(self, old_decisions: int = 3) -> "Stores":
        audit_cut = NOW - timedelta(days=180)
        self.audit.write([decision_record(f"OLD{i}", audit_cut - timedelta(hours=1, minutes=i), "Low")
                          for i in range(old_decisions)])
        self.audit.write([decision_record("EDGE", audit_cut - timedelta(minutes=20), "Low"),  # the cut-off's hour
                          decision_record("NEW", NOW - timedelta(days=1), "High")])
        self.labels.put([Label("LOLD", True, "C1", None, "case")], now=NOW - timedelta(days=401))
        self.labels.put([Label("LNEW", False, "C1", None, "case")], now=NOW - timedelta(days=399))
        for days, seq in ((45, 1), (31, 2), (30, 3), (1, 4)):
            self.letters.put(DeadLetter(b"{", [], "eventhub", {"partition": "0", "sequence_number": seq,
                                                               "enqueued_time": (NOW - timedelta(days=days)).isoformat()}))
        self.aggregates.put(utc_hour_key(audit_cut - timedelta(hours=2)), "proc-a")
        self.aggregates.put(utc_hour_key(audit_cut - timedelta(hours=1)), "proc-b")
        self.aggregates.put(utc_hour_key(audit_cut), "proc-a")
        for n, store in enumerate(self.profiles):
            store.clock = lambda: NOW - timedelta(days=91)
            store.commit(store.load(f"GONE{n}"), [decision_record(f"G{n}", NOW - timedelta(days=91), "Low", customer=f"GONE{n}")])
            store.commit(store.load(f"ACTIVE{n}"), [decision_record(f"A{n}", NOW - timedelta(days=91), "Low", customer=f"ACTIVE{n}")])
            store.clock = lambda: NOW - timedelta(days=89)
            store.commit(store.load(f"ACTIVE{n}"), [decision_record(f"B{n}", NOW - timedelta(days=89), "Low", customer=f"ACTIVE{n}")])
            store.commit(store.load(f"RECENT{n}"), [decision_record(f"R{n}", NOW - timedelta(days=89), "Low", customer=f"RECENT{n}")])
        return self

    def service(self, budget: RetentionBudget = RetentionBudget(), audit=None, **kwargs) -> RetentionService:
        return RetentionService(POLICY, audit or self.audit, self.labels, self.letters, self.profiles,
                                aggregates=self.aggregates, budget=budget, **kwargs)


def test_a_run_deletes_everything_past_retention_and_nothing_inside_it():
    stores = Stores(profile_stores=2).seed()
    report = stores.service().run(NOW)
    # labels: LOLD's one history entry and its current label (label rows, both past retention)
    assert report["deleted"] == {"dead_letters": 2, "labels": 2, "audit_index": 3, "audit_decisions": 3,
                                 "aggregates": 2, "profile_transactions": 4, "profiles": 2}
    assert report["errors"] == {} and all(report["complete"].values()) and report["profiles_kept"] == 0
    kept = {r["RowKey"] for r in stores.audit.read(NOW - timedelta(days=400), NOW)}
    assert kept == {"EDGE", "NEW"} and stores.audit.indexed() == {"EDGE", "NEW"}
    assert stores.labels.get("LOLD") is None and stores.labels.get("LNEW") is not None
    assert stores.labels.history("LOLD") == [] and len(stores.labels.history("LNEW")) == 1
    assert sorted(n[:10] for n, _ in stores.letters.items()) == ["2026/10/21", "2026/11/19"]
    assert sorted(stores.aggregates.rows) == [(utc_hour_key(NOW - timedelta(days=180)), "proc-a")]
    for n, store in enumerate(stores.profiles):
        assert store.rows() == {f"ACTIVE{n}": {"profile", f"txn:B{n}"}, f"RECENT{n}": {"profile", f"txn:R{n}"}}


def test_a_second_run_deletes_nothing():
    stores = Stores().seed()
    service = stores.service()
    service.run(NOW)
    again = service.run(NOW)
    assert set(again["deleted"].values()) == {0} and again["errors"] == {} and all(again["complete"].values())


def test_the_budget_stops_a_step_and_the_next_run_goes_on():
    stores = Stores().seed(old_decisions=25)
    service = stores.service(RetentionBudget(max_entities_per_step=10, page=4))
    first = service.run(NOW)
    assert first["deleted"]["audit_decisions"] == 10 and first["complete"]["audit"] is False
    assert first["complete"]["labels"] is True  # the other steps are not held up
    second, third = service.run(NOW), service.run(NOW)
    assert (second["deleted"]["audit_decisions"], third["deleted"]["audit_decisions"]) == (10, 5)
    assert third["complete"]["audit"] is True
    assert {r["RowKey"] for r in stores.audit.read(NOW - timedelta(days=400), NOW)} == {"EDGE", "NEW"}


def test_the_seconds_budget_is_checked_between_pages():
    stores = Stores().seed(old_decisions=30)
    ticks = iter(range(1000))  # each look at the clock is one second later
    service = stores.service(RetentionBudget(max_seconds=4, page=5), monotonic=lambda: float(next(ticks)))
    report = service.run(NOW)
    assert report["complete"]["dead_letters"] and not report["complete"]["audit"]
    assert 0 < report["deleted"]["audit_decisions"] < 30


class CrashingAudit(FakeAuditLog):
    """Crashes after deleting the index entries of a page, before deleting the rows."""

    def __init__(self, audit: FakeAuditLog) -> None:
        self.__dict__ = audit.__dict__

    def delete_decisions(self, keys):
        raise ConnectionError("the process died here")


def test_a_crash_between_index_and_rows_leaves_the_rows_for_the_next_run():
    stores = Stores().seed()
    crashed = stores.service(audit=CrashingAudit(stores.audit)).run(NOW)
    assert crashed["errors"]["audit"].startswith("ConnectionError") and crashed["complete"]["audit"] is False
    assert crashed["deleted"]["labels"] == 2  # the other steps ran (LOLD's history entry and current label)
    assert stores.audit.indexed() == {"EDGE", "NEW"}
    assert len(stores.audit.expired_decisions(utc_hour_key(NOW - timedelta(days=180)), 100)) == 3
    resumed = stores.service().run(NOW)
    assert resumed["errors"] == {} and resumed["deleted"]["audit_decisions"] == 3 and resumed["deleted"]["audit_index"] == 0
    assert {r["RowKey"] for r in stores.audit.read(NOW - timedelta(days=400), NOW)} == {"EDGE", "NEW"}


def test_a_customer_who_comes_back_during_the_run_keeps_the_profile():
    stores = Stores().seed()
    store = stores.profiles[0]

    class ComesBack:
        """GONE0 transacts between retention's listing and its delete."""

        def __getattr__(self, name):
            return getattr(store, name)

        def remove_profiles(self, found):
            store.clock = lambda: NOW
            store.commit(store.load("GONE0"), [decision_record("BACK", NOW, "Low", customer="GONE0")])
            return store.remove_profiles(found)

    stores.profiles = [ComesBack()]
    report = stores.service().run(NOW)
    assert report["deleted"]["profiles"] == 0 and report["profiles_kept"] == 1
    assert store.rows()["GONE0"] == {"profile", "txn:BACK"}


def test_an_unset_aggregates_table_is_skipped():
    stores = Stores().seed()
    service = RetentionService(POLICY, stores.audit, stores.labels, stores.letters, stores.profiles)
    report = service.run(NOW)
    assert report["deleted"]["aggregates"] == 0 and report["complete"]["aggregates"] and report["errors"] == {}


@pytest.mark.parametrize("days", [89, 30])
def test_a_profile_retention_under_the_redelivery_window_is_refused(days):
    from shared.domain.retention import RetentionTooShort

    with pytest.raises(RetentionTooShort):
        RetentionPolicy(profile_inactive_days=days)
