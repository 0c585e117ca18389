"""The main job, locally on Azurite: `make run`.

1. storage resources created (tables, containers, queue);
2. synthetic history generated; a model trained and published if none is current;
3. customer profiles backfilled from the history;
4. one simulated day streamed through the Event Hub function in host-sized batches
   (with a few malformed events and a redelivered batch, as real streams have);
5. the HTTP API served locally and called, including the seed's example
   (₦250,000 at 02:00 from a new device);
6. a summary: events scored and dead-lettered, decisions by risk level, alerts,
   throughput, latency percentiles, precision/recall against the simulated labels;
7. the API stays up (Ctrl-C stops it) unless --no-serve.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LAGOS = timezone(timedelta(hours=1))


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def simulate(folder: Path, customers: int, days: int, seed: int) -> tuple[Path, list[dict]]:
    """History CSV (all days but the last), and the last day's rows to stream; the simulation
    ends yesterday (UTC), so the streamed day is recent and the monitoring window sees it."""
    from training.pipeline import simulate_csv, split_by_day

    everything = simulate_csv(folder / "transactions.csv", customers, days, seed, ends_yesterday=True)
    history = folder / "history.csv"
    live, _ = split_by_day(everything, history, live_days=1)
    return history, live


def ensure_model(services, history: Path, folder: Path) -> str:
    from training.pipeline import publish_current, train_artifact

    current = services.registry.current()
    if current.version is not None:
        say(f"model {current.version} is already current; not retraining")
        return current.version
    say("training a model on the simulated history")
    artifact = train_artifact(history, folder / "model")
    publish_current(services.registry, artifact)
    manifest = artifact.manifest
    say(f"published model {artifact.version}; thresholds chosen from data: {manifest['thresholds']}")
    k = manifest["metrics"]["test"]["k"]
    for name, key in (("model", "test"), ("logistic regression", "baseline_test")):
        m = manifest["metrics"].get(key)
        if m:
            ttd = m["time_to_detection"] or {}
            say(f"  test window, {name:19s}: ROC AUC {m['roc_auc']:.3f}, average precision {m['average_precision']:.3f}, "
                f"card precision@{k}/day {m[f'card_precision_top{k}_per_day']:.3f}, largest calibration band gap "
                f"{m['calibration']['max_band_gap'] if m['calibration']['max_band_gap'] is not None else float('nan'):.3f}, "
                f"incidents detected {ttd.get('detected')}/{(ttd.get('detected') or 0) + (ttd.get('undetected') or 0)}")
    for name, row in (manifest["metrics"]["test"]["by_scenario"] or {}).items():
        say(f"  {name:24s} fraud rows {row['fraud_rows']:5d}  recall at review {row['recall_review'] or 0:.2f}  "
            f"at block {row['recall_block'] or 0:.2f}")
    return artifact.version


def stream_day(rows: list[dict]) -> dict:
    """Feed the day through the Event Hub function, as the host would, in batches."""
    from tools.send_events import HOST_BATCH, feed_locally, to_event_payload

    payloads = [to_event_payload(r) for r in rows]
    bodies: list = list(payloads)
    # real streams carry garbage now and then: it must be dead-lettered, not stop the stream
    bodies[len(bodies) // 3:len(bodies) // 3] = [b"{truncated", {**payloads[0], "transaction_amount": -5,
                                                                  "transaction_id": "BAD-1"}]
    seconds = feed_locally(bodies, progress=lambda done, total: done % 1000 < HOST_BATCH and print(
        f"   streamed {done}/{total} events", flush=True))
    # at-least-once delivery: one batch arrives a second time, and must change nothing
    middle = (len(bodies) // HOST_BATCH // 2) * HOST_BATCH
    feed_locally(bodies[middle:middle + HOST_BATCH])
    return {"events": len(bodies), "seconds": seconds, "redelivered": len(bodies[middle:middle + HOST_BATCH])}


def call_api(base: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/api/score", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def summarize(services, rows: list[dict], streamed: dict) -> dict:
    from shared.domain.metrics import percentiles, threshold_report

    day = datetime.fromisoformat(rows[0]["timestamp"]).astimezone(timezone.utc).replace(hour=0, minute=0, second=0)
    decisions = {d["transaction_id"]: d for d in services.audit.read(day - timedelta(days=1), day + timedelta(days=2))}
    labels = {r["transaction_id"]: int(r["is_fraud"]) for r in rows}
    scored = [decisions[t] for t in labels if t in decisions]
    y = np.array([labels[d["transaction_id"]] for d in scored])
    scores = np.array([d["fraud_score"] for d in scored])
    levels = Counter(d["risk_level"] for d in scored)
    latency = percentiles(np.array([d["latency_ms"] for d in scored]), (50, 99))
    flagged = threshold_report(y, scores, services.policy_for(services.serving_model.get()).thresholds.medium)
    alerts = services.alerts.peek(32)
    return {
        "events_sent": streamed["events"],
        "scored": len(scored),
        "dead_lettered": sum(1 for _ in services.dead_letters.list()),
        "redelivered_events": streamed["redelivered"],
        "decisions_by_risk_level": dict(levels),
        "alerts_queued": services.alerts.count(),
        "alert_sample": alerts[:1],
        "throughput_events_per_s": round(streamed["events"] / streamed["seconds"], 1),
        "latency_ms_per_event_batch": latency,
        "review_or_block_precision": flagged["precision"],
        "review_or_block_recall": flagged["recall"],
        "fraud_in_day": int(y.sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--no-serve", action="store_true", help="exit after the summary")
    args = parser.parse_args(argv)
    os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    os.environ.setdefault("FRAUD_MONITOR_WINDOW_HOURS", "48")  # the streamed day is yesterday

    from shared.composition import app_services
    from tools.local_host import serve_in_background
    from training.backfill import build_merchant_risk, build_profiles, write_profiles
    from tools.send_events import to_event_payload
    from training.dataset import read_labelled_csv

    services = app_services()
    services.ensure_resources()
    folder = Path(args.data_dir)
    say(f"simulating {args.customers} customers over {args.days} days (seed {args.seed})")
    history, live = simulate(folder, args.customers, args.days, args.seed)
    ensure_model(services, history, folder)
    say("backfilling customer profiles from the history")
    history_data = read_labelled_csv(history)
    counts = write_profiles(services.profiles, build_profiles(history_data.transactions))
    say(f"  {counts['written']} written, {counts['kept']} already present")
    merchants, as_of = build_merchant_risk(history_data, 7.0)
    services.merchant_store.save(merchants, as_of)
    say(f"  merchant risk of {len(merchants)} merchants as of {datetime.fromtimestamp(as_of, timezone.utc):%Y-%m-%d %H:%M} UTC")
    say(f"streaming {len(live)} transactions of {live[0]['timestamp'][:10]} through the Event Hub function")
    streamed = stream_day(live)

    from function_app import indexed_functions

    server, base = serve_in_background(indexed_functions(), port=args.port)
    say(f"HTTP API listening on {base}/api/")
    seed_example = {"customer_id": live[0]["customer_id"], "transaction_amount": 250000, "device_id": "new_device_99",
                    "merchant_category": "electronics", "channel": "online",
                    "timestamp": (datetime.fromisoformat(live[-1]["timestamp"]) + timedelta(days=1)).replace(
                        hour=2, minute=0, second=0).astimezone(LAGOS).isoformat()}
    calls = [("the seed's example: ₦250,000 at 02:00 from a new device", seed_example),
             ("an everyday purchase", {**to_event_payload(live[1]), "transaction_id": "HTTP-everyday"}),
             ("a bad request", {"customer_id": "C/1", "transaction_amount": -1})]
    for title, body in calls:
        status, answer = call_api(base, body)
        say(f"POST /api/score ({title}) -> {status}")
        print(json.dumps(answer, indent=1, ensure_ascii=False))

    say("dropping the day's fraud outcomes into the labels container and running the monitoring timer")
    from azure.functions.timer import TimerRequest

    from functions.monitor_timer import monitor_timer

    labels = "transaction_id,label,source\n" + "".join(f"{r['transaction_id']},{r['is_fraud']},simulation\n" for r in live)
    services.label_files.upload(f"simulated/{live[0]['timestamp'][:10]}.csv", labels.encode())
    monitor_timer(TimerRequest())
    report = services.monitoring_blobs.latest()
    drifted = sorted(n for n, d in report["drift"]["features"].items() if d["status"] != "ok")
    perf = report["performance"] or {}
    say(f"  monitoring: {report['window']['decisions']} decisions in the window, {report['labels']['joined']} labels joined, "
        f"ROC AUC {perf.get('roc_auc') or 0:.3f}, average precision {perf.get('average_precision') or 0:.3f}; "
        f"features not 'ok': {drifted or 'none'}; retrain request: {report['retrain_request']}")
    summary = summarize(services, live, streamed)
    say("summary")
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    (folder / "run_summary.json").write_text(json.dumps(summary, indent=1))
    if args.no_serve:
        server.shutdown()
        return 0
    say(f"the API is listening on {base}/api/  (Ctrl-C stops it). Try:")
    print(f"  curl -s -X POST {base}/api/score -H 'Content-Type: application/json' "
          f"-d '{{\"customer_id\":\"C12345\",\"transaction_amount\":250000,\"device_id\":\"new_device_99\","
          f"\"merchant_category\":\"electronics\",\"channel\":\"online\"}}'")
    print(f"  curl -s {base}/api/health")
    print(f"  the analysts' dashboard: {base}/api/dashboard")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
