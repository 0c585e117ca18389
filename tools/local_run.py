"""The main job, locally on Azurite: `make run`.

1. storage resources created (tables, containers, queue); the development release key
   (``data/keys/release-signing.pem``, PEM EC P-256) created if missing, unless
   FRAUD_RELEASE_KEY names another;
2. synthetic history generated; a model trained, published, signed with the release key (serving
   refuses an unsigned model) and made current if none is current, and a quick challenger
   trained and published as an unsigned candidate, then signed and set as the shadow by
   ``tools.models shadow`` (it scores beside the champion);
3. customer profiles and merchant risk backfilled from the history;
4. the last simulated days (label maturity + two days) streamed through the Event Hub
   function in host-sized batches, day by day (with a few malformed events and a
   redelivered batch, as real streams have); after each day the labels the bank knew by
   then arrive as a label file and the monitoring service runs as of the day's end
   (label join, merchant risk, drift, matured and provisional performance, shadow);
   ``--inject-drift`` moves 80% of the last day's card and online payments to the mobile
   channel (a new app), and the monitor runs once more 15 minutes later (the cooldown);
5. the HTTP API served locally and called, including the seed's example
   (₦250,000 at 02:00 from a new device);
6. a summary: events scored and dead-lettered, decisions by risk level, alerts,
   throughput, latency percentiles, precision/recall against the simulated labels, and
   the monitor's drift, matured and provisional performance and shadow comparison; then
   the scored hours compacted into the decision archive (Parquet) and one DuckDB query over it;
7. the release step: ``tools.models list`` (signed, candidate, current), then ``tools.models
   approve`` makes the challenger current as a person would, and the API answers with it;
8. the API stays up (Ctrl-C stops it) unless --no-serve.
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


def simulate(folder: Path, customers: int, days: int, seed: int, live_days: int) -> tuple[Path, list[dict]]:
    """History CSV (all days but the last ``live_days``), and the last days' rows to stream;
    the simulation ends yesterday, so the streamed days are recent."""
    from training.pipeline import simulate_csv, split_by_day

    everything = simulate_csv(folder / "transactions.csv", customers, days, seed, ends_yesterday=True)
    history = folder / "history.csv"
    live, _ = split_by_day(everything, history, live_days=live_days)
    return history, live


def by_day(rows: list[dict]) -> list[tuple[datetime, list[dict]]]:
    """The streamed rows per simulated (local) day, with each day's end."""
    days: dict[str, list[dict]] = {}
    for row in rows:
        days.setdefault(row["timestamp"][:10], []).append(row)
    out = []
    for rows_of_day in days.values():
        first = datetime.fromisoformat(rows_of_day[0]["timestamp"])
        end = first.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        out.append((end.astimezone(timezone.utc), rows_of_day))
    return out


def inject_drift(rows: list[dict], seed: int, share: float = 0.8) -> int:
    """A new mobile app: ``share`` of the day's card (POS) and online payments move to the
    mobile channel. Returns how many rows moved."""
    rng = np.random.default_rng(seed)
    moved = 0
    for row in rows:
        if row.get("channel") in ("pos", "online") and rng.random() < share:
            row["channel"] = "mobile"
            moved += 1
    return moved


def labels_known_by(rows: list[dict], until: datetime, sent: set[str]) -> bytes:
    """A label file of the streamed rows whose label the bank had learned by ``until`` and
    that were not sent before (legitimate transactions are never labelled)."""
    lines = ["transaction_id,label,labelled_at,source"]
    for row in rows:
        known = row.get("labelled_at")
        if known and row["transaction_id"] not in sent and datetime.fromisoformat(known) <= until:
            sent.add(row["transaction_id"])
            lines.append(f"{row['transaction_id']},{row['is_fraud']},{known},simulation")
    return ("\n".join(lines) + "\n").encode()


def ensure_model(services, history: Path, folder: Path) -> str:
    from training.pipeline import publish_current, train_artifact

    current = services.registry.current()
    if current.version is not None:
        say(f"model {current.version} is already current; not retraining")
        sign_left_over(services, current.version)
        return current.version
    say("training a model on the simulated history")
    artifact = train_artifact(history, folder / "model")
    publish_current(services.registry, artifact, services.release_signer, approved_by="make run")
    manifest = artifact.manifest
    say(f"published model {artifact.version}, signed with the release key {services.release_signer.key_id}; "
        f"thresholds chosen from data: {manifest['thresholds']}")
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


def sign_left_over(services, version: str) -> None:
    """A model that an earlier make run (before signed releases) left in Azurite unsigned: serving
    would refuse it, so this run signs it with the development key, and says so."""
    from shared.service.model_release import sign_model

    if services.registry.release(version) is None:
        sign_model(services.registry, services.release_signer, version, approved_by="make run (left unsigned by an earlier run)")
        say(f"  {version} was unsigned (left by an earlier run): signed with the development release key")


def ensure_shadow(services, history: Path, folder: Path) -> str | None:
    """A quick challenger (one hyperparameter candidate, another seed) trained on the same
    history and set as the shadow: it scores every batch beside the champion, logged only."""
    from tools.models import main as models
    from training.pipeline import train_artifact

    if services.registry.shadow().version is not None:
        sign_left_over(services, services.registry.shadow().version)
        return services.registry.shadow().version
    say("training a quick challenger (one hyperparameter candidate) to run as the shadow")
    artifact = train_artifact(history, folder / "challenger", ["--search-candidates", "1", "--seed", "11"])
    services.registry.publish(artifact)  # unsigned: serving would refuse it
    say(f"  published {artifact.version} unsigned; python -m tools.models shadow {artifact.version} signs it and "
        "sets it as the shadow:")
    if models(["shadow", artifact.version, "--by", "make run"]) != 0:
        raise SystemExit("tools.models shadow refused the challenger")
    say(f"  shadow {artifact.version} set: it scores beside the champion, its scores only in the decision log")
    return artifact.version


def release_step(services, base: str, example: dict) -> None:
    """What a person with the release key does: list the versions and their status, approve the
    challenger (signed, made current with the pointer's ETag), and see the API answer with it."""
    from tools.models import main as models

    say("python -m tools.models list")
    models(["list"])
    challenger = services.registry.shadow().version
    champion = services.registry.current().version
    if challenger is None or challenger == champion:
        say("  no challenger to approve")
        return
    say(f"python -m tools.models approve {challenger} --by 'make run'")
    if models(["approve", challenger, "--by", "make run"]) != 0:
        raise SystemExit("tools.models approve refused the challenger")
    services.registry.clear_shadow(reason="approved to current by make run")
    services.serving_model.refresh_now()  # what every scoring process does within FRAUD_MODEL_REFRESH_SECONDS
    status, answer = call_api(base, {**example, "transaction_id": "HTTP-after-approval"})
    say(f"POST /api/score after the approval -> {status}, model_version {answer.get('model_version')} "
        f"(was {champion})")


def stream_day(services, rows: list[dict], garbage: bool = False) -> dict:
    """Feed a day through the Event Hub function, as the host would, in batches, an hour at a
    time; after each hour merchant risk is recounted (the timer does it every 15 minutes; here
    a simulated hour passes in seconds, so the scoring process's merchant cache is cleared
    too). With ``garbage``, two malformed events and a redelivered batch, as real streams have."""
    from tools.send_events import HOST_BATCH, feed_locally, to_event_payload

    hours: dict[datetime, list] = {}
    for row in rows:
        moment = datetime.fromisoformat(row["timestamp"]).astimezone(timezone.utc)
        hours.setdefault(moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1), []).append(
            to_event_payload(row))
    events, seconds, redelivered = 0, 0.0, 0
    for n, (hour_end, bodies) in enumerate(hours.items()):
        if garbage and n == len(hours) // 2:  # garbage must be dead-lettered, not stop the stream
            bodies = bodies[:1] + [b"{truncated", {**bodies[0], "transaction_amount": -5, "transaction_id": "BAD-1"}] + bodies[1:]
        seconds += feed_locally(bodies)
        events += len(bodies)
        if garbage and n == len(hours) // 2:  # at-least-once delivery: a batch arrives twice, and changes nothing
            feed_locally(bodies[:HOST_BATCH])
            redelivered = len(bodies[:HOST_BATCH])
        services.monitoring_aggregator.flush()  # a simulated hour passes in seconds: its aggregates now
        services.monitoring.recount_merchants(hour_end, hours=2)
        services.merchant_cache.clear()
    return {"events": events, "seconds": seconds, "redelivered": redelivered}


def monitor_day(services, live_so_far: list[dict], day_end: datetime, sent: set[str]) -> dict:
    """The bank's labels known by ``day_end`` arrive; the monitoring service runs as of then."""
    services.label_files.upload(f"simulated/{day_end:%Y-%m-%dT%H%M}.csv", labels_known_by(live_so_far, day_end, sent))
    services.monitoring_aggregator.flush()
    return services.monitoring.run(now=day_end)


def flagged(report: dict) -> dict[str, dict]:
    return {n: d for n, d in report["drift"]["features"].items() if d["status"] in ("warn", "alert")}


def say_monitoring(report: dict) -> None:
    drift = report["drift"]
    statuses = Counter(d["status"] for d in drift["features"].values())
    say(f"  monitor as of {report['run_at'][:16]}: {report['window']['decisions']} decisions in the window, "
        f"{report['labels']['joined']} labels joined; features {dict(statuses)}; score drift "
        f"{(drift['score'] or {}).get('status')}; breaches {report['breaches'] or 'none'}; retrain request "
        f"{report['retrain_request'] or 'none'}")
    for name, d in sorted(flagged(report).items(), key=lambda kv: -kv[1]["psi"]):
        say(f"    {d['status']:5s} {name:30s} PSI {d['psi']:.3f} (alert at {d['alert_at']:.2f}): {d['moved']}")


def performance_lines(report: dict) -> list[str]:
    lines = []
    for key in ("performance", "performance_provisional"):
        perf = report.get(key)
        if not perf:
            lines.append(f"{key}: no decisions in its window")
            continue
        review, block = perf["at_thresholds"]["medium"], perf["at_thresholds"]["high"]
        k = next(name for name in perf if name.startswith("card_precision_top"))
        lines.append(
            f"{perf['view'].upper()} [{perf['start'][:16]} .. {perf['end'][:16]}): {perf['rows']} decisions, "
            f"{perf['positives']} fraud ({perf['labelled']} labelled, {perf['unlabelled_counted_as_legitimate']} "
            f"unlabelled counted legitimate); review precision {_f(review['precision'])} recall {_f(review['recall'])}; "
            f"block precision {_f(block['precision'])} recall {_f(block['recall'])}; AP {_f(perf['average_precision'])}; "
            f"{k} {_f(perf[k])}; ECE {_f(perf['expected_calibration_error'])}")
    shadow = report.get("shadow")
    if shadow and shadow.get("verdict"):
        verdict = shadow["verdict"]
        for who in ("champion", "challenger"):
            m = verdict[who]
            lines.append(f"SHADOW COMPARISON on {shadow['rows']} matured decisions, {who:10s} {m['version']}: "
                         f"AP {_f(m['average_precision'])}, card precision@{verdict['policy']['k']} "
                         f"{_f(m['card_precision_at_k'])}, ECE {_f(m['ece'])}, reviews/day "
                         f"{_f(m['review']['alerts_per_day'])}, review recall {_f(m['review']['recall'])}")
        lines.append(f"  the gate on this shadow evidence: {'would promote' if verdict['promoted'] else 'would not promote'}"
                     f" ({verdict['reason']})")
    elif shadow:
        lines.append(f"shadow {shadow['version']}: {shadow.get('note')}")
    return lines


def archive_the_run(services, folder: Path) -> list[str]:
    """The decision archive of this run: make run's decisions carry the real clock's scored_at,
    so the hours it scored are compacted as of the current hour's end + grace (as the archive
    timer will once they are over), downloaded to ``folder/archive`` and queried with DuckDB."""
    from tools.archive import download, format_table, query

    services.flush_outlets()  # the API's last lines may still wait to share an append (FRAUD_ARCHIVE_LINGER_MS)
    grace = timedelta(minutes=services.config.archive_grace_minutes)
    as_of = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) + grace
    report = services.archive_compaction.run(now=as_of)
    dest = folder / "archive"
    download(services.decision_archive, dest)
    lines = [f"compacted {c['hour']} part {c['part']}: {c['rows']} decisions from {c['staged_bytes']:,} staged bytes "
             f"in {c['seconds']:.1f} s" for c in report["compacted"]]
    return lines + [f"DuckDB over {dest}/decisions/*/*/*.parquet:"] + format_table(*query(dest))


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


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

    first = datetime.fromisoformat(rows[0]["timestamp"]) - timedelta(hours=1)
    last = datetime.fromisoformat(rows[-1]["timestamp"]) + timedelta(hours=1)
    decisions = {d["transaction_id"]: d for d in services.audit.read(first, last)}
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
        "fraud_in_streamed_days": int(y.sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=53, help="simulated days in all (history + streamed)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--no-serve", action="store_true", help="exit after the summary")
    parser.add_argument("--inject-drift", action="store_true",
                        help="move 80%% of the last day's card and online payments to the mobile channel")
    args = parser.parse_args(argv)
    os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    # 1,000 customers make ~2 decisions a minute: at the deployed rate (0.0001) the training
    # sample would hold a handful of rows and starve a retrain, so make run keeps every decision
    os.environ.setdefault("FRAUD_TRAINING_SAMPLE_RATE", "1")
    from shared.adapters.pseudonym_key import ensure_local_key

    key_file = ensure_local_key(os.environ, ROOT)  # the profiles' and webhook's pseudonym key (docs/DATA.md)
    # the local host signs the dashboard in as the development analyst (tools/local_host.py);
    # the app trusts that only in this mode, which it refuses in Azure
    os.environ.setdefault("FRAUD_ANALYST_AUTH", "development")
    from tools.models import ensure_local_release_key

    key = ensure_local_release_key(Path(args.data_dir) / "keys" / "release-signing.pem")

    from shared.composition import app_services
    from tools.local_host import serve_in_background
    from training.backfill import build_merchant_risk, build_profiles, write_profiles
    from tools.send_events import to_event_payload
    from training.dataset import read_labelled_csv

    services = app_services()
    services.ensure_resources()
    say(f"release key: {key} ({services.release_signer.key_id}); serving verifies every model and rules blob with it")
    folder = Path(args.data_dir)
    maturity = services.config.label_maturity_days
    live_days = int(np.ceil(maturity)) + 2  # a matured window, the days between, and a fresh one
    if key_file is not None:
        say(f"pseudonym key: {key_file} (created with 32 random bytes when missing)")
    say(f"simulating {args.customers} customers over {args.days} days (seed {args.seed}); the last {live_days} "
        f"(label maturity {maturity:g} days + 2) are streamed")
    history, live = simulate(folder, args.customers, args.days, args.seed, live_days)
    ensure_model(services, history, folder)
    ensure_shadow(services, history, folder)
    say("backfilling customer profiles from the history")
    history_data = read_labelled_csv(history)
    counts = write_profiles(services.profiles, build_profiles(history_data.transactions, services.profiles.new_profile))
    say(f"  {counts['written']} written, {counts['kept']} already present")
    merchants, as_of = build_merchant_risk(history_data, services.config.label_delay_days)
    services.merchant_store.backfill(merchants, as_of)
    say(f"  merchant risk of {len(merchants)} merchants as of {datetime.fromtimestamp(as_of, timezone.utc):%Y-%m-%d %H:%M} UTC")

    days = by_day(live)
    if args.inject_drift:
        say(f"injecting drift: {inject_drift(days[-1][1], args.seed)} of the last day's card and online payments "
            "move to the mobile channel")
    streamed = {"events": 0, "seconds": 0.0, "redelivered": 0}
    sent: set[str] = set()
    reports = []
    for i, (day_end, rows) in enumerate(days):
        say(f"day {i + 1}/{len(days)}: streaming {len(rows)} transactions of {rows[0]['timestamp'][:10]} "
            "through the Event Hub function")
        for key, value in stream_day(services, rows, garbage=(i == 0)).items():
            streamed[key] += value
        reports.append(monitor_day(services, live[:sum(len(r) for _, r in days[:i + 1])], day_end, sent))
        say_monitoring(reports[-1])
    say("the monitor runs again 15 minutes later, as its timer would")
    reports.append(services.monitoring.run(now=days[-1][0] + timedelta(minutes=15)))
    say_monitoring(reports[-1])

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

    summary = summarize(services, live, streamed)
    final = reports[-2]
    summary["monitoring"] = {
        "runs": len(reports),
        "retrain_requests": sum(1 for r in reports if r["retrain_request"]),
        "runs_with_flagged_features": sum(1 for r in reports if flagged(r)),
        "last_day": {"flagged_features": {n: {k: d[k] for k in ("status", "psi", "alert_at", "moved")}
                                          for n, d in flagged(final).items()},
                     "score_drift": final["drift"]["score"] and {k: final["drift"]["score"][k] for k in ("status", "psi")},
                     "breaches": final["breaches"], "retrain_request": final["retrain_request"]},
    }
    say("summary")
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    say("the monitor's judgement of the last day")
    for line in performance_lines(final):
        print(f"  {line}")
    m = summary["monitoring"]
    print(f"  {m['runs']} monitoring runs: {m['runs_with_flagged_features']} flagged features, "
          f"{m['retrain_requests']} retrain request(s)")
    (folder / "run_summary.json").write_text(json.dumps(summary, indent=1))
    say("the decision archive: the scored hours compacted into Parquet, then one DuckDB query")
    for line in archive_the_run(services, folder):
        print(f"  {line}")
    say("the release step: approving the challenger, as a person with the release key would")
    release_step(services, base, calls[1][1])
    if args.no_serve:
        server.shutdown()
        return 0
    say(f"the API is listening on {base}/api/  (Ctrl-C stops it). Try:")
    print(f"  curl -s -X POST {base}/api/score -H 'Content-Type: application/json' "
          f"-d '{{\"customer_id\":\"C12345\",\"transaction_amount\":250000,\"device_id\":\"new_device_99\","
          f"\"merchant_category\":\"electronics\",\"channel\":\"online\"}}'")
    print(f"  curl -s {base}/api/health")
    print(f"  the analysts' dashboard: {base}/api/dashboard  (signed in as the development analyst "
          "dev.analyst@localhost, Fraud.Analyst + Fraud.Admin; no key)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
