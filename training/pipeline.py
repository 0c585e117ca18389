"""Simulate -> train -> publish: the one chain that the tests, ``make run`` and the
benchmarks use to get data and a current model.

Each step is a function of its own, so a caller can stop after any of them:
``simulate_csv`` writes synthetic transactions, ``split_by_day`` keeps the newest whole
days apart (to stream them after the history), ``train_artifact`` trains and converts a
model, ``publish_current`` publishes it and makes it current (verified first, as serving
would), and ``simulate_train_publish`` does all of it.
"""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from shared.domain.model import ModelArtifact, load_model
from training.simulate import SimulationConfig, generate, write_csv


def simulate_csv(path: Path, customers: int, days: int, seed: int, *, ends_yesterday: bool = False) -> Path:
    """Synthetic transactions as CSV; ``ends_yesterday`` dates them so the last day is recent
    (the monitoring window sees it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = SimulationConfig(customers=customers, days=days, seed=seed)
    if ends_yesterday:
        start = (datetime.now(timezone.utc) - timedelta(days=days + 1)).date().isoformat()
        config = SimulationConfig(customers=customers, days=days, seed=seed, start=start)
    write_csv(generate(config), path)
    return path


def split_by_day(data: Path, history: Path, live_days: int = 1) -> tuple[list[dict[str, str]], int]:
    """Write all but the newest ``live_days`` whole days to ``history``; return the newest days'
    rows (in time order) and how many days the history holds."""
    with open(data, newline="") as handle:
        rows = list(csv.DictReader(handle))
    days = sorted({r["timestamp"][:10] for r in rows})
    if live_days >= len(days):
        raise ValueError(f"{data} holds {len(days)} days; {live_days} live days leave no history")
    first_live = days[-live_days]
    with open(history, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["timestamp"][:10] < first_live)
    return [r for r in rows if r["timestamp"][:10] >= first_live], len(days) - live_days


def train_artifact(data: Path, out: Path, extra_args: Sequence[str] = ()) -> ModelArtifact:
    """``python -m training.train --data data --out out *extra_args`` as a call."""
    from training.train import build_parser, train

    return train(build_parser().parse_args(["--data", str(data), "--out", str(out), *extra_args]))


def publish_current(registry: Any, artifact: ModelArtifact, signer: Any, *, approved_by: str | None = None,
                    **details: Any) -> str:
    """Publish ``artifact``, sign its release with ``signer`` (the release key: serving refuses
    an unsigned model) and make it current; refused if serving would refuse it."""
    from shared.service.model_release import sign_model

    if signer is None:
        raise ValueError("publishing a current model needs the release key (FRAUD_RELEASE_KEY)")
    load_model(artifact)
    registry.publish(artifact)
    who = approved_by or signer.signed_in() or "unknown"
    sign_model(registry, signer, artifact.version, approved_by=who, artifact=artifact)
    registry.set_current(artifact.version, registry.current(), approved_by=who, **details)
    return artifact.version


def simulate_train_publish(registry: Any, signer: Any, folder: Path, customers: int, days: int, seed: int,
                           train_args: Sequence[str] = ()) -> ModelArtifact:
    data = simulate_csv(folder / "transactions.csv", customers, days, seed)
    artifact = train_artifact(data, folder / "model", train_args)
    publish_current(registry, artifact, signer)
    return artifact
