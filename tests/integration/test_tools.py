"""Local tools: the HTTP host on a real socket, the producer's batching, the audit export."""
import csv
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from azure.eventhub import EventDataBatch

from fraud_events import event_hub_batch, transaction
from function_app import indexed_functions
from functions.score_stream import score_stream
from tools.export_audit import export, parse_moment
from tools.local_host import serve_in_background
from tools.send_events import pack_batches, read_transactions


def request(url, body=None, method=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_local_host_serves_the_registered_http_functions(published):
    server, base = serve_in_background(indexed_functions())
    try:
        status, body = request(f"{base}/api/score", transaction(1))
        assert status == 200 and body["transaction_id"] == "T1" and body["model_version"] == published.version
        assert request(f"{base}/api/predict", {"customer_id": "x/y"})[0] == 400
        assert request(f"{base}/api/health")[0] == 200
        assert request(f"{base}/api/nowhere")[0] == 404
        assert request(f"{base}/api/score", method="GET")[0] == 405
    finally:
        server.shutdown()


def test_producer_packs_per_customer_batches_that_respect_the_size_limit(tmp_path):
    rows = [transaction(i, customer=f"C{i % 2}", merchant_category="x" * 300) for i in range(40)]
    path = tmp_path / "tx.jsonl"
    path.write_text("\n".join(json.dumps({**r, "is_fraud": 0}) for r in rows))
    bodies = read_transactions(path)
    assert all("is_fraud" not in b for b in bodies)
    batches = list(pack_batches(bodies, lambda key: EventDataBatch(max_size_in_bytes=4096, partition_key=key)))
    assert sum(len(b) for b in batches) == 40
    assert len(batches) > 2  # split by size, not only by customer
    assert all(b.size_in_bytes <= 4096 for b in batches)


def test_csv_rows_become_typed_event_payloads(tmp_path):
    path = tmp_path / "tx.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(transaction(0)) + ["is_fraud", "fraud_scenario"])
        writer.writeheader()
        writer.writerow({**transaction(0, amount=12.5), "is_fraud": 1, "fraud_scenario": "card_testing", "country": ""})
    (body,) = read_transactions(path)
    assert body["transaction_amount"] == 12.5 and "country" not in body and "fraud_scenario" not in body


def test_audit_export_writes_the_seeds_log_columns_for_a_time_range(published, services, tmp_path):
    bodies = [transaction(i, when=f"2026-11-20T{10 + i:02d}:00:00+01:00") for i in range(4)]
    score_stream(event_hub_batch(bodies))
    out = tmp_path / "logs" / "transactions_log.csv"
    count = export(services.audit, parse_moment("2026-11-20T10:00:00+00:00"), parse_moment("2026-11-20T12:00:00+00:00"), out)
    rows = list(csv.DictReader(open(out)))
    assert count == 2 and [r["transaction_id"] for r in rows] == ["T1", "T2"]  # 11:00 and 12:00 Lagos = 10:00, 11:00 UTC
    for column in ("transaction_id", "customer_id", "transaction_amount", "fraud_score", "risk_level", "timestamp", "label"):
        assert column in rows[0]
    assert rows[0]["label"] == ""


def test_high_alerts_reach_the_webhook(published, services, monkeypatch):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("FRAUD_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hook")
    monkeypatch.setenv("FRAUD_HIGH_THRESHOLD", "0.0")
    monkeypatch.setenv("FRAUD_MEDIUM_THRESHOLD", "0.0")
    from shared.composition import app_services, reset_app_services

    reset_app_services()
    score_stream(event_hub_batch([transaction(1)]))
    app_services().scoring.webhook._pool.shutdown(wait=True)
    server.shutdown()
    assert len(received) == 1 and received[0]["alert"]["transaction_id"] == "T1"
    assert "High risk" in received[0]["text"]
    # the webhook leaves the bank: the customer's keyed pseudonym, never a raw customer or device id
    pseudonym = app_services().pseudonyms.customer("C1")
    assert received[0]["alert"]["customer_pseudonym"] == pseudonym and pseudonym in received[0]["text"]
    sent = json.dumps(received[0])
    assert '"C1"' not in sent and "customer C1" not in sent and "D1" not in sent and "12,000" not in sent
    assert set(received[0]["alert"]) == {"transaction_id", "timestamp", "fraud_score", "risk_level", "action", "reasons",
                                         "rules_fired", "model_version", "customer_pseudonym"}


def rules_container(services):
    container = services.blob_service.get_container_client("rules-" + services.env["FRAUD_PROFILE_TABLE"][-8:])
    container.create_container()
    return container


def test_signed_rules_from_a_blob_raise_the_risk(published, services, monkeypatch, tmp_path, capsys):
    from tools.models import main as models

    container = rules_container(services)
    monkeypatch.setenv("FRAUD_RULES_BLOB", f"{container.container_name}/rules.json")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"block_customers": ["C-blocked"]}))
    assert models(["sign-rules", str(rules), "--by", "ada"]) == 0  # the blob and rules.json.sig beside it
    assert "published signed rules" in capsys.readouterr().out
    from shared.composition import app_services, reset_app_services

    reset_app_services()
    outcome = app_services().scoring.score_request(transaction(8, customer="C-blocked", amount=10.0))
    assert outcome.delivery.record.risk_level == "High" and outcome.delivery.record.verdict.rules_fired == ("blocked_customer",)
    rules.write_text("{not json")
    assert models(["sign-rules", str(rules)]) == 2 and "not valid rules" in capsys.readouterr().err


def test_unsigned_or_tampered_rules_are_refused_keeping_the_last_good_rules_or_the_defaults(
        published, services, monkeypatch, release_key):
    from shared.adapters.release_keys import LocalReleaseKey
    from shared.composition import app_services, reset_app_services
    from shared.service.model_release import sign_rules

    container = rules_container(services)
    path = f"{container.container_name}/rules.json"
    monkeypatch.setenv("FRAUD_RULES_BLOB", path)
    blocking = json.dumps({"block_customers": ["C-blocked"]}).encode()
    ids = iter(range(500, 600))

    def blocked() -> bool:
        outcome = app_services().scoring.score_request(transaction(next(ids), customer="C-blocked", amount=10.0))
        return outcome.delivery.record.verdict.rules_fired == ("blocked_customer",)

    container.upload_blob("rules.json", blocking)  # unsigned: refused at start, the built-in defaults serve
    reset_app_services()
    assert not blocked()
    source = app_services().rules_source
    assert "not signed" in source.refusals[-1]

    container.upload_blob("rules.json.sig", json.dumps(sign_rules(release_key, path, blocking, "ada")), overwrite=True)
    source._read_at = 0.0  # the minute's re-read is due
    assert blocked() and len(source.refusals) == 1  # signed: taken

    tampered = json.dumps({"block_customers": []}).encode()  # someone with blob write access empties the list
    container.upload_blob("rules.json", tampered, overwrite=True)
    source._read_at = 0.0
    assert blocked() and "sha256" in source.refusals[-1]  # refused: the last good rules stay

    other = LocalReleaseKey.generate()  # re-signed with a key that is not the release key
    container.upload_blob("rules.json.sig", json.dumps(sign_rules(other, path, tampered, "mallory")), overwrite=True)
    source._read_at = 0.0
    assert blocked() and "bad release signature" in source.refusals[-1]


def test_inline_rules_need_no_signature(published, services, monkeypatch):
    monkeypatch.setenv("FRAUD_RULES", json.dumps({"block_customers": ["C-inline"]}))
    from shared.composition import app_services, reset_app_services

    reset_app_services()
    outcome = app_services().scoring.score_request(transaction(9, customer="C-inline", amount=10.0))
    assert outcome.delivery.record.verdict.rules_fired == ("blocked_customer",)


def test_dead_letter_tool_lists_and_replays(published, services, capsys):
    from functions.score_stream import to_incoming
    from tools.dead_letters import main as dead_letters

    good = transaction(31, customer="C31")
    events = to_incoming(event_hub_batch([good, b"{broken"], partition="5", first_sequence=100))
    services.scoring.dead_letter_events(events[:1], "not scored after 4 attempts: storage down")
    score_stream(event_hub_batch([b"{broken"], partition="5", first_sequence=101))
    assert dead_letters(["list"]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == 2 and any("storage down" in line for line in listed) and any("$: event body" in line for line in listed)

    assert dead_letters(["replay"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome == {"letters": 2, "scored": 1, "duplicates": 0, "still_invalid": 1}
    assert [d["reasons"][0]["field"] for d in services.dead_letters.list()] == ["$"]  # the broken one stays
    assert services.profiles.load("C31").profile.history_count == 1
    assert dead_letters(["replay"]) == 0  # again: nothing new is scored
    assert json.loads(capsys.readouterr().out)["scored"] == 0


def test_models_tool_sets_shows_and_clears_the_shadow_and_refuses_what_serving_would(published, services, capsys):
    from conftest import make_artifact
    from shared.domain.model import ModelArtifact
    from tools.models import main as models

    registry = services.registry
    registry.publish(make_artifact("challenger-v2", seed=2))
    good = make_artifact("tampered-v3", seed=3)
    registry.publish(ModelArtifact(good.onnx_bytes[:-1] + b"x", good.manifest))
    for version, why in (("ghost", "is not published"), ("tampered-v3", "is refused: model tampered-v3: sha256"),
                         (published.version, "is current")):
        assert models(["shadow", version]) == 2
        assert why in capsys.readouterr().err
    assert registry.shadow().version is None

    assert models(["shadow", "challenger-v2"]) == 0
    assert "challenger-v2 now scores as the shadow" in capsys.readouterr().out
    assert registry.shadow().version == "challenger-v2" and registry.current().version == published.version
    assert models(["shadow"]) == 0 and json.loads(capsys.readouterr().out)["version"] == "challenger-v2"
    assert models(["list"]) == 0
    marks = {line[2:].split()[0]: line[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert marks == {published.version: "*", "challenger-v2": "s", "tampered-v3": " "}

    assert models(["shadow", "--clear"]) == 0 and registry.shadow().version is None
    assert registry.shadow().document["previous"] == "challenger-v2"


def test_models_tool_promotes_the_shadow_only_on_the_gate_s_matured_verdict(published, services, capsys):
    from datetime import datetime, timezone

    from conftest import make_artifact
    from tools.models import main as models

    registry = services.registry
    registry.publish(make_artifact("challenger-v4", seed=4))
    assert models(["promote-shadow"]) == 2 and "no shadow model is set" in capsys.readouterr().err
    assert models(["shadow", "challenger-v4"]) == 0
    capsys.readouterr()

    def report(at, verdict, version="challenger-v4"):
        services.monitoring_blobs.write_report(
            {"run_at": at.isoformat(), "shadow": {"version": version, "rows": 500, "start": "s", "end": "e",
                                                  "verdict": verdict}}, at)

    assert models(["promote-shadow"]) == 2 and "no gate verdict" in capsys.readouterr().err
    report(datetime(2026, 11, 20, tzinfo=timezone.utc), {"promoted": False, "reason": "review alerts/day 2.1x"})
    assert models(["promote-shadow"]) == 2 and "refuses shadow challenger-v4" in capsys.readouterr().err
    report(datetime(2026, 11, 21, tzinfo=timezone.utc), {"promoted": True, "reason": "AP +0.04"}, "other-v9")
    assert models(["promote-shadow"]) == 2 and "no gate verdict" in capsys.readouterr().err
    assert registry.current().version == published.version and registry.shadow().version == "challenger-v4"

    report(datetime(2026, 11, 22, tzinfo=timezone.utc), {"promoted": True, "reason": "AP +0.04"})
    assert models(["promote-shadow"]) == 0 and "challenger-v4 is now current" in capsys.readouterr().out
    assert registry.current().version == "challenger-v4" and registry.shadow().version is None
    assert registry.current().document["evidence"]["gate"] == "AP +0.04"
    assert registry.current().document["previous"] == published.version


def test_models_tool_approves_a_candidate_and_every_pointer_move_is_signed(published, services, capsys, monkeypatch):
    from conftest import make_artifact
    from tools.models import main as models

    registry = services.registry
    candidate = make_artifact("candidate-v5", seed=5, promotion={"promoted": True, "reason": "AP +0.02"})
    registry.publish(candidate)
    rejected = make_artifact("rejected-v6", seed=6, promotion={"promoted": False, "reason": "worse"})
    registry.publish(rejected)
    assert models(["list"]) == 0
    status = {line[2:].split()[0]: line.split("  ")[-1].strip() for line in capsys.readouterr().out.splitlines()[1:]}
    assert status == {published.version: "signed, current", "candidate-v5": "candidate", "rejected-v6": "gate-rejected"}

    assert models(["approve", "candidate-v5"]) == 0  # locally approved_by is the OS user
    out = capsys.readouterr().out
    assert "candidate-v5 is now current" in out and "AP +0.02" in out
    statement = registry.release("candidate-v5")["statement"]
    assert statement["approved_by"] and statement["approved_by"] == registry.current().document["approved_by"]
    assert services.release_check.check(registry.load("candidate-v5"), registry.release("candidate-v5"))

    assert models(["promote", published.version, "--by", "ops"]) == 0  # a rollback: already signed, verified
    assert registry.current().version == published.version and registry.current().document["approved_by"] == "ops"

    monkeypatch.setenv("FRAUD_RELEASE_KEY", "")  # without the release key nothing moves
    from shared.composition import reset_app_services

    reset_app_services()
    for command in (["approve", "rejected-v6"], ["promote", "rejected-v6"], ["shadow", "rejected-v6"]):
        assert models(command) == 2 and "release key" in capsys.readouterr().err
    assert registry.current().version == published.version and registry.shadow().version is None
    assert registry.release("rejected-v6") is None
