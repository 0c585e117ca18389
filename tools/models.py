"""Operate the model registry.

    python -m tools.models list                       # versions with their test metrics; * = current, s = shadow
    python -m tools.models publish artifacts/model [--make-current]
    python -m tools.models promote <version>          # make any published version current (rollback)
    python -m tools.models current
    python -m tools.models shadow <version>           # score it beside the champion, logged only
    python -m tools.models shadow --clear             # stop shadow scoring
    python -m tools.models shadow                     # the shadow pointer
    python -m tools.models promote-shadow             # make the shadow current if the gate passed it on
                                                      # the latest monitoring report's matured evidence

A shadow challenger scores every batch beside the current model (one more ONNX call per
batch); its score is written to the audit log (``shadow_score``, ``shadow_version``) and
never decides. Scoring processes pick a change up within ``FRAUD_MODEL_REFRESH_SECONDS``.
Like ``promote``, ``shadow`` verifies the version first; an unknown or refused version
exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.domain.model import ModelArtifact, ModelRejected, load_model
from training.pipeline import publish_current


class Refused(Exception):
    """A version the registry cannot point at: not published, or refused by load_model."""


def cmd_list(registry) -> None:
    marks = {registry.shadow().version: "s", registry.current().version: "*"}
    print(f"{'':2}{'version':32} {'created':20} {'ROC AUC':>8} {'AP':>7} {'R@1%FPR':>8}")
    for version in registry.list_versions():
        m = registry.manifest(version)
        test = m.get("metrics", {}).get("test", {})
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "-"  # noqa: E731
        print(f"{marks.get(version, ' '):2}{version:32} {str(m.get('created_at', ''))[:19]:20} "
              f"{fmt(test.get('roc_auc')):>8} {fmt(test.get('average_precision')):>7} {fmt(test.get('recall_at_1pct_fpr')):>8}")


def publish(registry, folder: Path, make_current: bool) -> str:
    artifact = ModelArtifact.from_files((folder / "model.onnx").read_bytes(), (folder / "manifest.json").read_bytes())
    if make_current:
        return publish_current(registry, artifact, reason="published by tools.models")
    load_model(artifact)  # refuse to publish what serving would refuse
    registry.publish(artifact)
    return artifact.version


def verify(registry, version: str) -> None:
    """Load and verify a published version before pointing serving at it; raises ``Refused``."""
    if version not in registry.list_versions():
        raise Refused(f"model version {version} is not published (see: python -m tools.models list)")
    try:
        load_model(registry.load(version))
    except ModelRejected as exc:
        raise Refused(f"model version {version} is refused: {exc}") from None


def promote(registry, version: str) -> None:
    verify(registry, version)
    registry.set_current(version, registry.current(), reason="promoted by tools.models")


def shadow(registry, version: str | None, clear: bool) -> str:
    """Set (after verifying), clear or show the shadow pointer; what to print."""
    if clear:
        registry.clear_shadow(reason="cleared by tools.models")
        return "no shadow model: the current model scores alone"
    if version is None:
        return json.dumps(registry.shadow().document, indent=1)
    if version == registry.current().version:
        raise Refused(f"model version {version} is current: a shadow must be another version")
    verify(registry, version)
    registry.set_shadow(version, reason="set by tools.models")
    return f"{version} now scores as the shadow beside {registry.current().version} (logged only, never decides)"


def promote_shadow(registry, report: dict | None) -> str:
    """Make the shadow current when the latest monitoring report's gate verdict on its matured
    decisions says so (the same gate a retrain passes); raises ``Refused`` with the gate's reasons."""
    version = registry.shadow().version
    if version is None:
        raise Refused("no shadow model is set")
    evidence = (report or {}).get("shadow") or {}
    verdict = evidence.get("verdict")
    if evidence.get("version") != version or not verdict:
        raise Refused(f"the latest monitoring report holds no gate verdict on shadow {version} "
                      f"({evidence.get('rows', 0) if evidence.get('version') == version else 0} matured decisions "
                      "scored by it): wait for its decisions to mature")
    if not verdict["promoted"]:
        raise Refused(f"the gate refuses shadow {version} on its matured evidence: {verdict['reason']}")
    verify(registry, version)
    champion = registry.current()
    registry.set_current(version, champion, reason="promoted on shadow evidence by tools.models",
                         evidence={"report_run_at": report.get("run_at"), "rows": evidence.get("rows"),
                                   "window": [evidence.get("start"), evidence.get("end")], "gate": verdict["reason"]})
    registry.clear_shadow(reason=f"promoted to current (was shadow of {champion.version})")
    return f"{version} is now current (the gate on {evidence.get('rows')} matured decisions: {verdict['reason']})"


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
    p = sub.add_parser("shadow", help="set, clear or show the shadow challenger")
    which = p.add_mutually_exclusive_group()
    which.add_argument("version", nargs="?")
    which.add_argument("--clear", action="store_true")
    sub.add_parser("promote-shadow", help="make the shadow current if the gate passed it on matured evidence")
    args = parser.parse_args(argv)
    services = app_services()
    registry = services.registry
    registry.ensure_container()
    try:
        if args.command == "list":
            cmd_list(registry)
        elif args.command == "current":
            print(json.dumps(registry.current().document, indent=1))
        elif args.command == "publish":
            print(f"published {publish(registry, Path(args.folder), args.make_current)}")
        elif args.command == "shadow":
            print(shadow(registry, args.version, args.clear))
        elif args.command == "promote-shadow":
            print(promote_shadow(registry, services.monitoring_blobs.latest()))
        else:
            promote(registry, args.version)
            print(f"{args.version} is now current")
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
