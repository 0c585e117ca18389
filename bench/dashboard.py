"""How long the analysts' dashboard takes to load over N logged decisions (default 100,000).

    python -m tools.azurite --free-ports -- python -m bench.dashboard --decisions 100000

Writes N decisions over the last 24 hours into the audit log (batches of 5,000; about 5% High
and 10% Medium, awaiting review), then, in Debian's headless Chromium driven by Playwright,
times the page from navigation until the alert queue, the charts and the model are rendered:
first with no monitoring report (stats aggregated from the audit log, capped), then after one
monitoring run (stats from the report), several loads each. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import os
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def load_times(url: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("body[data-ready]", state="attached", timeout=120_000)
            out.append(time.perf_counter() - t0)
            ready = page.get_attribute("body", "data-ready")
            rows = page.locator("#alert-rows tr").count()
            charts = page.locator(".chart svg").count()
            if ready != "ok" or rows == 0 or charts < 4:
                raise SystemExit(f"page not fully rendered: ready={ready} rows={rows} charts={charts} "
                                 f"status={page.inner_text('#status')}")
            page.close()
        browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    from shared.adapters.pseudonym_key import ensure_local_key

    ensure_local_key(os.environ, Path(__file__).resolve().parent.parent)  # the profiles' pseudonym key
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")

    # the local host signs the page in as the development analyst; the app trusts it in this mode only
    os.environ.setdefault("FRAUD_ANALYST_AUTH", "development")
    from tools.models import ensure_local_release_key

    ensure_local_release_key()  # the development release key (data/keys/): the bench's models are signed

    from function_app import indexed_functions
    from shared.composition import app_services
    from tools.local_host import serve_in_background
    from training.pipeline import simulate_train_publish

    folder = Path(tempfile.mkdtemp(prefix="bench-dash-"))
    services = app_services()
    services.ensure_resources()
    artifact = simulate_train_publish(services.registry, services.release_signer, folder, customers=300, days=30, seed=5, train_args=["--max-iter", "30"])
    width = len(artifact.manifest["feature_names"])

    n = args.decisions
    rng = np.random.default_rng(0)
    scores = rng.beta(0.6, 6.0, size=n)
    levels = rng.choice(["High", "Medium", "Low"], size=n, p=[0.05, 0.10, 0.85])
    features = rng.gamma(2.0, 1.0, size=(n, width)).astype(np.float32)
    now = datetime.now(timezone.utc)
    start = now - timedelta(hours=24)
    t0 = time.perf_counter()
    records = []
    for i in range(n):
        when = (start + timedelta(seconds=i * 86_000 / n)).isoformat()
        level = str(levels[i])
        records.append({"transaction_id": f"D{i}", "customer_id": f"C{i % 5000}", "transaction_amount": float(1000 + i % 90_000),
                        "currency": "NGN", "timestamp": when, "fraud_score": float(scores[i]), "risk_level": level,
                        "action": {"High": "block", "Medium": "review", "Low": "approve"}[level],
                        "is_fraud": level == "High", "reasons": ["amount 9x the 30-day average"] if level != "Low" else [],
                        "rules_fired": [], "model_version": artifact.version,
                        "features": [round(float(v), 4) for v in features[i]], "latency_ms": float(3 + i % 17),
                        "scored_at": when, "channel": "online", "merchant_id": f"M{i % 300}", "device_id": f"D{i % 7000}"})
        if len(records) == 5000:
            services.audit.write(records)
            records = []
    if records:
        services.audit.write(records)
    write_s = time.perf_counter() - t0

    server, base = serve_in_background(indexed_functions())
    url = f"{base}/api/dashboard"
    try:
        no_report = load_times(url, args.runs)
        t0 = time.perf_counter()
        report = services.monitoring.run()
        monitor_s = time.perf_counter() - t0
        with_report = load_times(url, args.runs)
        t0 = time.perf_counter()
        from urllib.request import urlopen

        with urlopen(f"{base}/api/alerts?limit=50") as r:
            page1 = json.loads(r.read())
        alerts_s = time.perf_counter() - t0
    finally:
        server.shutdown()
    summary = {
        "decisions": n, "decisions_in_report_window": report["window"]["decisions"], "write_seconds": round(write_s, 1),
        "monitoring_run_seconds": round(monitor_s, 1),
        "page_load_seconds_no_report": {"median": round(statistics.median(no_report), 2), "max": round(max(no_report), 2)},
        "page_load_seconds_with_report": {"median": round(statistics.median(with_report), 2), "max": round(max(with_report), 2)},
        "alerts_api_seconds": round(alerts_s, 2), "alerts_first_page": page1["count"], "alerts_scanned_hours": page1["scanned_hours"],
        "runs": args.runs,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
