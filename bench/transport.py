"""App CPU per storage request: azure-core's RequestsTransport against LeanTransport (issue #17).

    .venv/bin/python -m tools.azurite --free-ports -- .venv/bin/python -m bench.transport

Against the private Azurite that tools.azurite starts (its connection string in
AzureWebJobsStorage), for each transport in the same run: a TableClient built by StorageAccount
(FRAUD_STORAGE_TRANSPORT=requests | lean), N=2000 point reads (``read_entity``) and N=500
``submit_batch`` commits of one create, after a warm-up. It prints this process's CPU
(``time.process_time``) per request, side by side, and their ratio. Azurite is another process:
its CPU is not counted. Two rounds in alternating order, summed, so neither transport always
runs first.
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Callable

from shared.adapters.storage_account import StorageAccount
from shared.adapters.tables import read_entity, submit_batch

TRANSPORTS = ("requests", "lean")
READS = 2000
COMMITS = 500
ROWS = 100
WARM_UP = 50
ROUNDS = 2


def table_for(kind: str, env: dict[str, str]):
    account = StorageAccount.from_settings({**env, "FRAUD_STORAGE_TRANSPORT": kind})
    if account.transport_kind != kind:
        sys.exit(f"a proxy is set in the environment, so StorageAccount builds {account.transport_kind}, not {kind}: "
                 "unset it to compare")
    service = account.table_service()
    name = f"bench{kind}{uuid.uuid4().hex[:8]}"
    service.create_table(name)
    table = service.get_table_client(name)
    for start in range(0, ROWS, 100):
        submit_batch(table, [("create", {"PartitionKey": "p", "RowKey": f"r{k:03d}", "state": "{}", "n": k})
                             for k in range(start, min(start + 100, ROWS))])
    return table


def cpu_of(n: int, one: Callable[[int], None]) -> float:
    start = time.process_time()
    for i in range(n):
        one(i)
    return time.process_time() - start


def main() -> None:
    env = dict(os.environ)
    if not env.get("AzureWebJobsStorage"):
        sys.exit("AzureWebJobsStorage is not set: run under `python -m tools.azurite --free-ports -- ...`")
    tables = {kind: table_for(kind, env) for kind in TRANSPORTS}
    cpu = {(kind, op): 0.0 for kind in TRANSPORTS for op in ("read", "commit")}
    for round_ in range(ROUNDS):
        for kind in (TRANSPORTS if round_ % 2 == 0 else TRANSPORTS[::-1]):
            table = tables[kind]

            def read(i: int, table=table) -> None:
                assert read_entity(table, "p", f"r{i % ROWS:03d}") is not None

            def commit(i: int, table=table, round_=round_) -> None:
                submit_batch(table, [("create", {"PartitionKey": f"c{round_}", "RowKey": f"{i:05d}", "state": "{}"})])

            cpu_of(WARM_UP, read)
            cpu[(kind, "read")] += cpu_of(READS, read)
            cpu[(kind, "commit")] += cpu_of(COMMITS, commit)

    print(f"App CPU per storage request (time.process_time of this process; Azurite not counted), "
          f"{ROUNDS} rounds on {os.cpu_count()} cores")
    print(f"{'operation':<34} {'requests':>12} {'lean':>12} {'lean/requests':>14}")
    for op, n, label in (("read", READS, f"point read (N={READS})"),
                         ("commit", COMMITS, f"submit_batch of 1 create (N={COMMITS})")):
        per = {kind: cpu[(kind, op)] / (n * ROUNDS) * 1000 for kind in TRANSPORTS}
        print(f"{label:<34} {per['requests']:>9.3f} ms {per['lean']:>9.3f} ms {per['lean'] / per['requests']:>14.2f}")


if __name__ == "__main__":
    main()
