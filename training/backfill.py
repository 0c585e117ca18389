"""Backfill customer profiles in Table Storage from historical transactions.

    python -m training.backfill --data history.csv

Replays the history through the same feature engine as serving (``CustomerProfile``, with
the profile store's keyed device pseudonyms) and writes one profile row per customer (keyed
by the customer's pseudonym, as serving reads it), so the first live transactions are scored
against real behaviour instead of empty profiles. Existing profiles are left alone
unless ``--overwrite``: live scoring owns them once it has started.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from shared.domain.features import CustomerProfile, replay
from shared.domain.merchant_risk import MerchantHistory, as_of_hour
from shared.adapters.profile_table import ProfileStore
from training.dataset import LabelledTransactions, merchant_risk_replay
from shared.domain.transaction import Transaction


def build_profiles(transactions: Iterable[Transaction],
                   new_profile: Callable[[], CustomerProfile]) -> dict[str, CustomerProfile]:
    """Each customer's profile replayed from history. ``new_profile`` is the profile store's
    (``ProfileStore.new_profile``): its profiles key devices by the keyed device pseudonym,
    exactly as serving's, so the stored profile holds no device id."""
    profiles: dict[str, CustomerProfile] = {}
    for txn in sorted(transactions, key=lambda t: t.epoch_seconds):
        profile = profiles.get(txn.customer_id)
        if profile is None:
            profile = profiles[txn.customer_id] = new_profile()
        profile.apply(txn)
    return profiles


def write_profiles(store: ProfileStore, profiles: dict[str, CustomerProfile], overwrite: bool = False,
                   workers: int = 8) -> dict[str, int]:
    with ThreadPoolExecutor(workers) as pool:
        written = sum(pool.map(lambda item: store.backfill(item[0], item[1], overwrite), profiles.items()))
    return {"written": written, "kept": len(profiles) - written}


def build_merchant_risk(data: LabelledTransactions, delay_days: float) -> tuple[dict[str, MerchantHistory], float]:
    """Merchant histories as the timer would hold them at the end of the history."""
    replayed = merchant_risk_replay(data, delay_days)
    replay(data.transactions, merchants=replayed)  # the visits need each customer's features
    as_of = as_of_hour(float(data.times.max())) if len(data) else 0.0
    return replayed.histories, as_of


def main(argv: list[str] | None = None) -> int:
    from shared.composition import app_services
    from training.dataset import read_labelled_csv

    parser = argparse.ArgumentParser(prog="python -m training.backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = read_labelled_csv(args.data)
    services = app_services()
    profiles = build_profiles(data.transactions, services.profiles.new_profile)
    counts = write_profiles(services.profiles, profiles, args.overwrite)
    histories, as_of = build_merchant_risk(data, services.config.label_delay_days)
    services.merchant_store.backfill(histories, as_of)
    print(f"backfilled {len(histories)} merchants' risk and {counts['written']} profiles ({counts['kept']} already present) from {len(data)} transactions "
          f"in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
