"""Storage requests and app CPU per event on each scoring path, against the floor, for today's
(pre-#17) path and the new one side by side in one run (issue #17).

    python -m tools.azurite --free-ports -- python -m bench.storage_requests [--rounds 3] [--variants ...]

Each *variant* (``VARIANTS``) runs in worker processes of its own (``--worker NAME``, started by
this script), on the same private Azurite (the environment is inherited), each worker with its
own tables, containers and queue. The rounds are interleaved: round 1 of every variant, one
worker after the other, then round 2 of every variant, and so on; so a change in the box's
speed during the run (other jobs, a slow spell) falls on every variant alike instead of on the
one that happened to run then. Each worker first runs ``WARMUP_ROUNDS`` round of every path
that is not kept (its first calls: imports, connection pools, caches), then its kept round. Each worker writes its rows as JSON and the parent merges them
into one report:

* ``baseline``: the app code of commit ``BASELINE_REF``, the last before issue #17's changes to
  the scoring path. The parent exports that commit's app code only (``git archive`` of
  ``APP_PATHS``) into a temporary folder; the worker puts it first on ``sys.path`` before any
  app module is imported, so ``shared``, ``functions``, ``training`` and ``tools`` come from the
  export while ``bench`` (this script, the request counter) comes from the checkout, and checks
  that they did (``shared.__file__``). Without git or that commit (a tarball without history)
  the baseline is not run and the report says why.
* ``current-requests``: this checkout with ``FRAUD_STORAGE_TRANSPORT=requests`` (the Azure SDK's
  requests transport: isolates the storage transport's share of the new path);
* ``current``: this checkout with default settings (the new path).

On each, with batches of 100 distinct customers who have profiles already, all events in one
UTC hour, each path is run ``--rounds`` times through the decorated functions (real
``func.EventHubEvent`` / ``func.HttpRequest`` objects, as the Functions host calls them):

1. Event Hub batch, profiles not cached (evicted from the process's profile cache first);
2. Event Hub batch, profiles cached;
3. Event Hub redelivery: path 2's batch again, every event a duplicate;
4. HTTP ``POST /api/score``, cached (100 requests, one per customer, one after the other);
5. HTTP ``POST /api/score``, cached, concurrent: 100 requests sent at once to a
   ``ThreadPoolExecutor`` of 16 threads calling ``score_http``, as the Functions host runs
   concurrent requests on its thread pool;
6. HTTP ``POST /api/score``, not cached (each customer's profile evicted before its request).

*Requests* are counted by ``bench/request_counter.py``: a wrapper around azure-core's transport,
below the retry policy (every retry is a request), installed through the
``transport_factory`` hook of ``shared/adapters/storage_account.py`` (in the baseline too: the
hook predates it). *App CPU* is ``time.process_time()`` of the worker process from a
path's first call to its last (after an untimed ``gc.collect()``: a full collection of what
set-up or the path before left would otherwise land in one path's window of one round), ended by writing the archive lines small calls left waiting
(``AppServices.flush_outlets``, FRAUD_ARCHIVE_LINGER_MS), less the untimed profile evictions of
the uncached HTTP row (every thread of the process counts, the concurrent row's 16 callers and
a background append included; Azurite is another process, so storage is excluded), divided by
the events. The requests of that closing write are counted too. *Floor* is the issue's: the
requests the path cannot do without, from the configuration (``FRAUD_AUDIT_SHARDS``, the id
index's ``INDEX_SHARDS``) and the batch's own ids (the audit and id-index partitions it
touches); the concurrent row's floor is the sequential one's (3 per request).
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
SECTION = "bench.storage_requests"
COMMAND = "python -m tools.azurite --free-ports -- python -m bench.storage_requests"
CUSTOMERS = 100  # one batch: 100 distinct customers, one event each
HTTP_THREADS = 16  # the concurrent HTTP row's callers

# The baseline: the app as it was before issue #17 changed the scoring path. 4aeca54 is the last
# commit before those changes (the next, 256948a, claims ids in the id index instead of looking
# them up, answers redeliveries from the profile row's recent ids and combines concurrent HTTP
# requests into batches); the request counter's hook (180f755) is already in it. A full hash,
# so the export does not depend on which branch is checked out.
BASELINE_REF = "4aeca542b0f818c0112c6161e83b895baecfe170"
# What the baseline's export holds: the app code only (bench stays the checkout's).
APP_PATHS = ("shared", "functions", "training", "tools", "function_app.py", "host.json")
APP_PACKAGES = ("shared", "functions", "training", "tools")


# -- variants: each runs in its own worker process; a new path is one more entry -------------
@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    # settings this variant changes; None removes the setting (the app's default applies)
    env: Mapping[str, str | None] = field(default_factory=dict)
    # A hook to set before the variant's clients are built (returns its undo), if any: e.g. set
    # ``storage_account.transport_factory`` to build another transport; the counter wraps it.
    install: Callable[[], Callable[[], None]] | None = None
    # The app code from this git commit (exported, first on the worker's sys.path); None: the checkout.
    ref: str | None = None


VARIANTS: dict[str, Variant] = {
    "baseline": Variant(
        "baseline", f"the app code of commit `{BASELINE_REF[:7]}`, the last before issue #17's changes to the "
        "scoring path (id look-ups, every HTTP request scored alone, the Azure SDK's requests transport)",
        env={"FRAUD_STORAGE_TRANSPORT": None}, ref=BASELINE_REF),
    "current-requests": Variant(
        "current-requests", "this checkout with `FRAUD_STORAGE_TRANSPORT=requests` (the new path over the "
        "Azure SDK's requests transport: isolates the transport's share)",
        env={"FRAUD_STORAGE_TRANSPORT": "requests"}),
    "current": Variant("current", "this checkout with default settings (the new path)",
                       env={"FRAUD_STORAGE_TRANSPORT": None}),
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
    PathSpec("http_concurrent", f"HTTP `POST /api/score`, cached, {HTTP_THREADS} threads at once",
             "1 commit + 1 audit + 1 index write per request, as sequential"),
    PathSpec("http_uncached", "HTTP `POST /api/score`, not cached",
             "1 profile read + 1 commit + 1 audit + 1 index write per request"),
)
PATH_BY_KEY = {p.key: p for p in PATHS}


@dataclass
class Sample:
    events: int
    requests: dict[Any, int]  # Operation -> count
    statuses: dict[tuple[Any, int | None], int]
    cpu_seconds: float
    floor: int
    floor_parts: dict[str, int]
    combined: int | None = None  # scoring batches the app's RequestCombiner ran (None: it has none)

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


# -- the worker's JSON: PathResults with Operations as their four fields ---------------------
def result_to_json(result: PathResult) -> dict[str, Any]:
    return {"variant": result.variant, "path": result.path.key, "floor_text": result.floor_text,
            "samples": [{"events": s.events, "cpu_seconds": s.cpu_seconds, "floor": s.floor,
                         "floor_parts": dict(s.floor_parts), "combined": s.combined,
                         "requests": [{"operation": asdict(op), "count": n} for op, n in s.requests.items()],
                         "statuses": [{"operation": asdict(op), "status": status, "count": n}
                                      for (op, status), n in s.statuses.items()]}
                        for s in result.samples]}


def result_from_json(data: Mapping[str, Any]) -> PathResult:
    from bench.request_counter import Operation

    samples = [Sample(events=s["events"], cpu_seconds=s["cpu_seconds"], floor=s["floor"],
                      floor_parts=dict(s["floor_parts"]), combined=s.get("combined"),
                      requests={Operation(**r["operation"]): r["count"] for r in s["requests"]},
                      statuses={(Operation(**r["operation"]), r["status"]): r["count"] for r in s["statuses"]})
               for s in data["samples"]]
    return PathResult(data["variant"], PATH_BY_KEY[data["path"]], samples, data["floor_text"])


# -- events ----------------------------------------------------------------------------------
def body(txn_id: str, customer: str, when: datetime, k: int) -> dict[str, Any]:
    return {
        "transaction_id": txn_id, "customer_id": customer,
        "transaction_amount": float(2000 + (k * 7919) % 90000), "currency": "NGN",
        "timestamp": when.isoformat(), "device_id": f"D{k % 3}", "merchant_id": f"M{k % 20}",
        "merchant_category": ("grocery", "electronics", "fuel", "transfer")[k % 4],
        "channel": ("pos", "online", "mobile")[k % 3], "country": "NG",
    }


SETUP_BATCHES, BATCHES_PER_ROUND = 2, 5  # new batches: the warm-up's, and each round's
MAX_ROUNDS = (59 - SETUP_BATCHES) // BATCHES_PER_ROUND  # one minute per batch, in one hour
WARMUP_ROUNDS = 1  # per worker, before its kept round: a long-running instance is past its first calls


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
             "eh_redelivery": customers, "http_cached": 3 * len(bodies), "http_concurrent": 3 * len(bodies),
             "http_uncached": 4 * len(bodies)}[path]
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


def save_artifact(artifact, folder: Path) -> None:
    """The parent's model for the workers: ``model.onnx`` and ``manifest.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(artifact.onnx_bytes)
    (folder / "manifest.json").write_text(json.dumps(artifact.manifest))


def load_artifact(folder: Path, say: Callable[[str], None]):
    """The parent's model, as the worker's own app code's ``ModelArtifact``; a model of the
    worker's own (``small_artifact``) if its app's feature list differs from the parent's."""
    from shared.domain.features import FEATURE_SCHEMA_HASH
    from shared.domain.model import ModelArtifact

    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest["feature_schema_hash"] != FEATURE_SCHEMA_HASH:
        say("this app code has another feature list than the checkout's: training its own small model ...")
        return small_artifact(manifest["version"])
    return ModelArtifact((folder / "model.onnx").read_bytes(), manifest)


# -- one variant's run (in its worker process) -----------------------------------------------
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
    changed: dict[str, str | None] = {**names, **variant.env}
    saved = {k: os.environ.get(k) for k in changed}
    for k, v in changed.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
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


# variant -> what its run saw besides the rows: the bare point read's CPU ("calibration_ms"),
# the storage transport class(es) below the counter ("transports"); filled by run_variant
variant_info: dict[str, dict[str, Any]] = {}


def run_variant(variant: Variant, rounds: int, artifact, say: Callable[[str], None],
                warmup: int = 0) -> list[PathResult]:
    """``warmup`` rounds of every path first, run as the others but not kept (the process's
    first calls of each path: imports, pools, caches), then ``rounds`` kept."""
    import azure.functions as func

    from bench.request_counter import RequestCounter, counting
    from shared.adapters import storage_account
    from shared.composition import app_services, reset_app_services
    from tools.send_events import event_hub_batch
    from training.pipeline import publish_current

    tag = uuid.uuid4().hex[:6]
    transports: set[str] = set()
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
            counting_factory = storage_account.transport_factory

            def noting_factory(inner: Any) -> Any:  # notes the transport the counter wraps
                wrapped = counting_factory(inner)
                transports.add(type(getattr(wrapped, "inner", inner)).__name__)
                return wrapped

            storage_account.transport_factory = noting_factory  # counting() restores the one before it

            from functions.score_http import score_http
            from functions.score_stream import score_stream

            services = app_services()
            services.ensure_resources()
            publish_current(services.registry, artifact, services.release_signer, approved_by="bench")
            shards = services.config.audit_shards
            stores = services.profile_stores
            combiner = getattr(services.scoring, "_requests", None)  # the new path's RequestCombiner, if any
            hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            work = Workload(tag, hour)
            log = BatchLog()
            stream_log = logging.getLogger("fraud.score_stream")
            stream_log.addHandler(log)
            stream_log.setLevel(logging.INFO)
            sequence = [0]
            # The concurrent row's callers, as the host's thread pool: all HTTP_THREADS threads
            # started before anything is measured (each waits at a barrier until all run).
            pool = ThreadPoolExecutor(HTTP_THREADS, thread_name_prefix="bench-http")
            started_all = threading.Barrier(HTTP_THREADS)
            list(pool.map(lambda _: started_all.wait(timeout=60), range(HTTP_THREADS)))

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

            def combined_batches() -> int | None:
                return getattr(combiner, "batches", None)

            flush_outlets = getattr(services, "flush_outlets", lambda: 0)  # lines small calls left waiting

            def measure(calls: list[Callable[[], Any]], before_each: Callable[[int], None] | None = None) -> tuple:
                """The whole path's process CPU (every thread: a background write between calls
                counts), less the untimed ``before_each``; it ends with the waiting lines written."""
                gc.collect()  # untimed: the garbage of what ran before is not this path's
                counter.reset()
                untimed, outs = 0.0, []
                started = time.process_time()
                for k, call in enumerate(calls):
                    if before_each is not None:
                        before = time.process_time()
                        before_each(k)  # makes no request
                        untimed += time.process_time() - before
                    outs.append(call())
                flush_outlets()
                cpu = time.process_time() - started - untimed
                return counter.snapshot(), counter.statuses(), cpu, outs, None

            def measure_concurrent(requests: list[func.HttpRequest]) -> tuple:
                """All requests handed to the pool at once; CPU of the whole process (every thread)
                from the first hand-over to the last response."""
                gc.collect()
                counter.reset()
                batches_before = combined_batches()
                started = time.process_time()
                outs = list(pool.map(score_http, requests))
                flush_outlets()
                cpu = time.process_time() - started
                batches_after = combined_batches()
                combined = None if batches_before is None or batches_after is None else batches_after - batches_before
                return counter.snapshot(), counter.statuses(), cpu, outs, combined

            say(f"[{variant.name}] set-up: profiles for {len(work.customers)} customers, model, caches warm")
            eh(work.batch())()  # the profiles exist; the model, merchant cache and connections are warm
            for r in http_requests(work.batch()[:5]):
                score_http(r)
            results = {p.key: PathResult(variant.name, p) for p in PATHS}

            def record(path: str, bodies, measured, events: int) -> None:
                requests, statuses, cpu, _, combined = measured
                results[path].samples.append(
                    Sample(events, requests, statuses, cpu, *floor_of(path, bodies, shards), combined=combined))

            def check_batch(scored: int, duplicates: int) -> None:
                last = log.batches[-1]
                if (last["scored"], last["duplicates"], last["dead_lettered"]) != (scored, duplicates, 0):
                    raise RuntimeError(f"unexpected batch outcome: {last}")

            def check_http(measured: tuple) -> None:
                if {resp.status_code for resp in measured[3]} != {200}:
                    raise RuntimeError(f"HTTP statuses {sorted({resp.status_code for resp in measured[3]})}")

            for n in range(warmup + rounds):
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
                check_http(m)
                record("http_cached", bodies, m, len(bodies))

                bodies = work.batch()
                m = measure_concurrent(http_requests(bodies))
                check_http(m)
                record("http_concurrent", bodies, m, len(bodies))

                bodies = work.batch()
                m = measure([lambda req=req: score_http(req) for req in http_requests(bodies)],
                            before_each=lambda k, cs=[b["customer_id"] for b in bodies]: evict([cs[k]]))
                check_http(m)
                record("http_uncached", bodies, m, len(bodies))

                record("eh_redelivery", cached_bodies, measure([eh(cached_bodies, first)]), len(cached_bodies))
                check_batch(len(cached_bodies), len(cached_bodies))
                say(f"[{variant.name}] round {n + 1}/{warmup + rounds}{' (warm-up)' if n < warmup else ''}: " + ", ".join(
                    f"{k} {results[k].samples[-1].total / results[k].samples[-1].events:.2f} req/ev"
                    for k in results))
            pool.shutdown()
            stream_log.removeHandler(log)
            for p in PATHS:
                del results[p.key].samples[:warmup]
                results[p.key].floor_text = describe_floor(p, results[p.key].samples, shards)
            variant_info[variant.name] = {"calibration_ms": bare_point_read_ms(services),
                                          "transports": sorted(transports)}
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


def describe_floor(path: PathSpec, samples: Sequence[Sample], shards: int) -> str:
    """The floor's parts per batch of 100 (a range when the rounds' batches differ)."""
    from shared.adapters.audit_table import INDEX_SHARDS

    parts = {k: sorted({s.floor_parts[k] for s in samples}) for k in samples[0].floor_parts}
    text = path.floor_text.format(**{k: "–".join(map(str, (v[0], v[-1]) if len(v) > 1 else v)) for k, v in parts.items()})
    if path.key in ("eh_uncached", "eh_cached"):
        text += f"; FRAUD_AUDIT_SHARDS={shards}, INDEX_SHARDS={INDEX_SHARDS}"
    return text


# -- the baseline's app code: exported from git, imported first ------------------------------
def export_app(ref: str, dest: Path) -> tuple[Path | None, str]:
    """``APP_PATHS`` of commit ``ref`` extracted into ``dest``: (dest, "") or (None, why not)
    when git or the commit is not there (e.g. a tarball of the project, without its history)."""
    def git(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True, **kwargs)

    try:
        git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except FileNotFoundError:
        return None, "git is not installed"
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        if said:  # e.g. not a git checkout at all (a tarball of the project)
            return None, f"git cannot read commit {ref[:7]} here ({said[0]})"
        return None, f"commit {ref[:7]} is not in this checkout's history (e.g. a shallow clone)"
    try:
        archive = git("archive", "--format=tar", ref, "--", *APP_PATHS).stdout
    except subprocess.CalledProcessError as exc:
        return None, f"git archive {ref[:7]} failed: {(exc.stderr or b'').decode(errors='replace').strip()}"
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest, ""


def use_app_code(root: Path) -> None:
    """Put ``root`` (an export) first on ``sys.path``: the app packages are imported from it. Before
    any app module is imported (one imported already would stay the checkout's)."""
    loaded = [name for name in sys.modules if name.split(".")[0] in APP_PACKAGES + ("function_app",)]
    if loaded:
        raise RuntimeError(f"app modules imported before the export was put first on sys.path: {sorted(loaded)[:5]}")
    sys.path.insert(0, str(root.resolve()))


def check_app_code(root: Path) -> dict[str, str]:
    """Import the app packages and check each comes from ``root`` (the export or the checkout);
    returns their files."""
    import importlib

    files = {}
    for name in APP_PACKAGES:
        module = importlib.import_module(name)
        path = Path(module.__file__ or "").resolve()
        if not path.is_relative_to(root.resolve()):
            raise AssertionError(f"{name} was imported from {path}, not from {root}")
        files[name] = str(path)
    import shared  # the one run_variant's imports get

    assert Path(shared.__file__).resolve().parent == root.resolve() / "shared", shared.__file__
    return files


# -- the worker: one variant, in a process of its own ----------------------------------------
def worker_main(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    variant = VARIANTS[args.worker]
    if (args.app_root is None) != (variant.ref is None):
        raise SystemExit(f"--worker {variant.name}: --app-root (an export of its ref) is "
                         f"{'required' if variant.ref else 'not for it'}")
    for setting in ("FRAUD_PSEUDONYM_KEY", "FRAUD_RELEASE_KEY"):
        if not os.environ.get(setting):
            raise SystemExit(f"--worker is started by `python -m bench.storage_requests`, which sets {setting}")
    app_root = Path(args.app_root) if args.app_root else ROOT
    if args.app_root:
        use_app_code(app_root)
    files = check_app_code(app_root)
    logging.getLogger("azure").setLevel(logging.WARNING)  # as host.json has it
    say(f"[{variant.name}] app code from {Path(files['shared']).parent.parent}")
    artifact = load_artifact(Path(args.model), say)
    results = run_variant(variant, args.rounds, artifact, say, warmup=args.warmup)
    Path(args.json).write_text(json.dumps({
        "variant": variant.name, "app_files": files, **variant_info[variant.name],
        "results": [result_to_json(r) for r in results]}))
    return 0


def run_worker(name: str, rounds: int, model: Path, app_root: Path | None, out: Path,
               warmup: int = 0) -> dict[str, Any]:
    """Run ``--worker name`` (same interpreter, same environment: the same Azurite) and read its JSON."""
    command = [sys.executable, "-m", "bench.storage_requests", "--worker", name, "--rounds", str(rounds), "--warmup", str(warmup),
               "--model", str(model), "--json", str(out)] + (["--app-root", str(app_root)] if app_root else [])
    done = subprocess.run(command, cwd=ROOT, env=dict(os.environ), stdout=sys.stderr)
    if done.returncode != 0:
        raise WorkerFailed(f"the {name} worker failed (exit {done.returncode}); its output is above")
    return json.loads(out.read_text())


class WorkerFailed(Exception):
    """A worker process exited with an error (its output went to this script's stderr)."""


def once_more_on_failure(run: Callable[[], dict[str, Any]], what: str, retried: list[str],
                         say: Callable[[str], None]) -> dict[str, Any]:
    """``run()``, and once more in a new worker if it fails; the failure is kept in ``retried``
    for the report. (The baseline's requests transport answers 503 when Azurite drops an idle
    keep-alive connection under a POST, the failure #17 fixed: one such round must not void
    the run, nor be hidden.) A second failure ends the run."""
    try:
        return run()
    except WorkerFailed as failed:
        retried.append(f"{what}: {failed}")
        say(f"{what} failed ({failed}); running it once more in a new worker")
    try:
        return run()
    except WorkerFailed as failed:
        raise SystemExit(f"{what} failed twice: {failed}") from None


def merge_workers(outputs: Sequence[Mapping[str, Any]]) -> tuple[list[PathResult], dict[str, dict[str, Any]]]:
    """The workers' JSON (a round each) as one PathResult per variant and path, its samples in
    round order, and per variant the median bare point read and every transport seen."""
    merged: dict[tuple[str, str], PathResult] = {}
    calibrations: dict[str, list[float]] = {}
    transports: dict[str, set[str]] = {}
    for data in outputs:
        for result in (result_from_json(r) for r in data["results"]):
            kept = merged.setdefault((result.variant, result.path.key), result)
            if kept is not result:
                kept.samples += result.samples
        calibrations.setdefault(data["variant"], []).append(data["calibration_ms"])
        transports.setdefault(data["variant"], set()).update(data["transports"])
    info = {name: {"calibration_ms": statistics.median(values), "transports": sorted(transports[name])}
            for name, values in calibrations.items()}
    return list(merged.values()), info


# -- report ----------------------------------------------------------------------------------
def spread(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(values[0], fmt) if format(lo, fmt) == format(hi, fmt) else f"{format(lo, fmt)}–{format(hi, fmt)}"


def ordered(results: list[PathResult], variants: Sequence[str]) -> list[PathResult]:
    """By path (``PATHS`` order), then variant (run order): a path's variants side by side."""
    order = {p.key: i for i, p in enumerate(PATHS)}
    return sorted(results, key=lambda r: (order[r.path.key], list(variants).index(r.variant)))


def summary_table(results: list[PathResult], variants: Sequence[str]) -> list[str]:
    baseline = {r.path.key: r for r in results if r.variant == "baseline"}
    lines = ["| path | variant | events | storage requests per event (rounds) | floor per event | measured / floor | "
             "app CPU ms per event, median (rounds) | CPU vs baseline (baseline ÷ this) | "
             "requests vs baseline (baseline ÷ this) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    floor_above = None
    for r in ordered(results, variants):
        # the floor's parts once per path (again only where a variant's batches differ)
        floor = "" if (r.path.key, r.floor_text) == floor_above else f" ({r.floor_text})"
        floor_above = (r.path.key, r.floor_text)
        cpu = statistics.median(r.cpu_ms())
        base = baseline.get(r.path.key) if r.variant != "baseline" else None
        cpu_vs = f"{statistics.median(base.cpu_ms()) / cpu:.2f}×" if base and cpu else "—"
        requests_vs = (f"{base.requests_per_event / r.requests_per_event:.2f}×"
                       if base and r.variant == "current" and r.requests_per_event else "—")
        lines.append(
            f"| {r.path.title} | {r.variant} | {r.events} | {r.requests_per_event:.2f} ({spread(r.per_event(), '.2f')}) | "
            f"{r.floor_per_event:.2f}{floor} | {r.requests_per_event / r.floor_per_event:.2f}× | "
            f"{cpu:.2f} ({spread(r.cpu_ms(), '.2f')}) | {cpu_vs} | {requests_vs} |")
    return lines


def _status_note(status: int | None) -> str:
    if status is None:
        return " → no response"
    return "" if 200 <= status < 300 else f" → {status}"


def breakdown_table(results: list[PathResult]) -> list[str]:
    """Requests per event by operation (and by response status when not 2xx), one column per
    result given (one path's variants)."""
    rows: dict[str, dict[int, float]] = defaultdict(dict)
    for j, r in enumerate(results):
        tallies: dict[str, int] = defaultdict(int)
        for s in r.samples:
            for (op, status), n in s.statuses.items():
                tallies[f"{op}{_status_note(status)}"] += n
        for name, n in tallies.items():
            rows[name][j] = n / r.events
    lines = ["| operation | " + " | ".join(r.variant for r in results) + " |", "| --- |" + " --- |" * len(results)]
    for name in sorted(rows, key=lambda k: (-max(rows[k].values()), k)):
        lines.append(f"| {name} | " + " | ".join(f"{rows[name][j]:.2f}" if j in rows[name] else "" for j in range(len(results))) + " |")
    lines.append("| **total** | " + " | ".join(f"**{r.requests_per_event:.2f}**" for r in results) + " |")
    return lines


def breakdown_tables(results: list[PathResult], variants: Sequence[str]) -> str:
    """One breakdown table per path, its variants side by side."""
    blocks = []
    for p in PATHS:
        here = [r for r in ordered(results, variants) if r.path.key == p.key]
        if here:
            blocks.append(f"*{p.title}*\n\n" + "\n".join(breakdown_table(here)))
    return "\n\n".join(blocks)


def variant_lines(meta: Mapping[str, Any]) -> str:
    lines = [f"- **Run once more** (its numbers are the second worker's): {failure}"
             for failure in meta.get("retried", ())]
    for name in meta["requested"]:
        v = VARIANTS[name]
        if name in meta["skipped"]:
            lines.append(f"- `{name}`: {v.description}. **Not run in this run: {meta['skipped'][name]}**; "
                         "its rows and the ratios to it are missing.")
            continue
        info = meta["info"][name]
        how = (f"exported from git (`git archive {v.ref[:7]} {' '.join(APP_PATHS)}`) into a temporary folder the "
               "worker puts first on `sys.path`, checked by `shared.__file__`; `bench` from the checkout"
               if v.ref else "the checkout's app code")
        lines.append(f"- `{name}`: {v.description}; {how}. Storage transport below the counter: "
                     f"{', '.join(f'`{t}`' for t in info['transports']) or '?'}.")
    return "\n".join(lines)


def transport_note(meta: Mapping[str, Any]) -> str:
    """Whether ``current-requests`` and ``current`` ran over different transports in this run."""
    pair = [meta["info"].get(name, {}).get("transports") for name in ("current-requests", "current")]
    if None in pair:
        return ""
    if pair[0] == pair[1]:
        return (f"\n\n`current-requests` and `current` ran over the same transport ({', '.join(f'`{t}`' for t in pair[0])}): "
                "`FRAUD_STORAGE_TRANSPORT` changed nothing in this run, so their difference is run-to-run noise.")
    return ""


def combined_note(results: list[PathResult], variants: Sequence[str]) -> str:
    """How the app's RequestCombiner grouped the concurrent row's requests, per variant."""
    parts = []
    for r in ordered(results, variants):
        if r.path.key != "http_concurrent":
            continue
        counts = [s.combined for s in r.samples]
        if any(c is None for c in counts):
            parts.append(f"{r.variant}: no combiner, every request scored alone")
        else:
            parts.append(f"{r.variant}: {spread([float(c) for c in counts], '.0f')} scoring batches per 100 requests")
    return "; ".join(parts)


def section(results: list[PathResult], meta: Mapping[str, Any]) -> str:
    return f"""## (g) Storage requests and app CPU per event, against the floor (issue #17)

`{meta['command']}` on {meta['date']} ({meta['machine']}); the 1-minute load average was
{meta['load_start']:.2f} as the measurements started and {meta['load_end']:.2f} at the end (other
jobs share the box). Private Azurite on the same machine. Each round of each variant runs in a
worker process of its own (`--worker`, on the same Azurite with its own tables, containers and
queue), the rounds interleaved (round 1 of every variant, then round 2, ...) so that a change in
the box's speed during the run falls on every variant alike. Each worker runs {WARMUP_ROUNDS} round of
every path first that is not kept (its first calls: imports, pools, caches). The report merges
their rows:

{variant_lines(meta)}{transport_note(meta)}

Per variant and round: 100 distinct customers with existing profiles, one event each, all events
in one UTC hour; {meta['rounds']} round{'s' if meta['rounds'] != 1 else ''} of every path, each with
fresh transaction ids (the redelivery resends that round's cached batch). The functions are called
as the host calls them (`func.EventHubEvent` batches, `func.HttpRequest`); the HTTP rows send 100
requests one after the other, except the concurrent row: 100 requests handed at once to a
`ThreadPoolExecutor` of {HTTP_THREADS} threads calling `score_http`, as the Functions host runs
concurrent requests on its thread pool (its floor is the sequential row's, 3 per request).
*Requests* are counted below azure-core's retry policy by a transport wrapper
(`bench/request_counter.py`, installed through `storage_account.transport_factory`), every
retry a request of its own; *app CPU* is `time.process_time()` of the worker process from a path's
first call to its last (after an untimed `gc.collect()`, so a full collection of what ran before is not
charged to one path of one round), ended by writing the archive lines that small calls left waiting
(`FRAUD_ARCHIVE_LINGER_MS`; those appends are counted as requests too), less the untimed evictions
of the uncached HTTP row (all its threads, the {HTTP_THREADS} callers included; Azurite's CPU is
not in it), divided by the events. *Floor*: the requests the path cannot do without, as issue #17 states it,
from the configuration and the batch's own ids. The ratios are to the `baseline` row of the same
path in this run (CPU: medians; "requests vs baseline" for `current`).

{chr(10).join(summary_table(results, meta['variants']))}

Concurrent HTTP row, the app's request combining: {combined_note(results, meta['variants']) or '—'}.

App CPU of one bare table point read through the same clients, alone (the per-request cost of
the storage stack on this box in this run; the median of the variant's workers): {'; '.join(f"{v}: {meta['info'][v]['calibration_ms']:.2f} ms" for v in meta['variants'])}.

Requests per event by operation, per path (a `$batch` is named by its table and partition;
`→ 404` etc. are responses other than 2xx; a `$batch` whose changeset is refused still answers 202):

{breakdown_tables(results, meta['variants'])}
{outside_floor(results, meta['variants'])}"""


def outside_floor(results: list[PathResult], variants: Sequence[str]) -> str:
    """What the issue's floor leaves out but the paths write: the decision archive's staging
    append blob (an outlet after the audit write)."""
    rates: dict[str, list[str]] = defaultdict(list)
    found = False
    for r in ordered(results, variants):
        n = sum(c for s in r.samples for op, c in s.requests.items()
                if op.service == "blob" and op.resource == "decision-staging")
        found = found or n > 0
        rates[r.path.title].append(f"{n / r.events:.2f}")
    if not found:
        return ""
    return ("\nNot in the issue's floor: the decision archive's staging append (`blob PUT decision-staging`, "
            "one per scoring call in the baseline; in this checkout a call of fewer than 32 decisions, an HTTP "
            "request, waits up to `FRAUD_ARCHIVE_LINGER_MS` to share one append with the next calls'), "
            f"per event ({' / '.join(variants)}): "
            + "; ".join(f"{title} {' / '.join(rs)}" for title, rs in rates.items()) + ".\n")


def prepare_environment() -> None:
    """One account (the Azurite tools.azurite started), the local pseudonym and release keys;
    the workers inherit all of it."""
    os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    for key in [k for k in os.environ if k.startswith(("FRAUD_DATA_STORAGE", "FRAUD_MODEL_STORAGE", "FRAUD_PROFILE_ACCOUNTS"))]:
        del os.environ[key]  # one account: the Azurite tools.azurite started
    from shared.adapters.pseudonym_key import ensure_local_key

    ensure_local_key(os.environ, ROOT)  # the profiles' pseudonym key (an absolute path: the workers' too)
    from tools.models import ensure_local_release_key

    ensure_local_release_key()  # the development release key (data/keys/): serving needs a signed model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage_requests", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="batches of 100 per path and variant (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    worker = parser.add_argument_group("worker (started by this script, one per variant)")
    worker.add_argument("--worker", metavar="VARIANT", help="run this variant and write its rows to --json")
    worker.add_argument("--json", help="the worker's output file")
    worker.add_argument("--model", help="the folder with the parent's model.onnx and manifest.json")
    worker.add_argument("--app-root", help="the export of the variant's app code, put first on sys.path")
    worker.add_argument("--warmup", type=int, default=0, help="rounds run first and not kept")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= MAX_ROUNDS - max(args.warmup, 0):
        parser.error(f"--rounds must be 1-{MAX_ROUNDS} ({BATCHES_PER_ROUND} new batches per round, "
                     "one minute each, in one hour)")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if args.worker:
        if args.worker not in VARIANTS or not args.json or not args.model:
            parser.error(f"--worker takes one of {', '.join(VARIANTS)}, with --json and --model")
        return worker_main(args, say)

    requested = args.variants.split(",")
    unknown = [v for v in requested if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    prepare_environment()
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-storage-requests-") as tmp:
        work = Path(tmp)
        app_roots: dict[str, Path | None] = {}
        for name in requested:
            ref = VARIANTS[name].ref
            if ref is None:
                app_roots[name] = None
                continue
            root, why = export_app(ref, work / f"app-{name}")
            if root is None:
                skipped[name] = why
                say(f"[{name}] NOT RUN: {why}")
            else:
                app_roots[name] = root
                say(f"[{name}] app code of {ref[:7]} exported to {root}")
        say("training a small model ...")
        save_artifact(small_artifact(f"bench-requests-{uuid.uuid4().hex[:6]}"), work / "model")
        load_start = os.getloadavg()[0]
        retried: list[str] = []
        outputs = [once_more_on_failure(
                       lambda name=name, root=root, n=n: run_worker(name, 1, work / "model", root,
                                                                    work / f"{name}-{n}.json", warmup=WARMUP_ROUNDS),
                       f"`{name}`, round {n + 1}", retried, say)
                   for n in range(args.rounds)  # interleaved: a round of every variant, then the next round
                   for name, root in app_roots.items()]
        results, info = merge_workers(outputs)
        load_end = os.getloadavg()[0]
    meta = {"command": COMMAND + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
            + (f" --variants {args.variants}" if requested != list(VARIANTS) else ""),
            "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_start": load_start, "load_end": load_end, "rounds": args.rounds,
            "requested": requested, "variants": list(app_roots), "skipped": skipped, "info": info,
            "retried": retried}
    text = section(results, meta)
    print(text)
    if not args.no_write:
        from bench.doc_sections import write_section

        write_section(Path(args.out), SECTION, text, before="## Notes")
        say(f"wrote the {SECTION} section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
