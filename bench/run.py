"""Benchmarks, side by side in one run against baselines; results to docs/BENCHMARKS.md.

    make bench          (= python -m tools.azurite --free-ports -- python -m bench.run)

(a) the seed's way (pandas DataFrame + pickled scikit-learn per request) against this
    scoring path: the model call alone, and the whole in-process per-transaction path;
(b) Event Hub batch throughput on Azurite: this app's batched, exactly-once path against
    a naive per-event implementation (30-day history query + replay + two writes);
(c) per-transaction cost for a customer with 10 and with 10,000 prior transactions;
(b2) the cost of a shadow challenger: Event Hub batches on Azurite with and without a
    shadow set, alternating batch by batch in one run, and the model calls alone.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from shared.domain.metrics import percentiles

ROOT = Path(__file__).resolve().parent.parent
LAGOS = timezone(timedelta(hours=1))


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return percentiles(values, (q,))[f"p{q}"]


def row(name: str, values: list[float]) -> str:
    return f"| {name} | {statistics.median(values):.3f} | {pct(values, 99):.3f} | {1000 / statistics.median(values):,.0f} |"


def train_small_model(folder: Path):
    """Simulate, train, and return (sklearn model, ONNX FraudModel, feature rows) for the benches."""
    from shared.domain.features import FEATURE_NAMES
    from shared.domain.model import load_model
    from training.pipeline import simulate_csv, train_artifact
    from training.train import fit_classifier

    data = simulate_csv(folder / "bench.csv", customers=600, days=40, seed=5)
    artifact = train_artifact(data, folder / "model", ["--max-iter", "150"])
    X = np.random.default_rng(0).normal(size=(2000, len(FEATURE_NAMES))).astype(np.float32)
    y = (X[:, 0] > 1.5).astype(int)
    sk_model = fit_classifier(X, y, 150, 0)  # same estimator and size, for the seed's pickled-model path
    return sk_model, load_model(artifact), artifact


def bench_model_and_path(sk_model, onnx_model, repeat: int) -> list[str]:
    from bench.naive import SeedScorer, as_transaction, transaction_at
    from shared.domain.decision import DecisionPolicy
    from shared.domain.features import FEATURE_NAMES, CustomerProfile, as_matrix, features_then_record
    from shared.domain.transaction import validate_transaction

    seed = SeedScorer(sk_model, list(FEATURE_NAMES))
    body = {"customer_id": "C12345", "transaction_amount": 250000, "device_id": "new_device_99",
            "merchant_category": "electronics", "channel": "online"}
    one = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
    import pandas as pd

    frame = pd.DataFrame(one, columns=list(FEATURE_NAMES))
    profile = CustomerProfile()
    start = datetime(2026, 3, 1, 12, tzinfo=LAGOS)
    for i in range(200):
        profile.apply(as_transaction(transaction_at(i, "C12345", start + timedelta(hours=3 * i))))
    state = profile.to_json()
    policy = DecisionPolicy()
    now = datetime.now(timezone.utc)

    def ours_whole() -> None:
        outcome = validate_transaction({**body, "transaction_id": "X1", "timestamp": "2026-03-30T02:00:00+01:00"},
                                       now=now)
        p = CustomerProfile.from_json(state)
        vector = features_then_record(p, outcome.transaction)
        score = float(onnx_model.predict(as_matrix([vector]))[0])
        policy.decide(outcome.transaction, score, vector)
        p.to_json()

    seed.predict(body), ours_whole()  # warm up
    results = {
        "seed: model call (sklearn predict_proba on a 1-row DataFrame)": timed(lambda: sk_model.predict_proba(frame), repeat),
        "ours: model call (onnxruntime, 1 row)": timed(lambda: onnx_model.predict(one), repeat),
        "seed: whole request (DataFrame + features + pickled sklearn)": timed(lambda: seed.predict(body), repeat),
        "ours: whole path (validate + profile load + features + ONNX + decide + profile save)": timed(ours_whole, repeat),
    }
    batch = np.zeros((100, len(FEATURE_NAMES)), dtype=np.float32)
    per_row = [v / 100 for v in timed(lambda: onnx_model.predict(batch), repeat)]
    results["ours: model call per row, in a batch of 100 (one ONNX call)"] = per_row
    lines = ["| path | median ms | p99 ms | per second (1/median) |", "| --- | --- | --- | --- |"]
    lines += [row(k, v) for k, v in results.items()]
    return lines


def stream_bodies(n: int, customers: int, day: datetime, tag: str) -> list[dict]:
    from bench.naive import transaction_at

    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        c = f"C{tag}{int(rng.integers(customers)):05d}"
        out.append({**transaction_at(i, c, day + timedelta(seconds=int(i * 86400 / n))), "transaction_id": f"{tag}-{i}"})
    return out


def bench_stream(onnx_model, events: int) -> list[str]:
    from bench.naive import NaiveStreamScorer
    from shared.composition import app_services
    from tools.send_events import event_hub_batch
    from functions.score_stream import score_stream

    services = app_services()
    services.ensure_resources()
    day = datetime(2026, 3, 20, tzinfo=LAGOS)
    ours = stream_bodies(events, events // 3, day, "E")
    started = time.perf_counter()
    for k in range(0, len(ours), 100):
        score_stream(event_hub_batch(ours[k:k + 100], partition="0", first_sequence=k))
    ours_s = time.perf_counter() - started
    # the same events again: at-least-once redelivery
    started = time.perf_counter()
    for k in range(0, len(ours), 100):
        score_stream(event_hub_batch(ours[k:k + 100], partition="0", first_sequence=k))
    replay_s = time.perf_counter() - started

    naive = NaiveStreamScorer(services.table_service, onnx_model, "naive" + uuid.uuid4().hex[:8])
    bodies = stream_bodies(events, events // 3, day, "N")
    started = time.perf_counter()
    for body in bodies:
        naive.score(body)
    naive_s = time.perf_counter() - started
    return [
        "| implementation | events | seconds | events/s | exactly once |",
        "| --- | --- | --- | --- | --- |",
        f"| naive per event (30-day query + replay + 2 writes) | {events} | {naive_s:.2f} | {events / naive_s:,.0f} | no |",
        f"| this app: batches of 100, one ONNX call, one group transaction per customer | {events} | {ours_s:.2f} | {events / ours_s:,.0f} | yes |",
        f"| this app: the same batches redelivered (all duplicates) | {events} | {replay_s:.2f} | {events / replay_s:,.0f} | yes |",
    ]


def bench_shadow(champion, artifact, events: int, repeat: int) -> list[str]:
    """Batches of 100 through the Event Hub function, alternately without and with a shadow
    challenger set (between batches, untimed: the shadow pointer moved, the serving model
    refreshed and the challenger loaded, in both arms alike), so both arms share the run's
    data, storage state and machine load; then the model calls alone on one batch of 100 rows."""
    from shared.composition import app_services
    from shared.domain.features import FEATURE_NAMES
    from shared.domain.model import ModelArtifact, load_model
    from tools.send_events import event_hub_batch
    from functions.score_stream import score_stream

    services = app_services()
    challenger = ModelArtifact(artifact.onnx_bytes, {**artifact.manifest, "version": f"{artifact.version}-shadow"})
    services.registry.publish(challenger)  # a challenger of the champion's size (the same trees)
    from shared.service.model_release import sign_model

    sign_model(services.registry, services.release_signer, challenger.version, approved_by="bench")  # serving needs it signed
    shadow = load_model(challenger)
    bodies = stream_bodies(events, events // 3, datetime(2026, 3, 21, tzinfo=LAGOS), "S")
    arms: dict[str, list[float]] = {"champion only": [], "champion + shadow": []}
    for n, k in enumerate(range(0, len(bodies), 100)):
        with_shadow = n % 2 == 1
        services.registry.set_shadow(challenger.version if with_shadow else None)
        services.serving_model.refresh_now()  # in the shadowed arm, this loads the challenger ...
        if not with_shadow:
            load_model(services.registry.load(challenger.version))  # ... so the other arm does the same work
        assert (services.serving_model.shadow() is not None) == with_shadow
        batch = event_hub_batch(bodies[k:k + 100], partition="1", first_sequence=k)
        arms["champion + shadow" if with_shadow else "champion only"] += timed(lambda: score_stream(batch), 1)
    services.registry.clear_shadow()
    rows = np.random.default_rng(2).normal(size=(100, len(FEATURE_NAMES))).astype(np.float32)
    calls = {"champion only": timed(lambda: champion.predict(rows), repeat),
             "champion + shadow": timed(lambda: (champion.predict(rows), shadow.predict(rows)), repeat)}
    (plain, shadowed), (plain_calls, shadowed_calls) = arms.values(), calls.values()
    lines = ["| scoring | batches of 100 | median ms per batch | mean ms per batch | events/s | "
             "model calls per batch, median ms |", "| --- | --- | --- | --- | --- | --- |"]
    for (name, times), call_times in zip(arms.items(), calls.values()):
        lines.append(f"| {name} | {len(times)} | {statistics.median(times):.1f} | {statistics.mean(times):.1f} | "
                     f"{100 * len(times) / (sum(times) / 1000):,.0f} | {statistics.median(call_times):.3f} |")
    paired = [with_shadow - without for without, with_shadow in zip(plain, shadowed)]  # neighbouring batches
    margin = 2 * statistics.stdev(paired) / len(paired) ** 0.5
    lines.append(f"| cost of the shadow (neighbouring batches paired) | {len(paired)} pairs | "
                 f"{statistics.median(paired):+.1f} | {statistics.mean(paired):+.1f} ± {margin:.1f} (2 s.e.) | | "
                 f"{statistics.median(shadowed_calls) - statistics.median(plain_calls):+.3f} |")
    return lines


def bench_history_length(onnx_model, repeat: int) -> list[str]:
    from bench.naive import NaiveStreamScorer, as_transaction, transaction_at
    from shared.composition import app_services
    from training.backfill import build_profiles

    services = app_services()
    naive = NaiveStreamScorer(services.table_service, onnx_model, "naivehist" + uuid.uuid4().hex[:6])
    lines = ["| prior transactions | naive ms per transaction (median) | this app ms per transaction (median) |",
             "| --- | --- | --- |"]
    for prior in (10, 10_000):
        customer = f"H{prior}"
        start = datetime(2026, 3, 20, tzinfo=LAGOS) - timedelta(days=29)
        history = [transaction_at(i, customer, start + timedelta(seconds=int(i * 29 * 86400 / prior))) for i in range(prior)]
        # naive store: the raw history rows it will query
        for k in range(0, prior, 100):
            naive.table.submit_transaction([("upsert", {"PartitionKey": customer, "RowKey": b["transaction_id"],
                                                        "timestamp_iso": b["timestamp"], "body": __import__("json").dumps(b)})
                                            for b in history[k:k + 100]])
        # this app: the same history as a profile
        services.profiles.backfill(customer, build_profiles([as_transaction(b) for b in history], services.profiles.new_profile)[customer], overwrite=True)
        services.profiles.cache.evict(services.profiles.partition_of(customer))
        when = datetime(2026, 3, 20, 12, tzinfo=LAGOS)
        new = [transaction_at(prior + j, customer, when + timedelta(minutes=j)) for j in range(repeat)]
        naive_ms = [timed(lambda b=b: naive.score(b), 1)[0] for b in new[: max(3, repeat // 4)]]
        ours_ms = []
        for b in new:
            services.profiles.cache.evict(services.profiles.partition_of(customer))  # cold: read the profile from storage every time
            ours_ms += timed(lambda b=b: services.scoring.score_transactions([as_transaction(b)], "bench"), 1)
        lines.append(f"| {prior:,} | {statistics.median(naive_ms):.1f} | {statistics.median(ours_ms):.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--shadow-events", type=int, default=3000, help="events of (b2), half of them shadowed")
    parser.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    os.environ.setdefault("FRAUD_MODEL_CONTAINER", "bench-models")
    from shared.adapters.pseudonym_key import ensure_local_key

    ensure_local_key(os.environ, Path(__file__).resolve().parent.parent)  # the profiles' pseudonym key
    from tools.models import ensure_local_release_key

    ensure_local_release_key()  # the development release key (data/keys/): the bench's models are signed
    import tempfile

    from bench.doc_sections import write_section
    from shared.composition import app_services
    from training.pipeline import publish_current

    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    sk_model, onnx_model, artifact = train_small_model(folder)
    services = app_services()
    services.ensure_resources()
    publish_current(services.registry, artifact, services.release_signer, approved_by="bench")

    load_before = os.getloadavg()[0]  # other work on the shared machine, as the measurements start
    print("(a) model call and whole path ...", flush=True)
    a = bench_model_and_path(sk_model, onnx_model, args.repeat)
    print("\n".join(a), flush=True)
    print("(b) Event Hub batches on Azurite ...", flush=True)
    b = bench_stream(onnx_model, args.events)
    print("\n".join(b), flush=True)
    print("(b2) shadow challenger cost ...", flush=True)
    b2 = bench_shadow(onnx_model, artifact, args.shadow_events, args.repeat)
    print("\n".join(b2), flush=True)
    print("(c) history length ...", flush=True)
    c = bench_history_length(onnx_model, 20)
    print("\n".join(c), flush=True)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    doc = f"""# Benchmarks

Produced by `make bench` (`python -m tools.azurite --free-ports -- python -m bench.run`) on
{datetime.now(timezone.utc):%Y-%m-%d} ({machine}). The machine's 1-minute load average was
{load_before:.2f} as the measurements started (the benchmark's own model training just before
them included; other jobs share the box). Storage is Azurite on the same machine,
sharing its two cores with the benchmark; absolute storage numbers are Azurite's and the
Python SDK's, not Azure's. Every row of a table was measured in the same run.

## (a) The seed's way against this scoring path (in process, no storage)

{chr(10).join(a)}

## (b) Event Hub batch throughput on Azurite ({args.events} events, ~3 per customer)

{chr(10).join(b)}

## (b2) The cost of a shadow challenger ({args.shadow_events} events in batches of 100)

`python -m tools.models shadow <version>` makes serving score every batch with a second
model beside the champion, logged in the audit entry only. Batches alternate between no
shadow and a shadow set (a challenger of the champion's size), so both arms share the run's
data, storage and machine load; the last column is the model calls alone on 100 rows, in
process.

{chr(10).join(b2)}

## (c) Cost per transaction against the length of the customer's history

The naive scorer queries and replays the last 30 days; this app reads one profile row
(bucketed aggregates) whatever the history, then writes one entity-group transaction.

{chr(10).join(c)}
"""
    # only this run's section: the load section (bench/load.py) and hand-written ones are kept
    write_section(Path(args.out), "bench.run", doc, top=True)
    print(f"wrote the bench.run section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
