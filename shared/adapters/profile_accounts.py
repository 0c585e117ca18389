"""Customer profiles spread over several storage accounts, one ``ProfileStore`` each.

A storage account serves about 20,000 table entities/s (docs/CAPACITY.md); at 10,000 tx/s the
profiles alone need more than that (a read and a two-entity commit per transaction). So
``FRAUD_PROFILE_ACCOUNTS`` may name N accounts, and each customer lives in exactly one of
them: ``shard_of(customer pseudonym, N, PROFILE_ACCOUNT_SALT)`` (the keyed pseudonym that is also
the customer's partition key, ``shared.domain.pseudonym``), the tables' one sharding rule with a
salt of its own, so the account does not follow the audit log's or the index's shard of
anything. Every account has the same table (``FRAUD_PROFILE_TABLE``) and layout, and a
customer's partition (profile row and ``txn:`` rows) is whole in one account, so the
entity-group commit and its ETag condition are exactly those of one ``ProfileStore``.

The route is a pure function of the customer's pseudonym (so of the id and the pseudonym key)
and the list's length: every scoring process, the HTTP path, the dashboard and the backfill
agree on it without coordination. Changing the pseudonym key moves every customer.
Changing N moves most customers (crc32 modulo N is not a consistent hash): from N to N+1
accounts about N/(N+1) of them, half when N doubles. A moved customer's profile starts empty
in its new account unless re-backfilled, so N is chosen at deployment for the target load,
not tuned while running.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from shared.adapters.tables import shard_of
from shared.domain.decision_record import DecisionRecord
from shared.domain.features import CustomerProfile
from shared.domain.pseudonym import Pseudonyms
from shared.domain.transaction import Transaction
from shared.service.ports import StoredProfile

PROFILE_ACCOUNT_SALT = b"profile-account:"


def account_of(customer_pseudonym: str, accounts: int) -> int:
    """The index of the account that holds the profile of the customer of that pseudonym."""
    return shard_of(customer_pseudonym, accounts, PROFILE_ACCOUNT_SALT)


class ProfileAccountRouter:
    """A ``ProfilePort`` over N profile stores (one per account): each call goes to the store
    of its customer. Also routes ``backfill`` and creates the table in every account."""

    def __init__(self, stores: Sequence[Any], *, pseudonyms: Pseudonyms) -> None:
        if not stores:
            raise ValueError("a profile router needs at least one store")
        self.stores = list(stores)
        self.pseudonyms = pseudonyms

    def store_for(self, customer_id: str) -> Any:
        return self.stores[account_of(self.pseudonyms.customer(customer_id), len(self.stores))]

    def new_profile(self) -> CustomerProfile:
        return self.stores[0].new_profile()

    def ensure_table(self) -> None:
        for store in self.stores:
            store.ensure_table()

    def load(self, customer_id: str) -> StoredProfile:
        return self.store_for(customer_id).load(customer_id)

    def applied(self, customer_id: str, transaction_ids: Iterable[str],
                arriving: Mapping[str, Transaction] | None = None) -> dict[str, DecisionRecord]:
        return self.store_for(customer_id).applied(customer_id, transaction_ids, arriving)

    def commit(self, stored: StoredProfile, records: Sequence[DecisionRecord]) -> None:
        self.store_for(stored.customer_id).commit(stored, records)

    def backfill(self, customer_id: str, profile: CustomerProfile, overwrite: bool = False) -> bool:
        return self.store_for(customer_id).backfill(customer_id, profile, overwrite)

    def pending_alert(self, customer_id: str, transaction_id: str) -> bool:
        return self.store_for(customer_id).pending_alert(customer_id, transaction_id)

    def mark_alert_sent(self, customer_id: str, transaction_id: str) -> None:
        self.store_for(customer_id).mark_alert_sent(customer_id, transaction_id)

    def recent_transactions(self, customer_id: str, limit: int = 20) -> list[DecisionRecord]:
        return self.store_for(customer_id).recent_transactions(customer_id, limit)
