"""Load benchmark: the HTTP API, served by a real local server, at fixed request rates.

    make bench-load     (= python -m tools.azurite --free-ports -- python -m bench.load)

1. storage on Azurite: resources created; customers simulated (``training/simulate.py``);
   a model trained on all but the last days and published; the customers' profiles and
   the merchants' risk backfilled from that history (as ``make run`` does);
2. the HTTP functions served by ``tools/local_host.py`` in its own process
   (``python -m tools.local_host``), so the load generator does not share its GIL;
3. one headless locust run per step (``bench/locustfile.py``), each at a fixed request
   rate for ``--duration`` seconds: first the baseline, ``GET /api/health`` (routing and
   one blob read; no model, no profile, no writes), then ``POST /api/score`` at each of
   ``--rates`` with the simulated days that follow the history, in time order — every
   request a distinct transaction of a real customer;
4. per step: requests, errors (any status but 200), p50/p95/p99/max latency as the client
   saw it, the achieved rate, and the CPU the server and locust used; the results replace
   the ``bench.load`` section of docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from shared.domain.metrics import percentiles

ROOT = Path(__file__).resolve().parent.parent
SECTION = "bench.load"
COMMAND = "make bench-load"
FULL_COMMAND = "python -m tools.azurite --free-ports -- python -m bench.load"


def say(message: str) -> None:
    print(f"==> {datetime.now():%H:%M:%S} {message}", flush=True)


# --------------------------------------------------------------------------- pure parts

@dataclass
class StepResult:
    name: str  # "baseline: GET /api/health" or "POST /api/score"
    target_rate: float
    duration_s: float
    users: int
    requests: int
    errors: int
    p50: float
    p95: float
    p99: float
    max: float
    achieved_rate: float
    server_p50: float | None = None  # the decision's latency_ms (in the app, before the audit write)
    server_p99: float | None = None
    server_cpu_s: float | None = None
    locust_cpu_s: float | None = None
    azurite_cpu_s: float | None = None
    machine_cpu_s: float | None = None  # busy CPU seconds of the whole machine (all processes)
    loadavg: float | None = None  # 1-minute load average when the step started
    error_kinds: dict[str, int] = field(default_factory=dict)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (``shared.domain.metrics.percentiles``); NaN for no values."""
    value = percentiles(values, (q,))[f"p{int(q)}"]
    return float("nan") if value is None else value


def summarize(name: str, samples: Sequence[Sequence[Any]], target_rate: float, duration_s: float, users: int) -> StepResult:
    """One step from the locustfile's samples: [start epoch s, client ms, status, server ms, error]."""
    latencies = [s[1] for s in samples]
    errors = [s for s in samples if s[2] != 200 or s[4]]
    kinds: dict[str, int] = {}
    for s in errors:
        key = f"HTTP {s[2]}" if s[2] else "no response"
        kinds[key] = kinds.get(key, 0) + 1
    starts = sorted(s[0] for s in samples)
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    achieved = (len(starts) - 1) / span if span > 0 else 0.0
    server = [s[3] for s in samples if s[3] is not None]
    return StepResult(
        name=name, target_rate=target_rate, duration_s=duration_s, users=users, requests=len(samples),
        errors=len(errors), p50=percentile(latencies, 50), p95=percentile(latencies, 95),
        p99=percentile(latencies, 99), max=max(latencies) if latencies else float("nan"), achieved_rate=achieved,
        server_p50=percentile(server, 50) if server else None, server_p99=percentile(server, 99) if server else None,
        error_kinds=kinds,
    )


def _ms(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:,.1f}"


def contention_note(results: Sequence[StepResult], load_at_start: float) -> str:
    """How busy the box was with other work, from the steps' CPU accounting."""
    others = [r.machine_cpu_s - (r.server_cpu_s or 0) - (r.azurite_cpu_s or 0) - (r.locust_cpu_s or 0)
              for r in results if r.machine_cpu_s is not None]
    if not others:
        return ""
    share = max(others) / max(r.duration_s for r in results)
    busy = share > 0.25
    return (f"Other work on the machine during the steps: up to {share:.2f} of a core (1-minute load average "
            f"{load_at_start:.2f} when the run started){'; the run shared the box with it' if busy else ''}.")


def cpu_split(r: StepResult) -> str:
    parts = [r.server_cpu_s, r.azurite_cpu_s, r.locust_cpu_s]
    other = (r.machine_cpu_s - sum(p for p in parts if p is not None)) if r.machine_cpu_s is not None else None
    return " / ".join(_ms(v) for v in [*parts, other, r.machine_cpu_s])


def render_section(results: Sequence[StepResult], meta: dict[str, Any]) -> str:
    """The markdown of the load section (between its markers in docs/BENCHMARKS.md)."""
    rows = ["| step | target req/s | users | requests | errors | p50 ms | p95 ms | p99 ms | max ms | achieved req/s "
            "| in-app p50 / p99 ms | CPU s: server / Azurite / locust / other / machine |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        errors = str(r.errors) + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(r.error_kinds.items()))})"
                                  if r.error_kinds else "")
        in_app = f"{_ms(r.server_p50)} / {_ms(r.server_p99)}" if r.server_p50 is not None else "–"
        rows.append(f"| {r.name} | {r.target_rate:g} | {r.users} | {r.requests:,} | {errors} | {_ms(r.p50)} | "
                    f"{_ms(r.p95)} | {_ms(r.p99)} | {_ms(r.max)} | {r.achieved_rate:.1f} | {in_app} | "
                    f"{cpu_split(r)} |")
    scored = [r for r in results if r.name.startswith("POST")]
    sustained = [r for r in scored if r.errors == 0 and r.achieved_rate >= 0.95 * r.target_rate]
    verdict = []
    if sustained:
        best = max(sustained, key=lambda r: r.target_rate)
        verdict.append(f"Highest fixed rate sustained with zero errors: **{best.target_rate:g} req/s** of "
                       f"`POST /api/score` for {best.duration_s:g} s ({best.requests:,} requests, p50 {_ms(best.p50)} ms, "
                       f"p95 {_ms(best.p95)} ms, p99 {_ms(best.p99)} ms).")
    missed = [r for r in scored if r not in sustained]
    for r in missed:
        errors = (f"{r.errors} error{'s' if r.errors > 1 else ''} "
                  f"({', '.join(f'{k}: {v}' for k, v in sorted(r.error_kinds.items()))})") if r.errors else ""
        if r.achieved_rate < 0.95 * r.target_rate:
            verdict.append(f"At {r.target_rate:g} req/s it saturates: achieved {r.achieved_rate:.1f} of "
                           f"{r.target_rate:g} req/s" + (f", {errors}" if errors else "") + ".")
        else:
            verdict.append(f"At {r.target_rate:g} req/s the rate held, with {errors}.")
    if sustained and best.server_cpu_s and best.requests:
        server_ms = best.server_cpu_s * 1000 / best.requests
        azurite_ms = (best.azurite_cpu_s or 0) * 1000 / best.requests
        locust_ms = (best.locust_cpu_s or 0) * 1000 / best.requests
        verdict.append(f"CPU per scoring request at {best.target_rate:g} req/s: {server_ms:.1f} ms in the server, "
                       f"{azurite_ms:.1f} ms in Azurite, {locust_ms:.1f} ms in locust. The server is one Python "
                       f"process (one GIL): at most ~{1000 / server_ms:.0f} req/s on one core; the whole box, with "
                       f"nothing else running, ~{1000 * meta['cores'] / (server_ms + azurite_ms + locust_ms):.0f} req/s.")
    baseline = next((r for r in results if not r.name.startswith("POST")), None)
    if baseline is not None:
        verdict.append(f"Baseline at {baseline.target_rate:g} req/s: p50 {_ms(baseline.p50)} ms, p99 {_ms(baseline.p99)} ms, "
                       f"{baseline.errors} errors — what the server, the client and the machine cost before any scoring.")
    return "\n".join([
        "## (e) The HTTP API under a fixed request rate (locust)",
        "",
        f"Produced by `{COMMAND}` (`{' '.join([FULL_COMMAND, meta.get('args', '')]).strip()}`) on {meta['date']} "
        f"({meta['machine']}).",
        "",
        "- **Server**: `python -m tools.local_host` in its own process — the standard library's threading HTTP "
        "server routing real HTTP requests to the registered HTTP functions (`function_app.indexed_functions()`), "
        "storage on Azurite. **Client**: locust, headless, `FastHttpUser` (`bench/locustfile.py`), in another "
        f"process. **Azurite, the server and locust share the machine's {meta['cores']} cores**: every CPU second "
        "locust or Azurite spends is one the server does not get (the CPU column says who used what). These are "
        "the numbers of one small box, not of Azure." + (f" {meta['contention']}" if meta.get("contention") else ""),
        f"- **Population**: {meta['customers']:,} simulated customers (`training/simulate.py`, {meta['days']} days). "
        f"A model trained on one customer in {meta.get('train_share', 1)} over the first {meta['history_days']} days "
        f"(`{meta['model']}`), published and current; every customer's profile and the merchants' risk backfilled "
        "from those days. Each `POST /api/score` is the next transaction of the day that follows, in time order: a "
        "distinct transaction id, a real customer, the simulated amount, merchant, device, channel and timestamp "
        "(fraud bursts included). 50 requests warm the server up first (not counted).",
        "- **Fixed rate**: `users` locust users, user *k* calling at *k*/rate + *n*·users/rate seconds, so together "
        "they send `rate` requests a second, evenly spaced, for the stated duration. A user still waiting for its "
        "response when its next slot comes skips that slot: an overloaded server shows as an achieved rate below "
        "the target, as well as in the latencies.",
        "- **Measured**: latency as the client saw it (request sent to body read); *in-app* is the decision's own "
        "`latency_ms` (validate, profile read, features, ONNX, decide, profile commit; before the audit write). "
        "Any status but 200 is an error. CPU seconds during the step: the server, Azurite and locust processes, and "
        f"the whole machine (of {meta['cores']} × the duration available); *other* is everything else that ran "
        "meanwhile (the OS, and any other job on the box).",
        "- **Baseline**: `GET /api/health` at a fixed rate on the same server: routing, one blob read (the model "
        "pointer), no scoring, no writes — the floor under the scoring numbers.",
        "",
        *rows,
        "",
        *[f"- {v}" for v in verdict],
        *[f"- {n}" for n in meta.get("notes", [])],
    ])


# --------------------------------------------------------------------------- storage and data

def simulate(folder: Path, customers: int, days: int, seed: int, needed: int) -> tuple[Path, list[dict], int]:
    """A history CSV and, after it, the whole days of transactions to send (at least ``needed``)."""
    from training.pipeline import simulate_csv, split_by_day

    everything = simulate_csv(folder / "transactions.csv", customers, days, seed, ends_yesterday=True)
    with open(everything, newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_day: dict[str, int] = {}
    for r in rows:
        by_day[r["timestamp"][:10]] = by_day.get(r["timestamp"][:10], 0) + 1
    live_days, count = 0, 0
    for day in sorted(by_day, reverse=True):
        if count >= needed:
            break
        live_days, count = live_days + 1, count + by_day[day]
    if count < needed or live_days >= len(by_day):
        raise SystemExit(f"{customers} customers over {days} days give {len(rows)} transactions; {needed} are needed "
                         "for the load after the history: raise --customers or lower --rates/--duration")
    history = folder / "history.csv"
    live, history_days = split_by_day(everything, history, live_days)
    return history, live, history_days


def train_and_publish(services, history: Path, folder: Path, share: int) -> str:
    """A model trained on the history of every ``share``-th customer (the last 7 days its test
    window; a sample keeps the run short) and made current."""
    from training.pipeline import publish_current, train_artifact

    sample = folder / "training.csv"
    with open(history, newline="") as source, open(sample, "w", newline="") as target:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(target, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        last_day = ""
        for r in reader:
            last_day = max(last_day, r["timestamp"][:10])
            if int(r["customer_id"].lstrip("C")) % share == 0:
                writer.writerow(r)
    test_start = (datetime.fromisoformat(last_day) - timedelta(days=6)).date().isoformat()
    say(f"training a model on one customer in {share} (test window from {test_start})")
    artifact = train_artifact(sample, folder / "model", ["--test-start", test_start])
    publish_current(services.registry, artifact, services.release_signer, approved_by="bench")
    test = artifact.manifest["metrics"]["test"]
    say(f"  published model {artifact.version}: ROC AUC {test['roc_auc']:.3f}, average precision "
        f"{test['average_precision']:.3f}")
    return artifact.version


def prepare_storage(args: argparse.Namespace, folder: Path, needed: int) -> tuple[list[dict], dict[str, Any]]:
    from shared.composition import app_services
    from training.backfill import build_merchant_risk, build_profiles, write_profiles
    from training.dataset import read_labelled_csv

    services = app_services()
    services.ensure_resources()
    say(f"simulating {args.customers} customers over {args.days} days (seed {args.seed})")
    history, live, history_days = simulate(folder, args.customers, args.days, args.seed, needed)
    version = train_and_publish(services, history, folder, args.train_share)
    say("backfilling customer profiles and merchant risk from the history")
    data = read_labelled_csv(history)
    counts = write_profiles(services.profiles, build_profiles(data.transactions, services.profiles.new_profile))
    merchants, as_of = build_merchant_risk(data, 7.0)
    services.merchant_store.save(merchants, as_of)
    say(f"  {counts['written']} profiles written, {len(merchants)} merchants; {len(live)} transactions to send")
    return live, {"customers": args.customers, "days": args.days, "history_days": history_days, "model": version,
                  "train_share": args.train_share}


def to_body(row: dict[str, str], tag: str) -> bytes:
    from tools.send_events import to_event_payload

    return json.dumps({**to_event_payload(row), "transaction_id": f"{tag}-{row['transaction_id']}"}).encode()


# --------------------------------------------------------------------------- server and steps

def start_server(port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    process = subprocess.Popen([sys.executable, "-m", "tools.local_host", "--port", str(port)], cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"the server did not answer /api/health within 60 s; see {log_path}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port (for Azurite's CPU time), if this user can see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def azurite_pid() -> int | None:
    from urllib.parse import urlsplit

    for part in os.environ.get("AzureWebJobsStorage", "").split(";"):
        if part.startswith("TableEndpoint="):
            return listening_pid(urlsplit(part.split("=", 1)[1]).port or 0)
    return None


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores, all processes)."""
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def warm_up(base: str, bodies: list[bytes]) -> None:
    for body in bodies:
        request = urllib.request.Request(f"{base}/api/score", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def run_step(name: str, base: str, rate: float, duration: float, feed: list[bytes] | None, folder: Path,
             server_pid: int, users: int, storage_pid: int | None = None) -> StepResult:
    tag = f"{'score' if feed is not None else 'health'}-{rate:g}"
    env = {**os.environ, "BENCH_LOAD_RATE": str(rate), "BENCH_LOAD_USERS": str(users),
           "BENCH_LOAD_SAMPLES": str(folder / f"{tag}.json"), "BENCH_LOAD_FEED": ""}
    if feed is not None:
        (folder / f"{tag}.jsonl").write_bytes(b"\n".join(feed) + b"\n")
        env["BENCH_LOAD_FEED"] = str(folder / f"{tag}.jsonl")
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
           "--host", base, "-u", str(users), "-r", f"{rate:g}", "-t", f"{duration:g}s", "--stop-timeout", "30",
           "--only-summary", "--loglevel", "WARNING"]
    say(f"{name}: {rate:g} req/s for {duration:g} s ({users} users)")
    loadavg = os.getloadavg()[0]
    server_before, machine_before = cpu_seconds(server_pid), machine_busy_seconds()
    azurite_before = cpu_seconds(storage_pid) if storage_pid else None
    with open(folder / f"{tag}.log", "wb") as log:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    server_cpu, machine_cpu = cpu_seconds(server_pid) - server_before, machine_busy_seconds() - machine_before
    samples_path = folder / f"{tag}.json"
    if not samples_path.exists():
        raise SystemExit(f"locust wrote no samples (exit {process.returncode}); see {folder / f'{tag}.log'}")
    result = summarize(name, json.loads(samples_path.read_text()), rate, duration, users)
    result.server_cpu_s, result.locust_cpu_s, result.loadavg = server_cpu, usage.ru_utime + usage.ru_stime, loadavg
    result.machine_cpu_s = machine_cpu
    if storage_pid and azurite_before is not None:
        result.azurite_cpu_s = cpu_seconds(storage_pid) - azurite_before
    say(f"  {result.requests} requests, {result.errors} errors {result.error_kinds or ''}; p50 {result.p50:.1f} "
        f"p95 {result.p95:.1f} p99 {result.p99:.1f} max {result.max:.1f} ms; achieved {result.achieved_rate:.1f} req/s; "
        f"CPU s: server {server_cpu:.1f}, Azurite {_ms(result.azurite_cpu_s)}, locust {result.locust_cpu_s:.1f}, "
        f"machine {machine_cpu:.1f}")
    if result.errors:
        first = next(s for s in json.loads(samples_path.read_text()) if s[2] != 200 or s[4])
        say(f"  first error: {first[4]}")
    return result


def server_log_notes(log_text: str) -> list[str]:
    """What the server logged at WARNING or above, counted by logger and message (numbers elided)."""
    import re

    counts: dict[str, int] = {}
    for line in log_text.splitlines():
        match = re.match(r"\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)", line)
        if match:
            key = f"{match[1]} {match[2]}: {re.sub(r'[0-9]+', 'N', match[3])[:160]}"
            counts[key] = counts.get(key, 0) + 1
    return [f"The server logged {n} × `{key}`" + KNOWN_CAUSES.get(next((c for c in KNOWN_CAUSES if c in key), ""), "")
            for key, n in sorted(counts.items(), key=lambda kv: -kv[1])]


# what the server's warnings mean, when we know (appended to the note)
KNOWN_CAUSES = {
    "RemoteDisconnected": ": Azurite closes a kept-alive connection after 5 s idle (its default keep-alive timeout); "
                          "a request sent on that connection at that moment fails, and azure-core does not retry a "
                          "POST or PATCH whose connection drops, so the scoring request is answered 503 "
                          "storage_unavailable (Retry-After).",
    "Connection pool is full": ": more concurrent storage calls than the pooled transport keeps connections for; the extra "
                               "connection is closed after use (a warning, not an error).",
}


def users_for(rate: float, per_user: float) -> int:
    return max(2, math.ceil(rate / per_user))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20,40,60", help="fixed rates of POST /api/score, req/s, comma-separated")
    parser.add_argument("--baseline-rate", type=float, default=40.0, help="rate of the GET /api/health baseline")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per step")
    parser.add_argument("--per-user", type=float, default=2.0,
                        help="requests per second per locust user (users = rate / this)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--train-share", type=int, default=4, help="train on one customer in this many")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true", help="print the section, leave docs/BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    baseline_rate = args.baseline_rate
    os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    from shared.adapters.pseudonym_key import ensure_local_key

    ensure_local_key(os.environ, Path(__file__).resolve().parent.parent)  # the profiles' pseudonym key
    from tools.models import ensure_local_release_key

    ensure_local_release_key()  # the development release key (data/keys/): the bench's models are signed

    from bench.doc_sections import write_section
    from tools.azurite import free_port

    load_at_start = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    warm = 50
    needed = warm + sum(math.ceil(r * args.duration * 1.05) + users_for(r, args.per_user) for r in rates)
    live, population = prepare_storage(args, folder, needed)
    tag = datetime.now(timezone.utc).strftime("L%Y%m%d%H%M%S")
    bodies = [to_body(r, tag) for r in live[:needed]]

    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port, folder / "server.log")
    storage_pid = azurite_pid()
    results: list[StepResult] = []
    try:
        say(f"server (pid {server.pid}) on {base}/api/; warming up with {warm} requests")
        warm_up(base, bodies[:warm])
        at = warm
        results.append(run_step("baseline: GET /api/health", base, baseline_rate, args.duration, None, folder,
                                server.pid, users_for(baseline_rate, args.per_user), storage_pid))
        for rate in rates:
            time.sleep(2)
            count = math.ceil(rate * args.duration * 1.05) + users_for(rate, args.per_user)
            results.append(run_step("POST /api/score", base, rate, args.duration, bodies[at:at + count], folder,
                                    server.pid, users_for(rate, args.per_user), storage_pid))
            at += count
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    server_log = (folder / "server.log").read_text(errors="replace")
    notes = server_log_notes(server_log)
    for note in notes:
        say(note)

    cores = os.cpu_count()
    given = " ".join(argv if argv is not None else sys.argv[1:])
    meta = {
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d}",
        "machine": f"{platform.machine()}, {cores} cores, Python {platform.python_version()}, "
                   f"locust {importlib.metadata.version('locust')}",
        "cores": cores, "args": given, **population,
        "contention": contention_note(results, load_at_start), "notes": notes,
    }
    section = render_section(results, meta)
    print(section)
    if not args.no_write:
        write_section(Path(args.out), SECTION, section, before="## Notes")
        say(f"wrote the {SECTION} section of {args.out}")
    print(f"(raw samples and logs in {folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
