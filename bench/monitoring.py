"""How long the monitoring timer takes over N logged decisions (default 100,000).

    python -m tools.azurite --free-ports -- python -m bench.monitoring --decisions 100000

Writes N decisions (feature vectors from a replay of simulated data, as served) into the
audit log over the last 24 hours, labels 5% of them through a label file, then times one
``MonitoringService.run()`` (label ingest + join, merchant risk recount, drift over every
feature, live performance, report).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.monitoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    args = parser.parse_args(argv)

    from shared.domain.features import replay
    from shared.composition import app_services
    from training.dataset import merchant_risk_replay, read_labelled_csv
    from training.pipeline import simulate_train_publish

    folder = Path(tempfile.mkdtemp(prefix="bench-mon-"))
    services = app_services()
    services.ensure_resources()
    artifact = simulate_train_publish(services.registry, folder, customers=1500, days=60, seed=9, train_args=["--max-iter", "60"])
    data = read_labelled_csv(folder / "transactions.csv")
    X = replay(data.transactions, merchants=merchant_risk_replay(data, 7.0))
    n = min(args.decisions, len(X))
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=24)
    from shared.domain.model import load_model

    scores = load_model(artifact).predict(X[:n])
    t0 = time.perf_counter()
    records = []
    for i in range(n):
        txn = data.transactions[i]
        when = start + timedelta(seconds=i * 86000 / n)
        records.append({"transaction_id": f"M{i}", "customer_id": txn.customer_id, "transaction_amount": txn.transaction_amount,
                        "currency": "NGN", "timestamp": when.isoformat(), "fraud_score": float(scores[i]),
                        "risk_level": "High" if scores[i] > 0.8 else "Low", "action": "approve", "is_fraud": False,
                        "reasons": [], "rules_fired": [], "model_version": artifact.version,
                        "features": [float(v) for v in X[i]], "latency_ms": 5.0, "scored_at": when.isoformat(),
                        "merchant_id": txn.merchant_id})
        if len(records) == 5000:
            services.audit.write(records)
            records = []
    services.audit.write(records)
    write_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    labelled = rng.choice(n, size=n // 20, replace=False)
    lines = ["transaction_id,label"] + [f"M{i},{int(data.labels[i])}" for i in labelled]
    services.label_files.upload("bench/labels.csv", "\n".join(lines).encode())
    monitoring = services.monitoring
    monitoring.clock = lambda: now
    t0 = time.perf_counter()
    report = monitoring.run()
    run_s = time.perf_counter() - t0
    summary = {"decisions": report["window"]["decisions"], "labels_joined": report["labels"]["joined"],
               "merchants": report["merchant_risk"].get("merchants"), "write_seconds": round(write_s, 1),
               "timer_run_seconds": round(run_s, 2)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
