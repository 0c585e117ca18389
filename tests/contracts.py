"""The ports' contracts: one suite, run against the in-memory fakes (tests/unit) and the
Azure adapters on Azurite (tests/integration). A subclass supplies the ``store`` fixture."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fraud_events import decision_record
from shared.domain.dead_letter import DeadLetter
from shared.domain.features import CustomerProfile
from shared.domain.model import ModelArtifact
from shared.domain.transaction import validate_transaction
from shared.service.ports import CommitConflict

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=timezone.utc)


def grown_profile(*amounts: float) -> CustomerProfile:
    profile = CustomerProfile()
    for i, amount in enumerate(amounts):
        txn = validate_transaction({"transaction_id": f"P{i}", "customer_id": "C", "transaction_amount": amount,
                                    "timestamp": (NOW + timedelta(minutes=i)).isoformat()}, now=NOW).transaction
        profile.apply(txn)
    return profile


class ProfileContract:
    """Exactly once: a commit is conditional on the ETag read and creates its transaction rows."""

    def test_a_new_customer_has_an_empty_profile_and_no_etag(self, store):
        stored = store.load("NEW")
        assert stored.etag is None and stored.profile.history_count == 0

    def test_a_commit_is_read_back_with_its_decisions(self, store):
        stored = store.load("C1")
        stored.profile = grown_profile(100.0, 250.0)
        records = [decision_record("T1", NOW, "High", customer="C1", features=[0.5, -1.0, 3.25]),
                   decision_record("T2", NOW + timedelta(minutes=1), "Low", customer="C1")]
        store.commit(stored, records)
        again = store.load("C1")
        assert again.etag is not None and again.profile.to_json() == stored.profile.to_json()
        applied = store.applied("C1", ["T1", "T2", "T3"], {r.transaction_id: r.transaction for r in records})
        assert set(applied) == {"T1", "T2"} and applied["T1"] == records[0] and applied["T2"] == records[1]
        assert applied["T1"].features.dtype == np.float32
        assert np.array_equal(applied["T1"].features, np.asarray([0.5, -1.0, 3.25], dtype=np.float32))

    def test_a_redelivery_from_another_device_is_told_apart_from_the_stored_decision(self, store):
        from dataclasses import replace

        record = decision_record("T1", NOW, "Low", customer="C8")  # device D9
        store.commit(store.load("C8"), [record])
        same = store.applied("C8", ["T1"], {"T1": record.transaction})["T1"]
        assert same == record and same.transaction.device_id == "D9"
        other = store.applied("C8", ["T1"], {"T1": replace(record.transaction, device_id="D-other")})["T1"]
        assert other.transaction.device_id != "D-other" and other.fraud_score == record.fraud_score
        assert store.applied("C8", ["T1"])["T1"].transaction_id == "T1"  # without the arriving ones: the stored form

    def test_a_stale_etag_is_refused_and_changes_nothing(self, store):
        first = store.load("C2")
        store.commit(first, [decision_record("T1", NOW, "Low", customer="C2")])
        stale = store.load("C2")
        current = store.load("C2")
        store.commit(current, [decision_record("T2", NOW, "Low", customer="C2")])
        stale.profile = grown_profile(1.0, 2.0, 3.0)
        with pytest.raises(CommitConflict):
            store.commit(stale, [decision_record("T3", NOW, "Low", customer="C2")])
        assert set(store.applied("C2", ["T1", "T2", "T3"])) == {"T1", "T2"}
        assert store.load("C2").profile.history_count == 0

    def test_two_first_commits_of_one_customer_cannot_both_win(self, store):
        a, b = store.load("C3"), store.load("C3")
        store.commit(a, [decision_record("T1", NOW, "Low", customer="C3")])
        with pytest.raises(CommitConflict):
            store.commit(b, [decision_record("T2", NOW, "Low", customer="C3")])

    def test_an_applied_transaction_is_refused_even_with_a_current_etag(self, store):
        store.commit(store.load("C4"), [decision_record("T1", NOW, "Low", customer="C4")])
        with pytest.raises(CommitConflict):
            store.commit(store.load("C4"), [decision_record("T1", NOW, "Low", customer="C4"),
                                            decision_record("T2", NOW, "Low", customer="C4")])
        assert set(store.applied("C4", ["T1", "T2"])) == {"T1"}

    def test_a_commit_holds_one_to_ninety_nine_transactions(self, store):
        with pytest.raises(ValueError):
            store.commit(store.load("C5"), [])
        with pytest.raises(ValueError):
            store.commit(store.load("C5"), [decision_record(f"T{i}", NOW, "Low", customer="C5") for i in range(100)])
        store.commit(store.load("C5"), [decision_record(f"T{i}", NOW, "Low", customer="C5") for i in range(99)])
        assert len(store.applied("C5", [f"T{i}" for i in range(99)])) == 99

    def test_a_high_decision_is_pending_alert_until_marked_sent(self, store):
        store.commit(store.load("C6"), [decision_record("H", NOW, "High", customer="C6"),
                                        decision_record("L", NOW, "Low", customer="C6")])
        assert store.pending_alert("C6", "H") and not store.pending_alert("C6", "L")
        assert not store.pending_alert("C6", "unknown")
        store.mark_alert_sent("C6", "H")
        assert not store.pending_alert("C6", "H")

    def test_a_profile_remembers_its_last_applied_ids_oldest_first_and_bounded(self, store):
        from shared.service.ports import RECENT_IDS_KEPT

        assert store.load("C8").recent == ()
        ids = [f"R{i:02d}" for i in range(RECENT_IDS_KEPT + 5)]
        for start in range(0, len(ids), 4):  # commits of four
            chunk = ids[start:start + 4]
            store.commit(store.load("C8"), [decision_record(t, NOW + timedelta(minutes=i), "Low", customer="C8")
                                            for i, t in enumerate(chunk, start)])
        assert store.load("C8").recent == tuple(ids[-RECENT_IDS_KEPT:])
        assert store.load("C9").recent == ()  # another customer's ids are not theirs

    def test_applied_reads_back_the_stored_decisions_of_the_ids_asked(self, store):
        records = [decision_record(f"A{i}", NOW + timedelta(minutes=i), "Low", customer="C10", score=0.01 * i)
                   for i in range(3)]
        store.commit(store.load("C10"), records)
        found = store.applied("C10", ["A2", "A0", "MISSING"])
        assert sorted(found) == ["A0", "A2"]
        assert (found["A2"].fraud_score, found["A2"].customer_id) == (0.02, "C10")
        assert store.applied("OTHER", ["A0"]) == {}

    def test_recent_transactions_are_newest_first(self, store):
        records = [decision_record(f"T{i}", NOW + timedelta(minutes=i), "Low", customer="C7") for i in range(5)]
        store.commit(store.load("C7"), records[:3])
        store.commit(store.load("C7"), records[3:])
        recent = store.recent_transactions("C7", limit=3)
        assert [r.transaction_id for r in recent] == ["T4", "T3", "T2"]


class AuditContract:
    """Decisions written once by transaction id, an id index, reads by event time."""

    def test_written_decisions_are_located_by_id(self, store):
        store.write([decision_record("A1", NOW, "High", customer="C1", merchant_id="M1"),
                     decision_record("A2", NOW, "Low", customer="C2", merchant_id=None)])
        found = store.locate(["A1", "A2", "NOPE", "A1"])
        assert set(found) == {"A1", "A2"}
        assert (found["A1"].customer_id, found["A1"].merchant_id) == ("C1", "M1")
        assert (found["A2"].customer_id, found["A2"].merchant_id) == ("C2", "")
        assert isinstance(found["A1"].audit_pk, str) and found["A1"].audit_pk

    def test_reads_select_by_event_time_and_keep_features_exact(self, store):
        vector = [0.1, 1e-7, 12345.678, -1.0]
        store.write([decision_record("B1", NOW - timedelta(hours=2), "Low", features=vector),
                     decision_record("B2", NOW, "Medium", features=vector),
                     decision_record("B3", NOW + timedelta(hours=2), "Low")])
        rows = list(store.read(NOW - timedelta(hours=1), NOW + timedelta(hours=1)))
        assert [r["RowKey"] for r in rows] == ["B2"]
        from shared.domain.decision_record import unpack_features

        assert np.array_equal(unpack_features(rows[0]["features"]), np.asarray(vector, dtype=np.float32))
        assert rows[0]["risk_level"] == "Medium" and rows[0]["action"] == "review"

    def test_a_decision_is_written_once_and_keeps_a_joined_label(self, store):
        record = decision_record("C1", NOW, "High", score=0.95)
        assert store.write([record]) == 2  # the decision's row and its id-index entry
        pk = store.locate(["C1"])["C1"].audit_pk
        store.set_labels([(pk, "C1", {"label": 1, "labelled_at": "", "label_source": "test"})])
        rewritten = decision_record("C1", NOW, "Low", score=0.01, customer="OTHER", model_version="forged-v9")
        assert store.write([rewritten]) == 0  # a second write of the decision is a no-op
        rows = [r for r in store.read(NOW - timedelta(hours=1), NOW + timedelta(hours=1)) if r["RowKey"] == "C1"]
        assert len(rows) == 1 and rows[0]["label"] == 1
        assert (rows[0]["fraud_score"], rows[0]["risk_level"], rows[0]["customer_id"], rows[0]["model_version"]) == (
            0.95, "High", "C1", "test-v1")
        found = store.locate(["C1"])["C1"]  # the id index is written once too
        assert (found.customer_id, found.fraud_score, found.model_version) == ("C1", 0.95, "test-v1")

    def test_a_batch_where_some_decisions_exist_writes_only_the_missing_ones(self, store):
        first = [decision_record(f"W{i}", NOW, "Low", score=0.05) for i in (0, 2)]
        assert store.write(first) == 4
        again = [decision_record(f"W{i}", NOW, "High", score=0.9) for i in range(4)]
        assert store.write(again) == 4  # W1 and W3: their rows and their index entries
        rows = {r["RowKey"]: r for r in store.read(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
                if r["RowKey"].startswith("W")}
        assert {k: (r["fraud_score"], r["risk_level"]) for k, r in rows.items()} == {
            "W0": (0.05, "Low"), "W1": (0.9, "High"), "W2": (0.05, "Low"), "W3": (0.9, "High")}
        assert {k: v.fraud_score for k, v in store.locate([f"W{i}" for i in range(4)]).items()} == {
            "W0": 0.05, "W1": 0.9, "W2": 0.05, "W3": 0.9}

    def test_a_claim_writes_the_index_row_only_and_returns_the_ids_claimed_before(self, store):
        first = decision_record("K1", NOW, "Low", customer="C1", score=0.05)
        assert store.claim([first, decision_record("K2", NOW, "Low", customer="C2")]) == {}
        found = store.locate(["K1", "K2"])
        assert (found["K1"].customer_id, found["K1"].fraud_score, found["K2"].customer_id) == ("C1", 0.05, "C2")
        keys = [(found[t].audit_pk, t) for t in ("K1", "K2")]
        assert store.scored(keys) == set()  # a claim is not a decision
        assert list(store.read(NOW - timedelta(hours=1), NOW + timedelta(hours=1))) == []

        again = store.claim([decision_record("K1", NOW, "High", customer="OTHER", score=0.9),
                             decision_record("K3", NOW, "Low", customer="C3")])
        assert set(again) == {"K1"}  # K1 is C1's: the second claim changed nothing and says whose it is
        assert (again["K1"].customer_id, again["K1"].fraud_score) == ("C1", 0.05)
        assert store.locate(["K3"])["K3"].customer_id == "C3"

        assert store.write_decisions([first]) == 1
        assert store.scored(keys) == {"K1"}
        assert store.write_decisions([first]) == 0  # written once
        assert store.locate(["K2"])["K2"].customer_id == "C2"  # the decision write left the index alone
        assert [r["RowKey"] for r in store.read(NOW - timedelta(hours=1), NOW + timedelta(hours=1))] == ["K1"]

    def test_a_claim_of_many_ids_spread_over_every_index_partition(self, store):
        records = [decision_record(f"M{i:03d}", NOW, "Low", customer=f"C{i % 7}") for i in range(150)]
        assert store.claim(records[:100]) == {}
        found = store.claim(records[50:])  # half claimed before, in every partition
        assert sorted(found) == [f"M{i:03d}" for i in range(50, 100)]
        assert len(store.locate([r.transaction_id for r in records])) == 150

    def test_update_index_rewrites_a_claim_with_the_committed_decision(self, store):
        store.claim([decision_record("U1", NOW, "Low", customer="C1", score=0.05)])
        committed = decision_record("U1", NOW, "High", customer="C1", score=0.91, model_version="test-v2")
        store.update_index([committed])
        found = store.locate(["U1"])["U1"]
        assert (found.fraud_score, found.model_version) == (0.91, "test-v2")
        from shared.domain.decision_record import index_view

        assert found.view() == index_view(committed)

    def test_a_shadow_score_is_logged_beside_the_decision_and_selectable(self, store):
        from dataclasses import replace

        from shared.domain.decision_record import ShadowScore

        shadowed = replace(decision_record("S1", NOW, "Low"), shadow=ShadowScore("challenger-v2", 0.432123))
        store.write([shadowed, decision_record("S2", NOW, "Low")])
        store.write([decision_record("S1", NOW, "Low")])  # a rewrite without the shadow keeps it
        select = ["RowKey", "fraud_score", "model_version", "shadow_score", "shadow_version"]
        rows = {r["RowKey"]: r for r in store.read(NOW - timedelta(hours=1), NOW + timedelta(hours=1), select=select)}
        assert (rows["S1"]["shadow_score"], rows["S1"]["shadow_version"]) == (0.432123, "challenger-v2")
        assert rows["S1"]["fraud_score"] == shadowed.fraud_score and rows["S1"]["model_version"] == "test-v1"
        assert rows["S2"].get("shadow_score") is None and rows["S2"].get("shadow_version") is None


class AlertContract:
    def test_sent_alerts_are_received_once_as_alert_messages(self, store):
        records = [decision_record("H1", NOW, "High"), decision_record("H2", NOW, "High", customer="C2")]
        for record in records:
            store.send(record)
        received = store.receive_all()
        assert received == [r.alert_message() for r in records]
        assert store.receive_all() == []


class DeadLetterContract:
    def test_a_redelivered_poison_event_keeps_one_letter(self, store):
        meta = {"partition": "0", "sequence_number": 7, "enqueued_time": NOW.isoformat()}
        letter = DeadLetter(b"{not json", [{"field": "$", "problem": "not JSON"}], "eventhub", meta)
        first = store.put(letter)
        assert store.put(letter) == first
        other = store.put(DeadLetter(b"{not json", [{"field": "$", "problem": "not JSON"}], "eventhub",
                                     {**meta, "sequence_number": 8}))
        assert other != first
        items = dict(store.items())
        assert set(items) == {first, other}
        assert items[first]["reasons"] == [{"field": "$", "problem": "not JSON"}] and items[first]["raw_bytes"] == 9
        store.delete(first)
        assert [name for name, _ in store.items()] == [other]


def artifact(version: str) -> ModelArtifact:
    return ModelArtifact(f"onnx bytes of {version}".encode(), {"version": version, "feature_names": ["a"]})


class ModelRegistryContract:
    """Versions are immutable; the current pointer moves only from the pointer that was read."""

    def test_published_versions_are_listed_and_loaded_back(self, store):
        store.publish(artifact("v2"))
        store.publish(artifact("v1"))
        assert store.list_versions() == ["v1", "v2"]
        assert store.load("v1").onnx_bytes == b"onnx bytes of v1" and store.manifest("v2")["version"] == "v2"

    def test_a_version_is_published_once(self, store):
        from shared.service.ports import VersionExists

        store.publish(artifact("v1"))
        with pytest.raises(VersionExists):
            store.publish(artifact("v1"))
        with pytest.raises(ValueError):
            store.publish(artifact("a/b"))

    def test_the_pointer_moves_from_what_was_read_and_refuses_a_stale_read(self, store):
        from shared.service.ports import StalePointer

        store.publish(artifact("v1"))
        store.publish(artifact("v2"))
        empty = store.current()
        assert empty.version is None and empty.etag is None
        first = store.set_current("v1", empty, reason="first")
        assert store.current().version == "v1" and store.current().document["reason"] == "first"
        with pytest.raises(StalePointer):
            store.set_current("v2", empty)  # someone else moved it since this read
        second = store.set_current("v2", store.current())
        assert second.document["previous"] == "v1" and store.current().version == "v2" and first.etag != second.etag
        with pytest.raises(ValueError):
            store.set_current("v9", store.current())

    def test_the_shadow_pointer_is_set_cleared_and_independent_of_current(self, store):
        from shared.service.ports import StalePointer

        store.publish(artifact("v1"))
        store.publish(artifact("v2"))
        store.set_current("v1", store.current())
        unset = store.shadow()
        assert unset.version is None and unset.etag is None
        set_ = store.set_shadow("v2", reason="challenger")
        assert store.shadow().version == "v2" and store.shadow().document["reason"] == "challenger"
        assert set_.document["previous"] is None and store.current().version == "v1"  # current untouched
        with pytest.raises(StalePointer):
            store.set_shadow("v1", unset)  # moved since that read
        with pytest.raises(ValueError):
            store.set_shadow("v9")
        cleared = store.clear_shadow(reason="done")
        assert cleared.version is None and store.shadow().version is None and store.shadow().etag is not None
        assert store.shadow().document["previous"] == "v2"
        store.set_current("v2", store.current())
        assert store.shadow().version is None and store.current().version == "v2"  # and shadow untouched


    def test_a_release_is_stored_once_beside_its_published_version(self, store):
        from shared.service.ports import VersionExists

        store.publish(artifact("v1"))
        assert store.release("v1") is None
        store.put_release("v1", {"statement": {"version": "v1"}, "signature": "c2ln"})
        assert store.release("v1") == {"statement": {"version": "v1"}, "signature": "c2ln"}
        with pytest.raises(VersionExists):
            store.put_release("v1", {"statement": {"version": "v1", "approved_by": "someone else"}})
        with pytest.raises(ValueError):
            store.put_release("v9", {})
        assert store.list_versions() == ["v1"]  # a release is no version of its own

    def test_the_retrain_log_moves_only_from_what_was_read(self, store):
        from shared.service.ports import StalePointer

        empty = store.retrain_log()
        assert empty.etag is None and empty.document == {}
        first = store.set_retrain_log({"last_started_at": "2026-01-01T00:00:00+00:00"}, empty)
        assert store.retrain_log().document["last_started_at"] == "2026-01-01T00:00:00+00:00"
        with pytest.raises(StalePointer):
            store.set_retrain_log({"last_started_at": "2026-01-02T00:00:00+00:00"}, empty)
        store.set_retrain_log({"last_started_at": "2026-01-02T00:00:00+00:00"}, first)
        assert store.retrain_log().document["last_started_at"] == "2026-01-02T00:00:00+00:00"


class LabelStoreContract:
    """Labels are an append-only history with the current label derived (the last word wins) and
    waiting until joined; files are read once, compromise keeps the earliest time."""

    def test_labels_wait_until_marked_joined(self, store):
        from shared.domain.labels import Label

        written = store.put([Label("T1", True, "C1", None, "analyst"), Label("T2", False, None, NOW, "case"),
                             Label("T1", False, "C1", None, "analyst")])
        assert sorted(r["RowKey"] for r in written) == ["T1", "T2"]
        assert {r["RowKey"]: r["label"] for r in written} == {"T1": 0, "T2": 0}
        waiting = {r["RowKey"]: r for r in store.awaiting()}
        assert set(waiting) == {"T1", "T2"} and waiting["T2"]["labelled_at"] == NOW.isoformat()
        store.mark([(waiting["T1"]["PartitionKey"], "T1", {"status": "joined"})])
        assert [r["RowKey"] for r in store.awaiting()] == ["T2"]
        assert store.get("T1")["status"] == "joined" and store.get("nope") is None
        assert [e["label"] for e in store.history("T1")] == [1, 0] and store.history("nope") == []

    def test_each_verdict_is_a_new_history_entry_and_the_latest_is_current(self, store):
        from shared.domain.labels import Label

        store.put([Label("H1", True, "C1", NOW - timedelta(hours=2), "analyst", "alice@bank", "oid-a")],
                  now=NOW - timedelta(hours=2))
        store.mark([(store.get("H1")["PartitionKey"], "H1", {"status": "joined"})])
        current = store.put([Label("H1", False, "C1", NOW - timedelta(hours=1), "analyst", "bob@bank")],
                            now=NOW - timedelta(hours=1))
        assert [(r["label"], r["labelled_by"], r["previous_label"], r["history"], r["status"]) for r in current] \
            == [(0, "bob@bank", 1, 2, "pending")]  # a new current value waits to be joined again
        history = store.history("H1")
        assert [(e["label"], e["labelled_by"], e.get("previous_label")) for e in history] \
            == [(1, "alice@bank", None), (0, "bob@bank", 1)]
        assert history[0]["labelled_by_id"] == "oid-a" and history[0]["source"] == "analyst"
        # alice changes her mind back: a third entry, fraud again, not a redelivery of the first
        store.put([Label("H1", True, "C1", NOW, "analyst", "alice@bank", "oid-a")], now=NOW)
        assert [e["label"] for e in store.history("H1")] == [1, 0, 1]
        assert (store.get("H1")["label"], store.get("H1")["labelled_by"], store.get("H1")["history"]) == (1, "alice@bank", 3)

    def test_an_exact_redelivery_or_a_repeated_verdict_adds_no_entry(self, store):
        from shared.domain.labels import Label

        label = Label("R1", True, "C1", NOW - timedelta(days=3), "file:day1.csv", "file:day1.csv")
        store.put([label], now=NOW - timedelta(hours=1))
        store.mark([(store.get("R1")["PartitionKey"], "R1", {"status": "joined"})])
        again = store.put([label, label], now=NOW)  # the same file read again
        assert len(store.history("R1")) == 1 and [r["status"] for r in again] == ["joined"]  # nothing to join again
        retry = Label("R2", False, None, NOW - timedelta(minutes=1), "analyst", "alice@bank")
        store.put([retry], now=NOW - timedelta(minutes=1))
        store.put([Label("R2", False, None, NOW, "analyst", "alice@bank")], now=NOW)  # her retry, dated later
        assert len(store.history("R2")) == 1 and store.get("R2")["history"] == 1

    def test_a_label_given_earlier_but_received_later_does_not_become_current(self, store):
        from shared.domain.labels import Label

        store.put([Label("E1", False, None, NOW, "analyst", "alice@bank")], now=NOW)
        late = store.put([Label("E1", True, None, NOW - timedelta(days=5), "chargeback", "file:cb.csv")],
                         now=NOW + timedelta(hours=1))
        assert late[0]["label"] == 0 and late[0]["labelled_by"] == "alice@bank" and late[0]["history"] == 2
        assert [e["labelled_by"] for e in store.history("E1")] == ["file:cb.csv", "alice@bank"]  # in labelled order

    def test_a_label_file_is_read_once_per_version(self, store):
        assert not store.file_seen("day1.csv", "etag-1")
        store.record_file("day1.csv", "etag-1", 10, [])
        assert store.file_seen("day1.csv", "etag-1") and not store.file_seen("day1.csv", "etag-2")

    def test_a_customer_is_compromised_from_the_earliest_fraud(self, store):
        assert store.compromised_since("C1") is None
        store.mark_compromised("C1", NOW)
        store.mark_compromised("C1", NOW + timedelta(hours=1))
        store.mark_compromised("C1", NOW - timedelta(hours=1))
        assert store.compromised_since("C1") == (NOW - timedelta(hours=1)).isoformat()


class MerchantRiskStoreContract:
    """Fraud known per merchant accumulates; hourly counts of a recount window are replaced, not added."""

    def test_an_unknown_merchant_has_no_history(self, store):
        history, as_of = store.load("M0")
        assert history.hours == {} and history.fraud_hours == {} and history.pending == {} and as_of is None

    def test_frauds_accumulate_and_a_repeat_changes_nothing(self, store):
        t = NOW.timestamp()
        assert store.add_frauds([("M1", "F1", t, t + 60), ("M1", "F2", t, t + 120), ("", "F3", t, t)]) == 1
        store.add_frauds([("M1", "F1", t, t + 60)])
        history, _ = store.load("M1")
        hour = int(t // 3600)
        assert history.frauds_known(hour, hour + 1, hour + 1) == 2  # F1 and F2, F1 once
        # each counted from the hour end by which it is known
        assert history.frauds_known(hour, hour + 1, hour) == 0

    def test_a_recount_replaces_the_window_and_keeps_the_frauds(self, store):
        hour = int(NOW.timestamp() // 3600)
        as_of = (hour + 2) * 3600.0
        store.add_frauds([("M2", "F1", NOW.timestamp(), NOW.timestamp())])
        store.refresh_counts({"M2": {hour: [5, 50_000, 1, 2], hour + 1: [3, 9_900, 0, 0]}}, hour, as_of)
        # late events, and one beyond as_of
        store.refresh_counts({"M2": {hour: [6, 60_000, 2, 2], hour + 1: [3, 9_900, 0, 0], hour + 5: [99, 1, 1, 1]}},
                             hour, as_of)
        history, stored_as_of = store.load("M2")
        assert history.hours == {hour: [6, 60_000, 2, 2], hour + 1: [3, 9_900, 0, 0]} and stored_as_of == as_of
        assert history.frauds_known(hour - 1, hour + 2, hour + 2) == 1

    def test_a_recount_without_a_gap_moves_every_merchant_s_counted_time(self, store):
        hour = int(NOW.timestamp() // 3600)
        assert store.counted_as_of() is None
        store.refresh_counts({"M3": {hour: [1, 100, 0, 1]}}, hour, (hour + 1) * 3600.0)
        assert store.counted_as_of() == (hour + 1) * 3600.0
        store.refresh_counts({"M4": {hour + 1: [1, 100, 0, 1]}}, hour, (hour + 2) * 3600.0)  # overlapping: no gap
        assert store.counted_as_of() == (hour + 2) * 3600.0
        store.refresh_counts({"M4": {hour + 9: [1, 100, 0, 1]}}, hour + 9, (hour + 10) * 3600.0)  # hours 2-8 missed
        assert store.counted_as_of() == (hour + 2) * 3600.0
        _, m3_as_of = store.load("M3")
        assert m3_as_of == (hour + 1) * 3600.0  # its own row is only written when it was visited


class MonitoringAggregateContract:
    """Hour documents replaced whole per row, read by hour range; labelled decisions upserted by id."""

    def test_documents_are_read_back_by_hour_range_and_replaced_whole(self, store):
        hour = int(NOW.timestamp() // 3600)
        big = {"aggregates": [{"hour": hour, "counts": list(range(20000)), "name": "é" * 10}]}  # several chunks
        store.put(hour, "p1-g000", {"aggregates": [{"hour": hour, "n": 1}]})
        store.put(hour, "p1-g000", big)
        store.put(hour, "p2-g000", {"aggregates": [{"hour": hour, "n": 2}]})
        store.put(hour - 5, "p1-g000", {"aggregates": [{"hour": hour - 5, "n": 3}]})
        store.put(hour + 1, "p1-g000", {"aggregates": [{"hour": hour + 1, "n": 4}]})
        found = list(store.read(hour - 5, hour + 1))
        assert sorted(json.dumps(d, sort_keys=True) for d in found) == sorted(
            json.dumps(d, sort_keys=True) for d in (big, {"aggregates": [{"hour": hour, "n": 2}]},
                                                    {"aggregates": [{"hour": hour - 5, "n": 3}]}))
        assert list(store.read(hour + 2, hour + 10)) == []

    def test_labelled_decisions_are_upserted_by_id_and_read_by_event_hour(self, store):
        from shared.domain.monitoring_aggregate import LabelledDecision

        hour = int(NOW.timestamp() // 3600)
        first = LabelledDecision("L1", "C1", NOW, 0, 0.25, "v1")
        store.put_labelled([first, LabelledDecision("L2", "C2", NOW - timedelta(hours=3), 1, 0.9, "v1", "s2", 0.95)])
        store.put_labelled([LabelledDecision("L1", "C1", NOW, 1, 0.25, "v1")])  # a corrected label replaces
        found = {r.transaction_id: r for r in store.read_labelled(hour - 3, hour + 1)}
        assert found["L1"].label == 1 and found["L1"].shadow_score is None
        assert found["L2"] == LabelledDecision("L2", "C2", NOW - timedelta(hours=3), 1, 0.9, "v1", "s2", 0.95)
        assert [r.transaction_id for r in store.read_labelled(hour, hour + 1)] == ["L1"]

# -- retention: each store lists what lies before a cut-off (keys only) and deletes by key,
# idempotently; nothing after the cut-off is listed or touched ---------------------------------
class AuditRetentionContract:
    def test_hours_before_the_cutoff_go_index_first_and_a_repeat_deletes_nothing(self, store):
        from shared.domain.retention import utc_hour_key

        old = [decision_record(f"O{i}", NOW - timedelta(hours=3, minutes=i), "Low", customer=f"C{i}") for i in range(6)]
        kept = [decision_record("E1", NOW - timedelta(hours=1), "Low"), decision_record("N1", NOW, "High")]
        store.write(old + kept)
        before = utc_hour_key(NOW - timedelta(hours=1))  # the hour of E1 is kept whole
        keys = store.expired_decisions(before, 100)
        assert sorted(t for _, t in keys) == [f"O{i}" for i in range(6)]
        assert len(store.expired_decisions(before, 4)) == 4
        assert store.delete_index([t for _, t in keys]) == 6
        assert set(store.locate(["O0", "O5", "E1", "N1"])) == {"E1", "N1"}
        assert sorted(store.expired_decisions(before, 100)) == sorted(keys)  # the rows are found again
        assert store.delete_decisions(keys) == 6
        assert store.expired_decisions(before, 100) == []
        assert store.delete_index([t for _, t in keys]) == 0 and store.delete_decisions(keys) == 0
        assert {r["RowKey"] for r in store.read(NOW - timedelta(days=1), NOW + timedelta(hours=1))} == {"E1", "N1"}


class LabelRetentionContract:
    def test_labels_received_before_the_cutoff_go_whatever_their_status(self, store):
        from shared.domain.labels import Label

        store.put([Label("L1", True, "C1", None, "case"), Label("L2", False, None, None, "case")],
                  now=NOW - timedelta(days=10))
        store.put([Label("L3", True, "C3", None, "analyst")], now=NOW)
        store.mark([(store.get("L1")["PartitionKey"], "L1", {"status": "joined"})])
        store.record_file("old.csv", "etag-1", 2, [])
        store.mark_compromised("C1", NOW - timedelta(days=10))
        keys = store.expired_labels(NOW - timedelta(days=1), 100)
        assert sorted(t.split("~")[0] for _, t in keys) == ["L1", "L1", "L2", "L2"]  # history entries and current labels
        assert len(store.expired_labels(NOW - timedelta(days=1), 1)) == 1
        assert store.delete_labels(keys) == 4 and store.delete_labels(keys) == 0
        assert store.get("L1") is None and store.get("L2") is None and store.get("L3")["label"] == 1
        assert store.history("L1") == [] and len(store.history("L3")) == 1
        assert store.expired_labels(NOW - timedelta(days=1), 100) == []
        assert store.file_seen("old.csv", "etag-1") and store.compromised_since("C1") is not None


class DeadLetterRetentionContract:
    def test_letters_filed_under_days_before_the_cutoff_go(self, store):
        def letter(days_ago: int, sequence: int) -> DeadLetter:
            return DeadLetter(b"{bad", [{"field": "$", "problem": "not JSON"}], "eventhub",
                              {"partition": "0", "sequence_number": sequence,
                               "enqueued_time": (NOW - timedelta(days=days_ago)).isoformat()})

        old = [store.put(letter(40, 1)), store.put(letter(31, 2))]
        young = store.put(letter(29, 3))
        before_day = (NOW - timedelta(days=30)).date()
        assert store.expired_letters(before_day, 100) == sorted(old)
        assert store.expired_letters(before_day, 1) == sorted(old)[:1]
        assert store.discard(old) == 2 and store.discard(old) == 0
        assert store.expired_letters(before_day, 100) == []
        assert [name for name, _ in store.items()] == [young]


class ProfileRetentionContract:
    """A store whose ``clock`` says when rows are written (the adapter's and the fake's)."""

    def test_old_transaction_rows_go_whatever_the_customer_and_inactive_profiles_go_if_unchanged(self, store):
        long_ago = NOW - timedelta(days=100)
        store.clock = lambda: long_ago
        store.commit(store.load("GONE"), [decision_record("G1", long_ago, "Low", customer="GONE"),
                                          decision_record("G2", long_ago, "Low", customer="GONE")])
        store.commit(store.load("ACTIVE"), [decision_record("A1", long_ago, "Low", customer="ACTIVE")])
        store.commit(store.load("BACK"), [decision_record("B1", long_ago, "Low", customer="BACK")])
        store.clock = lambda: NOW
        store.commit(store.load("ACTIVE"), [decision_record("A2", NOW, "Low", customer="ACTIVE")])
        before = NOW - timedelta(days=90)

        rows = store.expired_transactions(before, 100)
        key = store.partition_of  # listings name partitions by the store's keys (the adapter's: pseudonyms)
        assert sorted(rows) == sorted([(key("ACTIVE"), "txn:A1"), (key("BACK"), "txn:B1"), (key("GONE"), "txn:G1"),
                                       (key("GONE"), "txn:G2")])
        assert len(store.expired_transactions(before, 3)) == 3
        assert store.delete_transactions(rows) == 4 and store.delete_transactions(rows) == 0
        assert set(store.applied("ACTIVE", ["A1", "A2"])) == {"A2"} and store.applied("GONE", ["G1", "G2"]) == {}

        listed = store.inactive_profiles(before, 100)
        assert sorted(c for c, _ in listed) == sorted([key("BACK"), key("GONE")])
        store.commit(store.load("BACK"), [decision_record("B2", NOW, "Low", customer="BACK")])  # came back
        assert store.remove_profiles(listed) == 1 and store.remove_profiles(listed) == 0
        assert store.load("GONE").etag is None and store.load("GONE").profile.history_count == 0
        assert store.load("BACK").etag is not None and set(store.applied("BACK", ["B2"])) == {"B2"}
        assert store.load("ACTIVE").etag is not None
        assert store.inactive_profiles(before, 100) == [] and store.expired_transactions(before, 100) == []

    def test_a_commit_on_a_removed_profile_conflicts_and_the_re_read_starts_afresh(self, store):
        store.clock = lambda: NOW - timedelta(days=100)
        store.commit(store.load("C"), [decision_record("T1", NOW, "Low", customer="C")])
        held = store.load("C")  # as a scoring process holds it (cached) while retention removes it
        assert held.etag is not None
        store.clock = lambda: NOW
        assert store.remove_profiles(store.inactive_profiles(NOW - timedelta(days=90), 100)) == 1
        with pytest.raises(CommitConflict):
            store.commit(held, [decision_record("T2", NOW, "Low", customer="C")])
        fresh = store.load("C")
        assert fresh.etag is None
        store.commit(fresh, [decision_record("T2", NOW, "Low", customer="C")])
        assert set(store.applied("C", ["T1", "T2"])) == {"T1", "T2"}  # T1's row: not past its retention here


class HourlyRowsRetentionContract:
    """``seed(partition, row)`` writes a row into the store's table."""

    def test_whole_hours_before_the_cutoff_go(self, store, seed):
        for partition, row in [("2026112009", "p1"), ("2026112009", "p2"), ("2026112010", "p1"),
                               ("2026112011", "p1"), ("2026112012", "p1"), ("20261120", "x"),
                               ("L2026112010", "T1"), ("L2026112011", "T2")]:  # labelled decisions, by event hour
            seed(partition, row)
        keys = store.expired_hours("2026112011", 100)
        assert sorted(keys) == [("2026112009", "p1"), ("2026112009", "p2"), ("2026112010", "p1"), ("L2026112010", "T1")]
        assert len(store.expired_hours("2026112011", 2)) == 2
        assert store.delete_rows(keys) == 4 and store.delete_rows(keys) == 0
        assert store.expired_hours("2026112011", 100) == []
        assert sorted(store.expired_hours("2026112013", 100)) == [("2026112011", "p1"), ("2026112012", "p1"),
                                                                   ("L2026112011", "T2")]


class DecisionStagingContract:
    """``DecisionStagingPort``: append blobs of whole lines, created once, read by byte range."""

    HOUR = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)

    def test_appends_accumulate_and_read_back_by_range(self, store):
        name = "date=2026-11-20/hour=09/p-0.jsonl"
        store.append(name, b"header\n", create=True)
        store.append(name, b"one\ntwo\n", create=False)
        store.append(name, b"three\n", create=True)  # a retried first append: the blob is not emptied
        (blob,) = store.blobs(self.HOUR)
        assert (blob.name, blob.length) == (name, 21) and blob.etag
        assert b"".join(store.read(name, 0, 21)) == b"header\none\ntwo\nthree\n"
        assert b"".join(store.read(name, 7, 15)) == b"one\ntwo\n"
        assert store.staged_hours() == [self.HOUR]
        assert store.blobs(self.HOUR + timedelta(hours=1)) == []

    def test_hours_are_listed_oldest_first(self, store):
        for hour in (11, 9, 10):
            store.append(f"date=2026-11-20/hour={hour:02d}/p-0.jsonl", b"x\n", create=True)
        store.append("date=2026-11-19/hour=23/p-0.jsonl", b"x\n", create=True)
        assert store.staged_hours() == [datetime(2026, 11, 19, 23, tzinfo=timezone.utc)] + [
            datetime(2026, 11, 20, h, tzinfo=timezone.utc) for h in (9, 10, 11)]


class DecisionArchiveContract:
    """``DecisionArchivePort``: parts and manifests created once, never overwritten; a part
    that failed while being written leaves no file."""

    HOUR = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)

    def test_a_part_is_created_once_and_read_back_seekable(self, store):
        from shared.service.ports import ArchiveFileExists

        with store.create_part(self.HOUR, 0) as sink:
            sink.write(b"PAR1" + b"x" * (9 * 1024 * 1024) + b"END")  # more than one staged block
        assert store.part_exists(self.HOUR, 0) and not store.part_exists(self.HOUR, 1)
        with pytest.raises(ArchiveFileExists):
            with store.create_part(self.HOUR, 0) as sink:
                sink.write(b"other")
        with store.open_part(self.HOUR, 0) as handle:
            assert handle.read(4) == b"PAR1"
            handle.seek(-3, 2)
            assert handle.read() == b"END" and handle.tell() == 9 * 1024 * 1024 + 7

    def test_a_part_whose_writer_failed_leaves_no_file(self, store):
        with pytest.raises(RuntimeError):
            with store.create_part(self.HOUR, 1) as sink:
                sink.write(b"half a file")
                raise RuntimeError("the writer failed")
        assert not store.part_exists(self.HOUR, 1)

    def test_manifests_are_created_once_and_listed_in_part_order(self, store):
        from shared.service.ports import ArchiveFileExists

        for part in (1, 0):
            store.write_manifest(self.HOUR, part, {"part": part})
        with pytest.raises(ArchiveFileExists):
            store.write_manifest(self.HOUR, 0, {"part": 0, "rewritten": True})
        assert store.manifests(self.HOUR) == [{"part": 0}, {"part": 1}]
        assert store.manifests(self.HOUR + timedelta(hours=1)) == []
