"""Operate the model registry and its signed releases.

    python -m tools.models list                       # versions, test metrics and status (candidate,
                                                      # signed, current *, shadow s)
    python -m tools.models approve <version> [--by NAME]
                                                      # sign a candidate's release and make it current
    python -m tools.models publish artifacts/model [--make-current]   # --make-current signs it
    python -m tools.models promote <version> [--by NAME]   # make any published version current (rollback): signs
    python -m tools.models current
    python -m tools.models shadow <version> [--by NAME]    # score it beside the champion, logged only: signs
    python -m tools.models shadow --clear             # stop shadow scoring
    python -m tools.models shadow                     # the shadow pointer
    python -m tools.models promote-shadow [--by NAME] # make the shadow current if the gate passed it on
                                                      # the latest monitoring report's matured evidence
    python -m tools.models sign-rules rules.json [--blob container/name] [--by NAME]
                                                      # publish signed decision rules (FRAUD_RULES_BLOB)
    python -m tools.models create-key [path]          # a local release key (PEM EC P-256) for make run

Serving scores only with a version whose release the release key (``FRAUD_RELEASE_KEY``: a Key
Vault key in Azure, a PEM key file locally) signed over exactly its model bytes and manifest;
a retrain stops at "candidate" unless ``FRAUD_AUTO_PROMOTE=true``. Every command that points
serving at a version (approve, promote, shadow, promote-shadow, publish --make-current) signs
it first, so it needs the key: in Azure Key Vault Crypto User on it, which only admins and the
release identity hold. ``approved_by`` is ``--by``, else the signed-in identity (``az login``),
else the OS user.

A shadow challenger scores every batch beside the current model (one more ONNX call per
batch); its score is written to the audit log (``shadow_score``, ``shadow_version``) and
never decides. Scoring processes pick a change up within ``FRAUD_MODEL_REFRESH_SECONDS``.
Like ``promote``, ``shadow`` verifies the version first; an unknown or refused version
exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from shared.domain.model import ModelArtifact, ModelRejected, load_model
from shared.service.model_release import ReleaseCheck, approve as approve_release, is_signed, sign_model, sign_rules
from training.pipeline import publish_current

ROOT = Path(__file__).resolve().parent.parent
DEV_KEY = ROOT / "data" / "keys" / "release-signing.pem"


def ensure_local_release_key(path: Path = DEV_KEY) -> str:
    """``make run``, benchmarks: FRAUD_RELEASE_KEY as set, else the development key file (created
    when missing) and the setting pointed at it. Never a Key Vault key."""
    from shared.adapters.release_keys import LocalReleaseKey, is_key_vault

    setting = os.environ.get("FRAUD_RELEASE_KEY", "")
    if not setting:
        setting = os.environ["FRAUD_RELEASE_KEY"] = str(path)
    if not is_key_vault(setting):
        LocalReleaseKey.create_file(setting)
    return setting


class Refused(Exception):
    """A version the registry cannot point at: not published, or refused by load_model."""


class Signing:
    """The release key's signer and checker, and who signs (``--by`` or the signed-in identity)."""

    def __init__(self, services, by: str | None) -> None:
        self.services, self.by = services, by

    @property
    def signer(self):
        signer = self.services.release_signer
        if signer is None:
            raise Refused("FRAUD_RELEASE_KEY is empty: signing a release needs the release key")
        return signer

    @property
    def check(self) -> ReleaseCheck:
        return self.services.release_check

    def who(self) -> str:
        return self.by or self.signer.signed_in() or "unknown"

    def sign_if_unsigned(self, registry, version: str) -> None:
        if registry.release(version) is None:
            sign_model(registry, self.signer, version, approved_by=self.who())
        self.checked(registry, version)

    def checked(self, registry, version: str) -> None:
        try:
            self.check.check(registry.load(version), registry.release(version))
        except ModelRejected as exc:
            raise Refused(f"model version {version} is refused: {exc}") from None


def status_of(registry, check: ReleaseCheck, version: str, manifest: dict) -> str:
    if is_signed(registry, check, version):
        return "signed"
    if registry.release(version) is not None:
        return "BAD-SIGNATURE"
    promotion = manifest.get("promotion")
    if promotion is None:
        return "unsigned"
    return "candidate" if promotion.get("promoted") else "gate-rejected"


def cmd_list(registry, check: ReleaseCheck | None = None) -> None:
    marks = {registry.shadow().version: "s", registry.current().version: "*"}
    check = check or ReleaseCheck(None)
    print(f"{'':2}{'version':32} {'created':20} {'ROC AUC':>8} {'AP':>7} {'R@1%FPR':>8}  status")
    for version in registry.list_versions():
        m = registry.manifest(version)
        test = m.get("metrics", {}).get("test", {})
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else "-"  # noqa: E731
        status = status_of(registry, check, version, m)
        role = {"*": ", current", "s": ", shadow"}.get(marks.get(version, ""), "")
        print(f"{marks.get(version, ' '):2}{version:32} {str(m.get('created_at', ''))[:19]:20} "
              f"{fmt(test.get('roc_auc')):>8} {fmt(test.get('average_precision')):>7} {fmt(test.get('recall_at_1pct_fpr')):>8}"
              f"  {status}{role}")


def publish(registry, folder: Path, make_current: bool, signing: Signing | None = None) -> str:
    artifact = ModelArtifact.from_files((folder / "model.onnx").read_bytes(), (folder / "manifest.json").read_bytes())
    if make_current:
        assert signing is not None
        return publish_current(registry, artifact, signing.signer, approved_by=signing.who(),
                               reason="published by tools.models")
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


def approve(registry, signing: Signing, version: str, reason: str = "approved") -> str:
    """Sign ``version``'s release (unless signed) and make it current; what to print."""
    verify(registry, version)
    gate = (registry.manifest(version).get("promotion") or {})
    try:
        approve_release(registry, signing.signer, signing.check, version, signing.who(), reason=reason)
    except ModelRejected as exc:
        raise Refused(f"model version {version} is refused: {exc}") from None
    verdict = f" (the retrain's gate: {gate.get('reason')})" if gate else ""
    return f"{version} is now current, signed by {registry.release(version)['statement']['approved_by']}{verdict}"


def promote(registry, version: str, signing: Signing | None = None) -> None:
    """Any published version made current (a rollback): signed like an approval."""
    if signing is None:
        raise Refused("promoting needs the release key")
    approve(registry, signing, version, reason="promoted by tools.models")


def shadow(registry, version: str | None, clear: bool, signing: Signing | None = None) -> str:
    """Set (after verifying and signing), clear or show the shadow pointer; what to print."""
    if clear:
        registry.clear_shadow(reason="cleared by tools.models")
        return "no shadow model: the current model scores alone"
    if version is None:
        return json.dumps(registry.shadow().document, indent=1)
    if version == registry.current().version:
        raise Refused(f"model version {version} is current: a shadow must be another version")
    verify(registry, version)
    if signing is None:
        raise Refused("setting a shadow needs the release key: serving refuses an unsigned shadow")
    signing.sign_if_unsigned(registry, version)
    registry.set_shadow(version, reason="set by tools.models", approved_by=signing.who())
    return f"{version} now scores as the shadow beside {registry.current().version} (logged only, never decides)"


def promote_shadow(registry, report: dict | None, signing: Signing | None = None) -> str:
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
    if signing is None:
        raise Refused("promoting needs the release key")
    signing.sign_if_unsigned(registry, version)
    champion = registry.current()
    registry.set_current(version, champion, reason="promoted on shadow evidence by tools.models",
                         approved_by=signing.who(),
                         evidence={"report_run_at": report.get("run_at"), "rows": evidence.get("rows"),
                                   "window": [evidence.get("start"), evidence.get("end")], "gate": verdict["reason"]})
    registry.clear_shadow(reason=f"promoted to current (was shadow of {champion.version})")
    return f"{version} is now current (the gate on {evidence.get('rows')} matured decisions: {verdict['reason']})"


def publish_rules(blob_service, signing: Signing, source: Path, blob_path: str) -> str:
    """Upload ``source`` as the rules blob with its signature beside it (``<name>.sig``); refused
    when it is not valid rules. The signature goes first: a scorer reading between the two
    uploads sees the new signature over the old rules, refuses them and keeps its last good rules."""
    from shared.composition import RULES_SIGNATURE_SUFFIX
    from shared.domain.decision import DecisionRules

    container, _, name = blob_path.partition("/")
    if not container or not name:
        raise Refused(f"the rules blob must be 'container/name', not {blob_path!r} (set FRAUD_RULES_BLOB or --blob)")
    data = source.read_bytes()
    try:
        DecisionRules.from_json(data)
    except ValueError as exc:
        raise Refused(f"{source} is not valid rules: {exc}") from None
    document = sign_rules(signing.signer, blob_path, data, signing.who())
    client = blob_service.get_container_client(container)
    from shared.adapters.storage_account import create_if_missing

    create_if_missing(client.create_container)
    client.upload_blob(name + RULES_SIGNATURE_SUFFIX, json.dumps(document, indent=1).encode(), overwrite=True)
    client.upload_blob(name, data, overwrite=True)
    return f"published signed rules to {blob_path} (sha256 {document['statement']['sha256'][:12]}, by {signing.who()})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    sub.add_parser("current")
    p = sub.add_parser("publish")
    p.add_argument("folder")
    p.add_argument("--make-current", action="store_true")
    p.add_argument("--by")
    p = sub.add_parser("approve", help="sign a candidate's release and make it current")
    p.add_argument("version")
    p.add_argument("--by", help="who approves (default: the signed-in identity, locally the OS user)")
    p = sub.add_parser("promote", help="make any published version current (signs it)")
    p.add_argument("version")
    p.add_argument("--by")
    p = sub.add_parser("shadow", help="set, clear or show the shadow challenger")
    which = p.add_mutually_exclusive_group()
    which.add_argument("version", nargs="?")
    which.add_argument("--clear", action="store_true")
    p.add_argument("--by")
    p = sub.add_parser("promote-shadow", help="make the shadow current if the gate passed it on matured evidence")
    p.add_argument("--by")
    p = sub.add_parser("sign-rules", help="publish signed decision rules")
    p.add_argument("file")
    p.add_argument("--blob", help="container/name (default: FRAUD_RULES_BLOB)")
    p.add_argument("--by")
    p = sub.add_parser("create-key", help="create a local release key file (PEM EC P-256)")
    p.add_argument("path", nargs="?", default=str(DEV_KEY))
    args = parser.parse_args(argv)
    if args.command == "create-key":
        from shared.adapters.release_keys import LocalReleaseKey

        key = LocalReleaseKey.create_file(args.path)
        print(f"{args.path}: release key {key.key_id} (set FRAUD_RELEASE_KEY to this path)")
        return 0

    from shared.composition import app_services

    services = app_services()
    registry = services.release_registry  # written as the release identity (FRAUD_MODEL_STORAGE)
    registry.ensure_container()
    signing = Signing(services, getattr(args, "by", None))
    try:
        if args.command == "list":
            cmd_list(registry, services.release_check)
        elif args.command == "current":
            print(json.dumps(registry.current().document, indent=1))
        elif args.command == "publish":
            print(f"published {publish(registry, Path(args.folder), args.make_current, signing)}")
        elif args.command == "approve":
            print(approve(registry, signing, args.version))
        elif args.command == "shadow":
            print(shadow(registry, args.version, args.clear, signing))
        elif args.command == "promote-shadow":
            print(promote_shadow(registry, services.monitoring_blobs.latest(), signing))
        elif args.command == "sign-rules":
            print(publish_rules(services.blob_service, signing, Path(args.file), args.blob or services.config.rules_blob))
        else:
            promote(registry, args.version, signing)
            print(f"{args.version} is now current")
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
