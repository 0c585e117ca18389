"""Operate the model registry.

    python -m tools.models list                       # versions with their test metrics; * = serving
    python -m tools.models publish artifacts/model [--make-current]
    python -m tools.models promote <version>          # make any published version current (rollback)
    python -m tools.models current
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.domain.model import ModelArtifact, load_model
from training.pipeline import publish_current


def cmd_list(registry) -> None:
    current = registry.current().version
    print(f"{'':2}{'version':32} {'created':20} {'ROC AUC':>8} {'AP':>7} {'R@1%FPR':>8}")
    for version in registry.list_versions():
        m = registry.manifest(version)
        test = m.get("metrics", {}).get("test", {})
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "-"  # noqa: E731
        print(f"{'*' if version == current else ' ':2}{version:32} {str(m.get('created_at', ''))[:19]:20} "
              f"{fmt(test.get('roc_auc')):>8} {fmt(test.get('average_precision')):>7} {fmt(test.get('recall_at_1pct_fpr')):>8}")


def publish(registry, folder: Path, make_current: bool) -> str:
    artifact = ModelArtifact.from_files((folder / "model.onnx").read_bytes(), (folder / "manifest.json").read_bytes())
    if make_current:
        return publish_current(registry, artifact, reason="published by tools.models")
    load_model(artifact)  # refuse to publish what serving would refuse
    registry.publish(artifact)
    return artifact.version


def promote(registry, version: str) -> None:
    load_model(registry.load(version))  # verify before pointing serving at it
    registry.set_current(version, registry.current(), reason="promoted by tools.models")


def main(argv: list[str] | None = None) -> int:
    from shared.composition import app_services

    parser = argparse.ArgumentParser(prog="python -m tools.models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    sub.add_parser("current")
    p = sub.add_parser("publish")
    p.add_argument("folder")
    p.add_argument("--make-current", action="store_true")
    p = sub.add_parser("promote")
    p.add_argument("version")
    args = parser.parse_args(argv)
    registry = app_services().registry
    registry.ensure_container()
    if args.command == "list":
        cmd_list(registry)
    elif args.command == "current":
        print(json.dumps(registry.current().document, indent=1))
    elif args.command == "publish":
        print(f"published {publish(registry, Path(args.folder), args.make_current)}")
    else:
        promote(registry, args.version)
        print(f"{args.version} is now current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
