"""Storage requests and app CPU per event on each scoring path, against the floor (issue #17).

    python -m tools.azurite --free-ports -- python -m bench.storage_requests [--rounds 3]

On a private Azurite, with batches of 100 distinct customers who have profiles already, all
events in one UTC hour, each path is run ``--rounds`` times through the decorated functions
(real ``func.EventHubEvent`` / ``func.HttpRequest`` objects, as the Functions host calls them):

1. Event Hub batch, profiles not cached (evicted from the process's profile cache first);
2. Event Hub batch, profiles cached;
3. HTTP ``POST /api/score``, cached (100 requests, one per customer);
4. HTTP ``POST /api/score``, not cached (each customer's profile evicted before its request);
5. Event Hub redelivery: path 2's batch again, every event a duplicate.

*Requests* are counted by ``bench/request_counter.py``: a wrapper around azure-core's transport,
below the retry policy (every retry is a request), installed through the
``transport_factory`` hook of ``shared/adapters/storage_account.py``. *App CPU* is
``time.process_time()`` of this process around the function calls (every thread of it; Azurite
is another process, so storage is excluded), divided by the events. *Floor* is the issue's: the
requests the path cannot do without, from the configuration (``FRAUD_AUDIT_SHARDS``, the id
index's ``INDEX_SHARDS``) and the batch's own ids (the audit and id-index partitions it touches).

Each row is measured for every *variant* in ``VARIANTS`` in the same run: today's path is the
``baseline``; a later optimisation adds its own ``Variant`` (settings it changes, or a hook it
installs) and gets its rows and its ratios to the baseline side by side.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
SECTION = "bench.storage_requests"
COMMAND = "python -m tools.azurite --free-ports -- python -m bench.storage_requests"
CUSTOMERS = 100  # one batch: 100 distinct customers, one event each


# -- variants: today's path is the baseline; a new path is one more entry --------------------
@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    env: Mapping[str, str] = field(default_factory=dict)  # settings this variant changes
    # A hook to set before the variant's clients are built (returns its undo), if any: e.g. set
    # ``storage_account.transport_factory`` to build another transport; the counter wraps it.
    install: Callable[[], Callable[[], None]] | None = None


VARIANTS: dict[str, Variant] = {
    "baseline": Variant("baseline", "today's path (the Azure SDK over requests/urllib3, as in production)"),
}


# -- paths ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PathSpec:
    key: str
    title: str
    floor_text: str  # how the floor is made, per batch of 100


PATHS = (
    PathSpec("eh_uncached", "Event Hub batch, profiles not cached",
             "{customers} profile reads + {customers} group commits + {audit} audit + {index} index writes"),
    PathSpec("eh_cached", "Event Hub batch, profiles cached",
             "{customers} group commits + {audit} audit + {index} index writes"),
    PathSpec("eh_redelivery", "Event Hub redelivery (all duplicates)",
             "{customers} refused commits (one request per event)"),
    PathSpec("http_cached", "HTTP `POST /api/score`, cached", "1 commit + 1 audit + 1 index write per request"),
    PathSpec("http_uncached", "HTTP `POST /api/score`, not cached",
             "1 profile read + 1 commit + 1 audit + 1 index write per request"),
)


@dataclass
class Sample:
    events: int
    requests: dict[Any, int]  # Operation -> count
    statuses: dict[tuple[Any, int | None], int]
    cpu_seconds: float
    floor: int
    floor_parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@dataclass
class PathResult:
    variant: str
    path: PathSpec
    samples: list[Sample] = field(default_factory=list)
    floor_text: str = ""

    @property
    def events(self) -> int:
        return sum(s.events for s in self.samples)

    def per_event(self) -> list[float]:
        return [s.total / s.events for s in self.samples]

    def cpu_ms(self) -> list[float]:
        return [1000 * s.cpu_seconds / s.events for s in self.samples]

    @property
    def requests_per_event(self) -> float:
        return sum(s.total for s in self.samples) / self.events

    @property
    def floor_per_event(self) -> float:
        return sum(s.floor for s in self.samples) / self.events


# -- events ----------------------------------------------------------------------------------
def body(txn_id: str, customer: str, when: datetime, k: int) -> dict[str, Any]:
    return {
        "transaction_id": txn_id, "customer_id": customer,
        "transaction_amount": float(2000 + (k * 7919) % 90000), "currency": "NGN",
        "timestamp": when.isoformat(), "device_id": f"D{k % 3}", "merchant_id": f"M{k % 20}",
        "merchant_category": ("grocery", "electronics", "fuel", "transfer")[k % 4],
        "channel": ("pos", "online", "mobile")[k % 3], "country": "NG",
    }


class Workload:
    """Fresh transaction ids for each batch; every batch's events in one UTC hour (``hour``),
    one minute per batch so each customer's events go forward in time."""

    def __init__(self, tag: str, hour: datetime, customers: int = CUSTOMERS) -> None:
        self.tag, self.hour = tag, hour
        self.customers = [f"C{tag}{i:03d}" for i in range(customers)]
        self._batches = 0

    def batch(self) -> list[dict[str, Any]]:
        b = self._batches
        self._batches += 1
        if b >= 59:
            raise RuntimeError("more batches than minutes in the hour: fewer --rounds")
        return [body(f"{self.tag}-{b:02d}-{i:03d}", c, self.hour + timedelta(minutes=b, seconds=i % 60), i)
                for i, c in enumerate(self.customers)]


def floor_of(path: str, bodies: Sequence[dict[str, Any]], audit_shards: int) -> tuple[int, dict[str, int]]:
    """The issue's floor for one batch (the requests the path cannot do without) and its parts:
    customers, and the audit and id-index partitions the batch's ids fall in (at most
    ``FRAUD_AUDIT_SHARDS`` per hour and ``INDEX_SHARDS``)."""
    from shared.adapters.audit_table import index_partition, partition_key

    customers = len({b["customer_id"] for b in bodies})
    audit = len({partition_key(datetime.fromisoformat(b["timestamp"]), b["transaction_id"], audit_shards) for b in bodies})
    index = len({index_partition(b["transaction_id"]) for b in bodies})
    total = {"eh_uncached": 2 * customers + audit + index, "eh_cached": customers + audit + index,
             "eh_redelivery": customers, "http_cached": 3 * len(bodies), "http_uncached": 4 * len(bodies)}[path]
    return total, {"customers": customers, "audit": audit, "index": index}


# -- the model -------------------------------------------------------------------------------
def small_artifact(version: str):
    """A small, real ONNX model over the current feature list (the model call is <3% of the
    path's CPU, issue #17), trained on random features with rare labels unrelated to them: it
    scores about the base rate everywhere, so decisions are Low and raise no alert (an alert
    adds a queue message and an outbox update; the issue's table has none)."""
    import numpy as np

    from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH
    from shared.domain.model import DEFAULT_THRESHOLDS, ModelArtifact, sha256_hex
    from training.train import fit_classifier, to_onnx

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, len(FEATURE_NAMES))).astype(np.float32)
    y = (rng.random(len(X)) < 0.02).astype(int)
    onnx_bytes = to_onnx(fit_classifier(X, y, max_iter=20, seed=0))
    manifest = {"version": version, "feature_names": list(FEATURE_NAMES), "feature_schema_hash": FEATURE_SCHEMA_HASH,
                "thresholds": dict(DEFAULT_THRESHOLDS), "onnx_sha256": sha256_hex(onnx_bytes)}
    return ModelArtifact(onnx_bytes, manifest)


# -- one variant's run -----------------------------------------------------------------------
class BatchLog(logging.Handler):
    """The ``score_batch`` summaries score_stream logs: each batch is checked (all scored, the
    redelivery all duplicates, nothing dead-lettered) so a row never counts a broken run."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.batches: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.batches.append(json.loads(record.getMessage()))
        except ValueError:
            pass


@contextmanager
def variant_env(variant: Variant, tag: str) -> Iterator[None]:
    names = {"FRAUD_PROFILE_TABLE": f"profiles{tag}", "FRAUD_AUDIT_TABLE": f"scores{tag}",
             "FRAUD_ALERT_QUEUE": f"fraud-alerts-{tag}", "FRAUD_DEAD_LETTER_CONTAINER": f"dead-letter-{tag}",
             "FRAUD_MODEL_CONTAINER": f"models-{tag}", "FRAUD_LABEL_TABLE": f"labels{tag}",
             "FRAUD_LABELS_CONTAINER": f"labels-{tag}", "FRAUD_MONITORING_CONTAINER": f"monitoring-{tag}",
             "FRAUD_RETRAIN_CONTAINER": f"retrain-requests-{tag}", "FRAUD_MERCHANT_TABLE": f"merchantrisk{tag}",
             "FRAUD_AGGREGATE_TABLE": f"monitoraggregates{tag}",
             "FRAUD_TRAINING_SAMPLE_CONTAINER": f"training-sample-{tag}",
             "FRAUD_ARCHIVE_CONTAINER": f"decision-archive-{tag}",
             "FRAUD_ARCHIVE_STAGING_CONTAINER": f"decision-staging-{tag}"}
    changed = {**names, **variant.env}
    saved = {k: os.environ.get(k) for k in changed}
    os.environ.update(changed)
    undo = variant.install() if variant.install else None
    try:
        yield
    finally:
        if undo:
            undo()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_variant(variant: Variant, rounds: int, artifact, say: Callable[[str], None]) -> list[PathResult]:
    import azure.functions as func

    from bench.request_counter import RequestCounter, counting
    from shared.composition import app_services, reset_app_services
    from tools.send_events import event_hub_batch
    from training.pipeline import publish_current

    tag = uuid.uuid4().hex[:6]
    with variant_env(variant, tag):
        reset_app_services()
        counter = RequestCounter(
            names={os.environ["FRAUD_PROFILE_TABLE"]: "profiles", os.environ["FRAUD_AUDIT_TABLE"]: "audit",
                   os.environ["FRAUD_MERCHANT_TABLE"]: "merchantrisk", os.environ["FRAUD_MODEL_CONTAINER"]: "models",
                   os.environ["FRAUD_AGGREGATE_TABLE"]: "aggregates", os.environ["FRAUD_ALERT_QUEUE"]: "alerts",
                   os.environ["FRAUD_ARCHIVE_STAGING_CONTAINER"]: "decision-staging",
                   os.environ["FRAUD_TRAINING_SAMPLE_CONTAINER"]: "training-sample",
                   os.environ["FRAUD_DEAD_LETTER_CONTAINER"]: "dead-letter"},
            partition_label=lambda table, pk: ("id index" if pk.startswith("idx-") else "decisions")
            if table == "audit" else None)
        with counting(counter):  # every client app_services builds sends through the counter
            from functions.score_http import score_http
            from functions.score_stream import score_stream

            services = app_services()
            services.ensure_resources()
            publish_current(services.registry, artifact, services.release_signer, approved_by="bench")
            shards = services.config.audit_shards
            stores = services.profile_stores
            hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            work = Workload(tag, hour)
            log = BatchLog()
            stream_log = logging.getLogger("fraud.score_stream")
            stream_log.addHandler(log)
            stream_log.setLevel(logging.INFO)
            sequence = [0]

            def evict(customers: Sequence[str]) -> None:
                for store in stores:  # the customer's own store holds it; evicting elsewhere is a no-op
                    for c in customers:
                        store.cache.evict(store.partition_of(c))

            def eh(bodies: list[dict[str, Any]], first_sequence: int | None = None) -> Callable[[], None]:
                if first_sequence is None:
                    first_sequence, sequence[0] = sequence[0], sequence[0] + len(bodies)
                batch = event_hub_batch(bodies, partition="0", first_sequence=first_sequence)
                return lambda: score_stream(batch)

            def http_requests(bodies: list[dict[str, Any]]) -> list[func.HttpRequest]:
                return [func.HttpRequest(method="POST", url="http://localhost/api/score",
                                         headers={"content-type": "application/json"}, params={}, route_params={},
                                         body=json.dumps(b).encode()) for b in bodies]

            def measure(calls: list[Callable[[], Any]], before_each: Callable[[int], None] | None = None) -> tuple:
                counter.reset()
                cpu, outs = 0.0, []
                for k, call in enumerate(calls):
                    if before_each is not None:
                        before_each(k)  # untimed, makes no request
                    started = time.process_time()
                    outs.append(call())
                    cpu += time.process_time() - started
                return counter.snapshot(), counter.statuses(), cpu, outs

            say(f"[{variant.name}] set-up: profiles for {len(work.customers)} customers, model, caches warm")
            eh(work.batch())()  # the profiles exist; the model, merchant cache and connections are warm
            for r in http_requests(work.batch()[:5]):
                score_http(r)
            results = {p.key: PathResult(variant.name, p) for p in PATHS}

            def record(path: str, bodies, measured, events: int) -> None:
                requests, statuses, cpu, _ = measured
                results[path].samples.append(Sample(events, requests, statuses, cpu, *floor_of(path, bodies, shards)))

            def check_batch(scored: int, duplicates: int) -> None:
                last = log.batches[-1]
                if (last["scored"], last["duplicates"], last["dead_lettered"]) != (scored, duplicates, 0):
                    raise RuntimeError(f"unexpected batch outcome: {last}")

            for n in range(rounds):
                bodies = work.batch()
                evict(work.customers)
                record("eh_uncached", bodies, measure([eh(bodies)]), len(bodies))
                check_batch(len(bodies), 0)

                cached_bodies = work.batch()
                cached_call = eh(cached_bodies)
                first = sequence[0] - len(cached_bodies)
                record("eh_cached", cached_bodies, measure([cached_call]), len(cached_bodies))
                check_batch(len(cached_bodies), 0)

                bodies = work.batch()
                m = measure([lambda req=req: score_http(req) for req in http_requests(bodies)])
                if {resp.status_code for resp in m[3]} != {200}:
                    raise RuntimeError(f"HTTP statuses {sorted({resp.status_code for resp in m[3]})}")
                record("http_cached", bodies, m, len(bodies))

                bodies = work.batch()
                m = measure([lambda req=req: score_http(req) for req in http_requests(bodies)],
                            before_each=lambda k, cs=[b["customer_id"] for b in bodies]: evict([cs[k]]))
                if {resp.status_code for resp in m[3]} != {200}:
                    raise RuntimeError(f"HTTP statuses {sorted({resp.status_code for resp in m[3]})}")
                record("http_uncached", bodies, m, len(bodies))

                record("eh_redelivery", cached_bodies, measure([eh(cached_bodies, first)]), len(cached_bodies))
                check_batch(len(cached_bodies), len(cached_bodies))
                say(f"[{variant.name}] round {n + 1}/{rounds}: " + ", ".join(
                    f"{k} {results[k].samples[-1].total / results[k].samples[-1].events:.2f} req/ev"
                    for k in results))
            stream_log.removeHandler(log)
            for p in PATHS:
                results[p.key].floor_text = describe_floor(p, results[p.key].samples, shards)
            calibration[variant.name] = bare_point_read_ms(services)
        reset_app_services()
    return [results[p.key] for p in PATHS]


def bare_point_read_ms(services, n: int = 300) -> float:
    """App CPU of one table point read (a 404) through the app's own client, alone: the cost of
    a storage request on this box today, to read the rows' CPU against (and other days' runs)."""
    from shared.adapters.tables import read_entity

    table = services.audit._table
    for i in range(20):
        read_entity(table, "idx-calibration", f"warm{i}")
    started = time.process_time()
    for i in range(n):
        read_entity(table, "idx-calibration", f"r{i}")
    return 1000 * (time.process_time() - started) / n


calibration: dict[str, float] = {}  # variant -> bare_point_read_ms, filled by run_variant


def describe_floor(path: PathSpec, samples: Sequence[Sample], shards: int) -> str:
    """The floor's parts per batch of 100 (a range when the rounds' batches differ)."""
    from shared.adapters.audit_table import INDEX_SHARDS

    parts = {k: sorted({s.floor_parts[k] for s in samples}) for k in samples[0].floor_parts}
    text = path.floor_text.format(**{k: "–".join(map(str, (v[0], v[-1]) if len(v) > 1 else v)) for k, v in parts.items()})
    if path.key in ("eh_uncached", "eh_cached"):
        text += f"; FRAUD_AUDIT_SHARDS={shards}, INDEX_SHARDS={INDEX_SHARDS}"
    return text


# -- report ----------------------------------------------------------------------------------
def spread(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(values[0], fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


def summary_table(results: list[PathResult]) -> list[str]:
    baseline_cpu = {r.path.key: statistics.median(r.cpu_ms()) for r in results if r.variant == "baseline"}
    lines = ["| variant | path | events | storage requests per event (rounds) | floor per event | measured / floor | "
             "app CPU ms per event, median (rounds) | CPU vs baseline |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        cpu = statistics.median(r.cpu_ms())
        vs = baseline_cpu.get(r.path.key)
        lines.append(
            f"| {r.variant} | {r.path.title} | {r.events} | {r.requests_per_event:.2f} ({spread(r.per_event(), '.2f')}) | "
            f"{r.floor_per_event:.2f} ({r.floor_text}) | {r.requests_per_event / r.floor_per_event:.2f}× | "
            f"{cpu:.2f} ({spread(r.cpu_ms(), '.2f')}) | "
            f"{'—' if r.variant == 'baseline' or not vs else f'{vs / cpu:.2f}× less'} |")
    return lines


def _status_note(status: int | None) -> str:
    if status is None:
        return " → no response"
    return "" if 200 <= status < 300 else f" → {status}"


def breakdown_table(results: list[PathResult]) -> list[str]:
    """Requests per event by operation (and by response status when not 2xx), one column per path."""
    columns = [(r.variant, r.path) for r in results]
    rows: dict[str, dict[int, float]] = defaultdict(dict)
    for j, r in enumerate(results):
        tallies: dict[str, int] = defaultdict(int)
        for s in r.samples:
            for (op, status), n in s.statuses.items():
                tallies[f"{op}{_status_note(status)}"] += n
        for name, n in tallies.items():
            rows[name][j] = n / r.events
    multi = len({v for v, _ in columns}) > 1
    head = [f"{p.title}{f' ({v})' if multi else ''}" for v, p in columns]
    lines = ["| operation | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(columns)]
    for name in sorted(rows, key=lambda k: (-max(rows[k].values()), k)):
        lines.append(f"| {name} | " + " | ".join(f"{rows[name][j]:.2f}" if j in rows[name] else "" for j in range(len(columns))) + " |")
    lines.append("| **total** | " + " | ".join(f"**{r.requests_per_event:.2f}**" for r in results) + " |")
    return lines


def section(results: list[PathResult], meta: Mapping[str, Any]) -> str:
    return f"""## (g) Storage requests and app CPU per event, against the floor (issue #17)

`{meta['command']}` on {meta['date']} ({meta['machine']}); the 1-minute load average was
{meta['load_start']:.2f} as the measurements started and {meta['load_end']:.2f} at the end (other
jobs share the box). Private Azurite on the same machine. Per variant and round: 100 distinct
customers with existing profiles, one event each, all events in one UTC hour; {meta['rounds']}
rounds of every path, each round with fresh transaction ids (the redelivery resends that round's
cached batch). The functions are called as the host calls them (`func.EventHubEvent` batches,
`func.HttpRequest`). *Requests* are counted below azure-core's retry policy by a transport wrapper
(`bench/request_counter.py`, installed through `storage_account.transport_factory`), every
retry a request of its own; *app CPU* is `time.process_time()` of the app process around the
function calls (all its threads; Azurite's CPU is not in it), divided by the events. *Floor*: the
requests the path cannot do without, as issue #17 states it, from the configuration and the
batch's own ids. `baseline` is today's path; later variants are measured in the same run.

{chr(10).join(summary_table(results))}

App CPU of one bare table point read through the same clients, alone (the per-request cost of
the storage stack on this box in this run): {'; '.join(f"{v}: {ms:.2f} ms" for v, ms in meta['calibration'].items())}.

Requests per event by operation (a `$batch` is named by its table and partition; `→ 404` etc.
are responses other than 2xx; a `$batch` whose changeset is refused still answers 202):

{chr(10).join(breakdown_table(results))}
{outside_floor(results)}"""


def outside_floor(results: list[PathResult]) -> str:
    """What the issue's floor leaves out but today's path writes: the decision archive's
    staging append blob (an outlet after the audit write)."""
    rates = []
    for r in results:
        n = sum(c for s in r.samples for op, c in s.requests.items()
                if op.service == "blob" and op.resource == "decision-staging")
        if n:
            rates.append(f"{r.path.title}{'' if r.variant == 'baseline' else f' ({r.variant})'} {n / r.events:.2f}")
    if not rates:
        return ""
    return ("\nNot in the issue's floor: the decision archive's staging append (`blob PUT decision-staging`, "
            "one per scoring call), per event: " + "; ".join(rates) + ".\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage_requests", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="batches of 100 per path and variant (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 14:
        parser.error("--rounds must be 1-14 (four new batches per round, one minute each, in one hour)")
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    for key in [k for k in os.environ if k.startswith(("FRAUD_DATA_STORAGE", "FRAUD_MODEL_STORAGE", "FRAUD_PROFILE_ACCOUNTS"))]:
        del os.environ[key]  # one account: the Azurite tools.azurite started
    from shared.adapters.pseudonym_key import ensure_local_key

    ensure_local_key(os.environ, ROOT)  # the profiles' pseudonym key
    from tools.models import ensure_local_release_key

    ensure_local_release_key()  # the development release key (data/keys/): serving needs a signed model
    logging.getLogger("azure").setLevel(logging.WARNING)  # as host.json has it

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    say("training a small model ...")
    artifact = small_artifact(f"bench-requests-{uuid.uuid4().hex[:6]}")
    load_start = os.getloadavg()[0]
    results: list[PathResult] = []
    for name in args.variants.split(","):
        results += run_variant(VARIANTS[name], args.rounds, artifact, say)
    load_end = os.getloadavg()[0]
    meta = {"command": COMMAND + (f" --rounds {args.rounds}" if args.rounds != 3 else ""),
            "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_start": load_start, "load_end": load_end, "rounds": args.rounds, "calibration": dict(calibration)}
    text = section(results, meta)
    print(text)
    if not args.no_write:
        from bench.doc_sections import write_section

        write_section(Path(args.out), SECTION, text, before="## Notes")
        say(f"wrote the {SECTION} section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
