"""Peak memory and time of a retrain reading the training sample, at two volumes 10x apart.

    python -m bench.retrain_memory                       # 1,000 and 10,000 tx/s, 30 days
    python -m bench.retrain_memory --volumes 100,1000    # a quicker pair

Per volume, on a private Azurite (started and stopped here):

1. a writer subprocess fills a fresh training-sample container with what ``--days`` (the
   lookback, 30) of traffic at that rate would leave in the sample at ``--rate`` (0.0001, the
   default setting): ``tx/s x 86,400 x days x rate`` hash-sampled rows and ``tx/s x 86,400 x
   days x --labelled-fraud`` labelled frauds (inclusion 1.0), spread over every hour, in
   hourly append blobs through the real adapter (``TrainingSampleBlobs``), with their labels
   stream. The rows' feature vectors are random (75 float32, frauds shifted in 5 features so
   every time slice has learnable fraud): the retrain's cost depends on rows and bytes, not on
   what the features mean. The rows carry ``rate`` 1.0, not 0.0001: finding ids whose hash
   falls below 0.0001 costs 10,000 hash trials a row; the reader thins them by the same hash
   threshold either way (``h < min(rate, threshold)``), so rows, bytes and work are those of
   the stated rate; only the weights' scale differs (1/threshold instead of 1/(rate x keep rate));
2. a fresh retrain subprocess runs ``training.retrain.retrain`` exactly as the blob-triggered
   function does (settings' ``RetrainConfig``: ``FRAUD_RETRAIN_MAX_ROWS`` = ``--max-rows``,
   3 search candidates, the registry on Azurite, no champion): streaming the sample, the
   bounded buffer, the split, the search, the fit, ONNX conversion and parity, calibration,
   thresholds, the gate, publishing. It reports ``ru_maxrss`` (peak resident memory of that
   process) and wall time.

Prints one JSON line per volume and a summary table.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import base64
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
LIMIT_MB = 2048


def write_sample(container: str, tps: float, days: int, rate: float, labelled_fraud: float, seed: int) -> dict:
    """Fill ``container`` with the sample ``days`` at ``tps`` would leave (see the module docstring)."""
    from shared.composition import AppServices
    from shared.adapters.training_sample_blobs import TrainingSampleBlobs
    from shared.domain.features import FEATURE_NAMES
    from shared.domain.training_sample import SampleLabel

    services = AppServices(dict(os.environ))
    store = TrainingSampleBlobs(services.blob_service, container, process_id="bench")
    store.ensure_container()
    rng = np.random.default_rng(seed)
    per_hour_legit = tps * 3600 * rate
    per_hour_fraud = tps * 3600 * labelled_fraud
    start = NOW - timedelta(days=days)
    rows = frauds = nbytes = 0
    carry_l = carry_f = 0.0
    n_features = len(FEATURE_NAMES)
    for h in range(days * 24):
        hour = start + timedelta(hours=h)
        carry_l += per_hour_legit
        carry_f += per_hour_fraud
        n_l, n_f = int(carry_l), int(carry_f)
        carry_l -= n_l
        carry_f -= n_f
        n = n_l + n_f
        X = rng.normal(size=(n, n_features)).astype(np.float32)
        X[n_l:, :5] += 1.5
        seconds = np.sort(rng.uniform(0, 3600, n))
        lines, labels = [], []
        for i in range(n):
            txn = f"{'F' if i >= n_l else 'L'}{h}-{i}"
            when = (hour + timedelta(seconds=float(seconds[i]))).isoformat()
            features = base64.b64encode(X[i].tobytes()).decode("ascii")
            lines.append(f'{{"transaction_id":"{txn}","customer_id":"C{rng.integers(100000)}","event_time":"{when}",'
                         f'"features":"{features}","fraud_score":0.1,"model_version":"bench","inclusion":1.0,'
                         f'"rate":1.0}}')
            if i >= n_l:
                labels.append(SampleLabel(txn, 1, "").to_line())
        if lines:
            nbytes += sum(len(line) + 1 for line in lines)
            store.append("rows", {hour: lines})
        if labels:
            store.append("labels", {hour: labels})
        rows += n_l
        frauds += n_f
    return {"legitimate_rows": rows, "fraud_rows": frauds, "bytes": nbytes}


def run_retrain(container: str, models: str) -> dict:
    """One retrain as the function runs it; this process's peak RSS and wall time."""
    started = time.perf_counter()
    from shared.composition import AppServices
    from shared.adapters.model_registry import ModelRegistry
    from shared.adapters.training_sample_blobs import TrainingSampleBlobs
    from training.retrain import RetrainConfig, retrain

    services = AppServices(dict(os.environ))
    registry = ModelRegistry(services.blob_service, models)
    registry.ensure_container()
    store = TrainingSampleBlobs(services.blob_service, container)
    config = RetrainConfig.from_settings(services.config, services.promotion_gate)
    empty = f"training-data-{uuid.uuid4().hex[:8]}"
    services.blob_service.get_container_client(empty).create_container()
    outcome = retrain(registry, services.blob_service, store, "bench", config, now=NOW, training_container=empty)
    sample = outcome.get("sample") or registry.manifest(outcome["version"])["data"]["sample"]
    return {"seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "outcome": outcome["outcome"], "rows": outcome.get("rows"), "reason": outcome.get("reason"),
            "sample": {k: sample.get(k) for k in ("lines", "thinned", "hours", "kept", "buffer")}}


def _child(args: argparse.Namespace) -> int:
    if args.child == "write":
        result = write_sample(args.container, args.tps, args.days, args.rate, args.labelled_fraud, args.seed)
    else:
        result = run_retrain(args.container, args.models)
    print(json.dumps(result))
    return 0


def _run_child(kind: str, args: argparse.Namespace, tps: float, container: str, models: str, env: dict) -> dict:
    command = [sys.executable, "-m", "bench.retrain_memory", "--child", kind, "--container", container,
               "--models", models, "--tps", str(tps), "--days", str(args.days), "--rate", str(args.rate),
               "--labelled-fraud", str(args.labelled_fraud), "--seed", str(args.seed)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrain_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", default="1000,10000", help="traffic volumes in tx/s, comma-separated")
    parser.add_argument("--days", type=int, default=30, help="days of traffic in the sample (the lookback)")
    parser.add_argument("--rate", type=float, default=0.0001, help="the sampling rate whose rows are written")
    parser.add_argument("--labelled-fraud", type=float, default=0.00002,
                        help="labelled frauds per transaction (all kept in the sample)")
    parser.add_argument("--max-rows", type=int, default=300_000, help="FRAUD_RETRAIN_MAX_ROWS")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=("write", "retrain"), help=argparse.SUPPRESS)
    parser.add_argument("--container", help=argparse.SUPPRESS)
    parser.add_argument("--models", help=argparse.SUPPRESS)
    parser.add_argument("--tps", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from shared.adapters.pseudonym_key import ensure_local_key

    ensure_local_key(os.environ, Path(__file__).resolve().parent.parent)  # the profiles' pseudonym key
    if args.child:
        return _child(args)

    from tools.azurite import running_azurite

    results = []
    with running_azurite(free_ports=True) as azurite:
        env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string,
               "FRAUD_RETRAIN_MAX_ROWS": str(args.max_rows)}
        for tps in (float(v) for v in args.volumes.split(",")):
            suffix = uuid.uuid4().hex[:8]
            container, models = f"training-sample-{suffix}", f"models-{suffix}"
            written = _run_child("write", args, tps, container, models, env)
            measured = _run_child("retrain", args, tps, container, models, env)
            result = {"tx_per_second": tps, "days": args.days, "rate": args.rate, "max_rows": args.max_rows,
                      "written": written, **measured, "within_limit": measured["peak_rss_mb"] <= LIMIT_MB}
            print(json.dumps(result), flush=True)
            results.append(result)
    print("\n| tx/s | sample rows written (legitimate + fraud) | MB of blobs | lines read | rows kept | "
          "peak RSS (MB) | retrain wall (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        w, s = r["written"], r["sample"]
        print(f"| {r['tx_per_second']:,.0f} | {w['legitimate_rows']:,} + {w['fraud_rows']:,} | {w['bytes'] / 1e6:,.0f} | "
              f"{s['lines']:,} | {s['buffer']['rows']:,} | {r['peak_rss_mb']:,.0f} | {r['seconds']:,.0f} |")
    return 0 if all(r["within_limit"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
