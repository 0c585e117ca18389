"""Send a file of transactions to the scoring pipeline.

    # to a real Event Hub (identity: az login / managed identity)
    python -m tools.send_events data/stream_day.csv --namespace myns.servicebus.windows.net --hub transactions
    # or with a connection string in EVENTHUB_CONNECTION_STRING
    python -m tools.send_events data/stream_day.jsonl --hub transactions
    # locally: through the Event Hub function in host-sized batches (Azurite)
    python -m tools.send_events data/stream_day.csv --local

Events are JSON; the partition key is the customer id, so one customer's events stay
in order on one partition. CSV or JSON lines; label columns (is_fraud,
fraud_scenario, fraud_incident, labelled_at) are never sent.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

LABEL_COLUMNS = ("is_fraud", "fraud_scenario", "fraud_incident", "labelled_at")
HOST_BATCH = 100  # host.json extensions.eventHubs.maxEventBatchSize


def read_transactions(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if path.suffix in (".jsonl", ".ndjson"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    return [to_event_payload(r) for r in rows]


def to_event_payload(row: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in row.items() if k not in LABEL_COLUMNS and v not in ("", None)}
    if isinstance(body.get("transaction_amount"), str):
        try:
            body["transaction_amount"] = float(body["transaction_amount"])
        except ValueError:
            pass  # sent as is: the function dead-letters it with the reason
    return body


def event_hub_batch(bodies: list[Any], partition: str = "0", first_sequence: int = 0):
    """A cardinality=many batch as the host hands it to the function: real func.EventHubEvent
    objects with the batch's shared trigger metadata (partition context)."""
    import azure.functions as func
    from azure.functions import meta

    metadata = {"PartitionContext": meta.Datum(json.dumps({"PartitionId": partition, "EventHubName": "transactions"}), "json")}
    now = datetime.now(timezone.utc)
    events = []
    for k, body in enumerate(bodies):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        events.append(func.EventHubEvent(body=raw, trigger_metadata=metadata, sequence_number=first_sequence + k,
                                         enqueued_time=now, partition_key=None, offset=str(first_sequence + k)))
    return events


def feed_locally(bodies: list[Any], batch_size: int = HOST_BATCH, partitions: int = 4,
                 progress: Callable[[int, int], None] | None = None) -> float:
    """Run the Event Hub function over the bodies as the host would; returns seconds taken."""
    from functions.score_stream import score_stream

    started = time.perf_counter()
    for k in range(0, len(bodies), batch_size):
        batch_no = k // batch_size
        score_stream(event_hub_batch(bodies[k:k + batch_size], partition=str(batch_no % partitions), first_sequence=k))
        if progress:
            progress(min(k + batch_size, len(bodies)), len(bodies))
    return time.perf_counter() - started


def send_to_event_hub(bodies: Iterable[dict[str, Any]], hub: str, namespace: str | None = None,
                      connection_string: str | None = None, progress: Callable[[int], None] | None = None) -> int:
    """Send with azure-eventhub, batched per customer (partition key), as large as the hub allows."""
    from azure.eventhub import EventHubProducerClient

    if connection_string:
        producer = EventHubProducerClient.from_connection_string(connection_string, eventhub_name=hub)
    else:
        from azure.identity import DefaultAzureCredential

        producer = EventHubProducerClient(fully_qualified_namespace=namespace, eventhub_name=hub,
                                          credential=DefaultAzureCredential())
    sent = 0
    with producer:
        for batch in pack_batches(bodies, lambda key: producer.create_batch(partition_key=key)):
            producer.send_batch(batch)
            sent += len(batch)
            if progress:
                progress(sent)
    return sent


def pack_batches(bodies: Iterable[dict[str, Any]], new_batch: Callable[[str | None], Any]) -> Iterable[Any]:
    """EventDataBatches per customer (the partition key), each as full as the hub allows."""
    from azure.eventhub import EventData

    by_customer: dict[str, list[dict[str, Any]]] = {}
    for body in bodies:
        by_customer.setdefault(str(body.get("customer_id", "")), []).append(body)
    for customer, items in by_customer.items():
        batch = new_batch(customer or None)
        for body in items:
            event = EventData(json.dumps(body))
            try:
                batch.add(event)
            except ValueError:  # full: hand it over and start another
                yield batch
                batch = new_batch(customer or None)
                batch.add(event)
        yield batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.send_events", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="CSV or JSON lines of transactions")
    parser.add_argument("--local", action="store_true", help="feed the local Event Hub function (Azurite)")
    parser.add_argument("--hub", default=os.environ.get("EVENTHUB_NAME", "transactions"))
    parser.add_argument("--namespace", help="fully qualified namespace, for identity-based sending")
    parser.add_argument("--batch-size", type=int, default=HOST_BATCH)
    args = parser.parse_args(argv)
    bodies = read_transactions(args.file)
    if args.local:
        seconds = feed_locally(bodies, args.batch_size,
                               progress=lambda done, total: print(f"\r{done}/{total} events", end="", flush=True))
        print(f"\nfed {len(bodies)} events through score_stream in {seconds:.1f}s ({len(bodies) / seconds:.0f}/s)")
        return 0
    connection = os.environ.get("EVENTHUB_CONNECTION_STRING")
    if not (args.namespace or connection):
        parser.error("give --namespace (identity) or set EVENTHUB_CONNECTION_STRING, or use --local")
    sent = send_to_event_hub(bodies, args.hub, args.namespace, connection,
                             progress=lambda n: print(f"\r{n}/{len(bodies)} sent", end="", flush=True))
    print(f"\nsent {sent} events to {args.hub}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
