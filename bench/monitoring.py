"""How long the monitoring timer takes at two traffic volumes, against the full audit scan.

    python -m tools.azurite --free-ports -- python -m bench.monitoring --decisions 10000 100000

For each volume N: N decisions (feature vectors from a replay of simulated data, as served;
half in the fresh 24 hours, half in the matured window a week earlier), made by four
scoring processes in batches of 100, go where the scoring service puts them: the audit log
and each process's hourly monitoring aggregates. A share of them is labelled through a
label file. Then, timed:

- ``first run``: the timer's first run, which also records and joins the new labels (per
  label: its history read, a few writes; O(labels), paid once per label);
- ``timer run``: the next run, what every 15 minutes costs (drift, performance, the shadow,
  merchant recount, report) — it reads hour aggregates and labelled decisions only;
- ``full scan``: the same figures from every audit row of the windows
  (``monitoring_scan.scan_figures``, how the timer worked before issue #15).

Prints one JSON line per volume and the ratio of the timer runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

PROCESSES = 4


def _services(suffix: str, model_container: str):
    from shared.composition import AppServices

    env = dict(os.environ)
    env.update({"FRAUD_AUDIT_TABLE": f"benchscores{suffix}", "FRAUD_AGGREGATE_TABLE": f"benchagg{suffix}",
                "FRAUD_LABEL_TABLE": f"benchlabels{suffix}", "FRAUD_LABELS_CONTAINER": f"bench-labels-{suffix}",
                "FRAUD_MONITORING_CONTAINER": f"bench-monitoring-{suffix}", "FRAUD_MERCHANT_TABLE": f"benchmerch{suffix}",
                "FRAUD_RETRAIN_CONTAINER": f"bench-retrain-{suffix}", "FRAUD_MODEL_CONTAINER": model_container})
    services = AppServices(env)
    services.ensure_resources()
    return services


def _records(data, X, scores, version: str, n: int, now: datetime, seed: int) -> list:
    from shared.domain.decision import ACTIONS, Verdict
    from shared.domain.decision_record import DecisionRecord
    from shared.domain.transaction import Transaction

    rng = np.random.default_rng(seed)
    fresh_start = now - timedelta(hours=23, minutes=50)
    matured_start = now - timedelta(days=8, hours=-1)
    records = []
    for i in range(n):
        j = i % len(X)
        start = fresh_start if i % 2 == 0 else matured_start
        when = start + timedelta(seconds=float(rng.uniform(0, 22 * 3600)))
        src = data.transactions[j]
        score = float(scores[j])
        risk = "High" if score > 0.8 else "Medium" if score > 0.5 else "Low"
        txn = Transaction(f"B{seed}-{i}", src.customer_id, float(src.transaction_amount), "NGN", when,
                          merchant_id=src.merchant_id, channel=src.channel, device_id=src.device_id)
        records.append(DecisionRecord(txn, round(score, 6), Verdict(risk, ACTIONS[risk], risk == "High", (), ()),
                                      version, X[j], when, "bench", float(rng.gamma(2.0, 3.0))))
    return records


def one_volume(n: int, labelled_share: float, data, X, y, scores, version: str, model_container: str) -> dict:
    from shared.domain.decision_record import Delivery
    from shared.service.monitoring_aggregates import MonitoringAggregator, reference_lookup
    from shared.service.monitoring_scan import scan_figures

    suffix = uuid.uuid4().hex[:6]
    services = _services(suffix, model_container)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    records = _records(data, X, scores, version, n, now, seed=n)
    processes = [MonitoringAggregator(services.aggregate_table, reference_lookup(services.manifest_of), flush_seconds=1e9)
                 for _ in range(PROCESSES)]
    t0 = time.perf_counter()
    for start in range(0, n, 100):
        batch = records[start:start + 100]
        services.audit.write(batch)
        processes[(start // 100) % PROCESSES].record([Delivery(r) for r in batch])
    for process in processes:
        process.flush()
    write_s = time.perf_counter() - t0
    rng = np.random.default_rng(n)
    labelled = rng.choice(n, size=max(int(n * labelled_share), 1), replace=False)
    lines = ["transaction_id,label"] + [f"{records[i].transaction_id},{int(y[i % len(y)])}" for i in labelled]
    services.label_files.upload("bench/labels.csv", "\n".join(lines).encode())
    monitoring = services.monitoring
    monitoring.clock = lambda: now
    t0 = time.perf_counter()
    first = monitoring.run()
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = monitoring.run(now + timedelta(minutes=1))
    run_s = time.perf_counter() - t0
    first_hour, _ = monitoring.merchant_window(now)
    t0 = time.perf_counter()
    scan = scan_figures(services.audit, services.serving_manifest(), now, monitoring.config, merchant_first_hour=first_hour)
    scan_s = time.perf_counter() - t0
    same = (report["drift"]["features"] == scan["drift"]["features"]
            and report["performance"]["at_thresholds"] == scan["performance"]["at_thresholds"]
            and report["performance"]["card_precision_top20_per_day"] == scan["performance"]["card_precision_top20_per_day"])
    return {"decisions": n, "labels_joined": first["labels"]["joined"], "write_seconds": round(write_s, 1),
            "aggregate_documents": report["aggregates"]["documents"],
            "labelled_decisions_read": report["aggregates"]["labelled_decisions"],
            "first_run_seconds": round(first_s, 3), "timer_run_seconds": round(run_s, 3),
            "timer_run_steps": report["step_seconds"], "merchants": report["merchant_risk"].get("merchants"),
            "full_scan_seconds": round(scan_s, 3), "same_figures_as_full_scan": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.monitoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--labelled-share", type=float, default=0.005,
                        help="share of decisions labelled (frauds and analysts' verdicts; default 0.5%%)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"),
                        help="the benchmarks document whose section (d) this rewrites ('-': print only)")
    args = parser.parse_args(argv)
    from shared.adapters.pseudonym_key import ensure_local_key

    ensure_local_key(os.environ, Path(__file__).resolve().parent.parent)  # the profiles' pseudonym key

    from tools.models import ensure_local_release_key

    ensure_local_release_key()  # the development release key (data/keys/): the bench's models are signed

    from shared.domain.features import replay
    from shared.domain.model import load_model
    from training.dataset import merchant_risk_replay, read_labelled_csv
    from training.pipeline import simulate_train_publish

    folder = Path(tempfile.mkdtemp(prefix="bench-mon-"))
    model_container = f"bench-models-{uuid.uuid4().hex[:6]}"
    services = _services("setup", model_container)
    artifact = simulate_train_publish(services.registry, services.release_signer, folder, customers=600, days=45, seed=9,
                                      train_args=["--max-iter", "40", "--search-candidates", "1"])
    data = read_labelled_csv(folder / "transactions.csv")
    X = replay(data.transactions, merchants=merchant_risk_replay(data, 7.0))
    scores = load_model(artifact).predict(X)
    results = [one_volume(n, args.labelled_share, data, X, data.labels, scores, artifact.version, model_container)
               for n in args.decisions]
    for result in results:
        print(json.dumps(result))
    if len(results) >= 2:
        low, high = results[0], results[-1]
        print(json.dumps({"volumes": [low["decisions"], high["decisions"]],
                          "timer_run_ratio": round(high["timer_run_seconds"] / low["timer_run_seconds"], 3),
                          "full_scan_ratio": round(high["full_scan_seconds"] / low["full_scan_seconds"], 3)}))
    if args.out != "-":
        from bench.doc_sections import write_section

        write_section(Path(args.out), "bench.monitoring", section(results, args), before="<!-- bench.load:begin -->")
    return 0


def section(results: list[dict], args: argparse.Namespace) -> str:
    """Section (d) of docs/BENCHMARKS.md from this run."""
    load = os.getloadavg()[0]
    rows = "\n".join(
        f"| {r['decisions']:,} | {r['aggregate_documents']} | {r['labelled_decisions_read']} | {r['merchants']} | "
        f"{r['timer_run_seconds']:.2f} ({', '.join(f'{k} {v:.2f}' for k, v in r['timer_run_steps'].items())}) | "
        f"{r['full_scan_seconds']:.2f} | {r['first_run_seconds']:.2f} ({r['labels_joined']} labels joined) | "
        f"{'yes' if r['same_figures_as_full_scan'] else '**no**'} |" for r in results)
    ratio = ""
    if len(results) >= 2:
        low, high = results[0], results[-1]
        ratio = (f"\n\n**At {high['decisions'] // low['decisions']}x the decisions the timer run takes "
                 f"{high['timer_run_seconds'] / low['timer_run_seconds']:.2f}x as long** "
                 f"({low['timer_run_seconds']:.2f} s → {high['timer_run_seconds']:.2f} s); the full scan of the "
                 f"audit log it replaced takes {high['full_scan_seconds'] / low['full_scan_seconds']:.2f}x "
                 f"({low['full_scan_seconds']:.2f} s → {high['full_scan_seconds']:.2f} s).")
    return f"""## (d) The monitoring timer at two volumes, against the full audit scan

`make bench-monitoring` (`python -m tools.azurite --free-ports -- python -m bench.monitoring
--decisions {' '.join(str(r['decisions']) for r in results)}`), {datetime.now(timezone.utc):%Y-%m-%d}, load average
{load:.2f} when it finished. Per volume: that many decisions (served feature vectors; half in
the fresh 24 hours, half in the matured window a week earlier) made by {PROCESSES} scoring
processes in batches of 100, written to the audit log and to each process's hourly
aggregates; {args.labelled_share:.1%} of them labelled through a label file. *Timer run* is
the timer's recurring run (drift, matured and provisional performance, merchant recount,
report; steps in seconds); *full scan* computes the same figures from every audit row of the
windows (`shared/service/monitoring_scan.py`, how the timer worked before issue #15); *first
run* also joins the new labels (O(labels), paid once per label). *Same figures*: drift of
every feature, counts at the thresholds and card precision equal to the full scan's.

| decisions | aggregate rows read | labelled decisions read | merchants | timer run, s (steps) | full scan, s | first run, s | same figures |
| --- | --- | --- | --- | --- | --- | --- | --- |
{rows}{ratio}

The run reads one row per scoring process and hour (and the labelled decisions), never a
decision: its cost is hours x bins x processes. What still grows with traffic is the
merchant recount (one table row per active merchant) and the labelled decisions read, both
bounded by the merchants and the labels, not by the decisions."""


if __name__ == "__main__":
    sys.exit(main())
