"""Issue #17's scoring path on fakes: ids claimed in the id index before the commit (and the
race that closes), redeliveries answered from the profile's recent ids without a commit, a
claim rewritten when a retry re-scored it, HTTP requests combined into batches."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from fakes import FakeAuditLog, FakeModel, FakeModelSource, FakeProfiles
from fraud_events import ProfilesLoadedTogether, transaction
from test_scoring_service import NOW, events, fresh_parts, make_service
from shared.domain.decision_record import index_view
from shared.domain.features import feature_index
from shared.service.request_combiner import RequestCombiner

HISTORY = feature_index("history_count")


class CountingAudit(FakeAuditLog):
    """The fake audit log, counting what the service asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = {"claim": 0, "write_decisions": 0, "update_index": 0, "locate": 0}
        self.fail_writes = 0

    def claim(self, records):
        self.calls["claim"] += 1
        return super().claim(records)

    def write_decisions(self, records):
        self.calls["write_decisions"] += 1
        if self.fail_writes:
            self.fail_writes -= 1
            raise ConnectionError("audit table unavailable")
        return super().write_decisions(records)

    def update_index(self, records):
        self.calls["update_index"] += 1
        return super().update_index(records)

    def locate(self, transaction_ids):
        self.calls["locate"] += 1
        return super().locate(transaction_ids)


class CountingProfiles(FakeProfiles):
    def __init__(self) -> None:
        super().__init__()
        self.applied_reads = 0

    def applied(self, customer_id, transaction_ids, arriving=None):
        ids = list(transaction_ids)
        self.applied_reads += len(ids)
        return super().applied(customer_id, ids, arriving)


@pytest.fixture
def parts():
    return {**fresh_parts(), "audit": CountingAudit(), "profiles": CountingProfiles()}


def test_new_ids_are_claimed_once_per_call_and_never_looked_up(parts):
    service = make_service(parts)
    outcome = service.score_events(events(*[transaction(i, customer=f"C{i % 4}") for i in range(12)]))
    assert len(outcome.deliveries) == 12 and not any(d.duplicate for d in outcome.deliveries)
    assert parts["audit"].calls == {"claim": 1, "write_decisions": 1, "update_index": 0, "locate": 0}
    located = parts["audit"].locate([f"T{i}" for i in range(12)])
    assert {t: w.view() for t, w in located.items()} == {d.record.transaction_id: index_view(d.record)
                                                          for d in outcome.deliveries}


def test_a_redelivery_the_profiles_list_needs_no_commit_claim_or_audit_write(parts):
    service = make_service(parts)
    batch = events(*[transaction(i, customer=f"C{i % 3}") for i in range(9)])
    first = service.score_events(batch)
    commits, calls = parts["profiles"].commits, dict(parts["audit"].calls)
    again = service.score_events(batch)
    assert again.duplicates == 9 and [d.record for d in again.deliveries] == [d.record for d in first.deliveries]
    assert parts["profiles"].commits == commits  # no commit tried: the profile rows list the ids
    assert parts["audit"].calls == calls  # no claim, no audit write: this process wrote them
    assert parts["profiles"].applied_reads == 9  # the stored decisions: one read each


def test_another_process_redelivering_rewrites_the_audit_create_only(parts):
    """A redelivery to another process (after a rebalance) cannot know the first one wrote the
    audit rows: it writes them create-only, which changes nothing stored."""
    batch = events(*[transaction(i, customer=f"C{i % 3}") for i in range(6)])
    first = make_service(parts).score_events(batch)
    rows = {r["RowKey"]: dict(r) for r in parts["audit"].read(NOW.replace(year=2020), NOW.replace(year=2030))}
    commits = parts["profiles"].commits
    again = make_service(parts).score_events(batch)
    assert again.duplicates == 6 and parts["profiles"].commits == commits
    assert parts["audit"].calls["write_decisions"] == 2 and parts["audit"].calls["claim"] == 1
    assert {r["RowKey"]: dict(r) for r in parts["audit"].read(NOW.replace(year=2020), NOW.replace(year=2030))} == rows
    assert [d.record for d in again.deliveries] == [d.record for d in first.deliveries]


def test_an_audit_write_lost_after_the_commit_is_made_by_the_redelivery(parts):
    parts["audit"].fail_writes = 1
    service = make_service(parts)
    batch = events(transaction(1), transaction(2, customer="C2"))
    with pytest.raises(ConnectionError):
        service.score_events(batch)
    assert parts["profiles"].load("C1").recent == ("T1",)  # committed, but not in the audit log
    assert parts["audit"].scored([(w.audit_pk, t) for t, w in parts["audit"].locate(["T1", "T2"]).items()]) == set()
    again = service.score_events(batch)  # the host's retry, same process
    assert again.duplicates == 2
    located = parts["audit"].locate(["T1", "T2"])
    assert parts["audit"].scored([(w.audit_pk, t) for t, w in located.items()]) == {"T1", "T2"}


def test_two_processes_scoring_one_new_id_for_two_customers_at_once_give_it_to_one(parts):
    barrier = threading.Barrier(2)
    services = [make_service({**parts, "profiles": ProfilesLoadedTogether(parts["profiles"], barrier)}) for _ in range(2)]
    outcomes: dict[str, object] = {}

    def score(customer: str, service) -> None:
        outcomes[customer] = service.score_request(transaction(1, customer=customer))

    threads = [threading.Thread(target=score, args=(c, s)) for c, s in zip(("C1", "C2"), services)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [c for c, o in outcomes.items() if not o.conflict]
    assert len(outcomes) == 2 and len(winners) == 1
    loser = "C2" if winners == ["C1"] else "C1"
    assert outcomes[loser].errors[0].field == "transaction_id" and "customer_id" in outcomes[loser].errors[0].problem
    assert parts["profiles"].load(winners[0]).profile.history_count == 1
    assert parts["profiles"].load(loser).etag is None  # nothing applied to the other customer
    assert parts["audit"].locate(["T1"])["T1"].customer_id == winners[0]


class WriterBetweenReadAndCommit(FakeProfiles):
    """Another instance applies a transaction to the customer between our read and our first commit."""

    def __init__(self) -> None:
        super().__init__()
        self.interfered = False

    def commit(self, stored, records):
        if not self.interfered:
            self.interfered = True
            from dataclasses import replace

            other = replace(records[0], transaction=replace(records[0].transaction, transaction_id="OTHER"))
            theirs = super().load(stored.customer_id)
            theirs.profile.apply(other.transaction)
            FakeProfiles.commit(self, theirs, [other])
        super().commit(stored, records)


def test_a_claim_whose_score_a_retry_changed_is_rewritten_with_the_committed_decision(parts):
    parts["profiles"] = WriterBetweenReadAndCommit()
    parts["model"] = FakeModelSource(FakeModel(score=lambda X: (0.1 + 0.2 * X[:, HISTORY]).astype(np.float32)))
    service = make_service(parts)
    (delivery,) = service.score_events(events(transaction(1))).deliveries
    assert delivery.record.features[HISTORY] == 1  # re-scored after OTHER was applied
    assert parts["audit"].calls["update_index"] == 1
    assert parts["audit"].locate(["T1"])["T1"].view() == index_view(delivery.record)
    assert parts["audit"].locate(["T1"])["T1"].fraud_score == pytest.approx(0.3)


def test_an_id_claimed_by_a_delivery_that_never_committed_is_scored_and_the_claim_rewritten(parts):
    """A process claimed T1 for C1 and died before its commit: the redelivery finds the claim
    (the same customer), commits, and the index row then says what was committed."""
    from fraud_events import decision_record

    parts["audit"].claim([decision_record("T1", NOW, "Low", customer="C1", score=0.42, model_version="old-v0")])
    (delivery,) = make_service(parts).score_events(events(transaction(1))).deliveries
    assert not delivery.duplicate and parts["profiles"].load("C1").profile.history_count == 1
    assert parts["audit"].locate(["T1"])["T1"].view() == index_view(delivery.record)


# -- RequestCombiner ---------------------------------------------------------------------------
class HeldRun:
    """A run function whose first call waits until released: later callers queue meanwhile."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, items):
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(timeout=10)
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {list(items)}")
        return [i * 10 for i in items]


def run_all(combiner: RequestCombiner, items: list[int], held: HeldRun) -> dict[int, object]:
    results: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            results[i] = combiner.submit(i)
        except Exception as exc:
            results[i] = exc

    first = threading.Thread(target=call, args=(items[0],))
    first.start()
    assert held.entered.wait(timeout=10)
    others = [threading.Thread(target=call, args=(i,)) for i in items[1:]]
    for t in others:
        t.start()
    assert combiner.wait_queued(len(others), timeout=10)
    held.release.set()
    for t in [first, *others]:
        t.join(timeout=10)
    return results


def test_requests_arriving_while_a_batch_is_in_flight_go_together_in_the_next():
    held = HeldRun()
    combiner = RequestCombiner(held)
    results = run_all(combiner, [1, 2, 3, 4, 5], held)
    assert results == {i: i * 10 for i in range(1, 6)}
    assert held.batches[0] == [1] and sorted(held.batches[1]) == [2, 3, 4, 5] and len(held.batches) == 2
    assert combiner.submit(7) == 70 and held.batches[-1] == [7]  # alone: runs at once, by itself


def test_a_failed_batch_fails_each_of_its_callers_and_not_the_next():
    held = HeldRun()
    combiner = RequestCombiner(held)
    results = run_all(combiner, [1, 2, -3], held)
    assert results[1] == 10
    assert isinstance(results[2], ValueError) and isinstance(results[-3], ValueError)
    assert combiner.submit(4) == 40


def test_a_batch_holds_at_most_max_batch_items():
    held = HeldRun()
    combiner = RequestCombiner(held, max_batch=3)
    results = run_all(combiner, list(range(1, 9)), held)
    assert results == {i: i * 10 for i in range(1, 9)}
    assert max(len(b) for b in held.batches) <= 3 and sorted(i for b in held.batches for i in b) == list(range(1, 9))


def test_concurrent_http_requests_are_scored_in_shared_batches_exactly_once(parts):
    service = make_service(parts)
    bodies = [transaction(i, customer=f"C{i % 5}") for i in range(40)] + [transaction(3, customer="C3")]
    outcomes = [None] * len(bodies)

    def call(k: int) -> None:
        outcomes[k] = service.score_request(bodies[k])

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(o is not None and not o.errors for o in outcomes)
    assert sum(not o.delivery.duplicate for o in outcomes) == 40  # T3 twice: one is a duplicate
    assert sum(parts["profiles"].load(f"C{c}").profile.history_count for c in range(5)) == 40
    assert parts["audit"].calls["write_decisions"] <= service._requests.batches <= len(bodies)
