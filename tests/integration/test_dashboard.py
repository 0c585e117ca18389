"""The analysts' dashboard endpoints, called with real func.HttpRequest objects against Azurite."""
import json
from datetime import datetime, timedelta, timezone

import azure.functions as func

from fraud_events import analyst_get, analyst_post, decision_record, http_get, http_post, principal, record_decisions, transaction
from functions.dashboard_http import alerts_http, dashboard_http, dashboard_static_http, stats_http
from functions.labels_http import labels_http
from functions.score_http import score_http


decision = decision_record


def body(response):
    return json.loads(response.get_body())


def route_get(fn, route, route_params=None, params=None, headers=None):
    return fn(func.HttpRequest(method="GET", url=f"http://localhost/api/{route}",
                               headers=principal() if headers is None else headers, params=params or {},
                               route_params=route_params or {}, body=b""))


def seed(services, now):
    records = [
        decision("A1", now - timedelta(minutes=5), "High", customer="C1"),
        decision("A2", now - timedelta(minutes=50), "Medium", customer="C2"),
        decision("A3", now - timedelta(hours=3), "High", customer="C3"),
        decision("A4", now - timedelta(hours=20), "Medium", customer="C1"),
        decision("A5", now - timedelta(hours=40), "High", customer="C4"),
        decision("L1", now - timedelta(minutes=10), "Low"),
        decision("L2", now - timedelta(hours=2), "Low"),
        decision("OLD", now - timedelta(hours=100), "High"),  # outside the 72-hour window
    ]
    record_decisions(services, records)


def test_alerts_list_high_and_medium_newest_first_and_paginate(services):
    now = datetime.now(timezone.utc)
    seed(services, now)
    first = body(alerts_http(analyst_get("alerts", {"limit": "2"})))
    assert [a["transaction_id"] for a in first["alerts"]] == ["A1", "A2"]
    top = first["alerts"][0]
    assert top["risk_level"] == "High" and top["amount"] == 50000.0 and top["currency"] == "NGN"
    assert top["customer_id"] == "C1" and top["reasons"] == ["amount 14x the 30-day average"]
    assert top["channel"] == "online" and top["merchant_id"] == "M7" and top["device_id"] == "D9"
    assert top["score"] == 0.95 and top["action"] == "block" and top["time"]
    assert first["next_cursor"]
    second = body(alerts_http(analyst_get("alerts", {"limit": "2", "cursor": first["next_cursor"]})))
    assert [a["transaction_id"] for a in second["alerts"]] == ["A3", "A4"]
    third = body(alerts_http(analyst_get("alerts", {"limit": "2", "cursor": second["next_cursor"]})))
    assert [a["transaction_id"] for a in third["alerts"]] == ["A5"]
    assert third["next_cursor"] is None
    whole = body(alerts_http(analyst_get("alerts", {"limit": "50"})))
    assert [a["transaction_id"] for a in whole["alerts"]] == ["A1", "A2", "A3", "A4", "A5"]
    narrow = body(alerts_http(analyst_get("alerts", {"hours": "24"})))
    assert [a["transaction_id"] for a in narrow["alerts"]] == ["A1", "A2", "A3", "A4"]


def test_bad_query_parameters_are_400(services):
    assert alerts_http(analyst_get("alerts", {"limit": "0"})).status_code == 400
    assert alerts_http(analyst_get("alerts", {"hours": "abc"})).status_code == 400
    response = alerts_http(analyst_get("alerts", {"cursor": "not-a-cursor"}))
    assert response.status_code == 400 and body(response)["errors"][0]["field"] == "cursor"


def test_a_verdict_takes_the_alert_off_the_queue(services):
    now = datetime.now(timezone.utc)
    seed(services, now)
    response = labels_http(analyst_post("labels", {"transaction_id": "A2", "label": "fraud", "customer_id": "C2",
                                                "source": "analyst"}))
    assert response.status_code == 202 and body(response)["joined"] == 1
    assert services.label_store.get("A2")["status"] == "joined"
    listed = [a["transaction_id"] for a in body(alerts_http(analyst_get("alerts")))["alerts"]]
    assert listed == ["A1", "A3", "A4", "A5"]


def test_a_label_not_yet_joined_also_takes_it_off(services):
    from shared.domain.labels import parse_label

    seed(services, datetime.now(timezone.utc))
    label, _ = parse_label({"transaction_id": "A3", "label": "legitimate"}, default_source="analyst")
    services.label_store.put([label])  # recorded, not joined
    listed = [a["transaction_id"] for a in body(alerts_http(analyst_get("alerts")))["alerts"]]
    assert "A3" not in listed and "A1" in listed


def test_alerts_carry_the_customers_recent_activity(published, services, every_decision_high):
    now = datetime.now(timezone.utc)
    for i in range(7):
        when = (now - timedelta(minutes=70 - i * 10)).isoformat()
        assert score_http(http_post("score", transaction(i, customer="C9", when=when))).status_code == 200
    alerts = body(alerts_http(analyst_get("alerts", {"limit": "3"})))["alerts"]
    assert [a["transaction_id"] for a in alerts] == ["T6", "T5", "T4"]
    recent = alerts[0]["recent_activity"]
    assert 1 <= len(recent) <= 5 and all(r["transaction_id"] != "T6" for r in recent)
    assert recent[0]["transaction_id"] == "T5"


def test_the_page_and_its_files_are_served_with_their_types(services):
    page = route_get(dashboard_http, "dashboard", params={"code": "k<ey"})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.get_body().decode()
    # no key travels: a ?code= given is not copied into the page (it would leak into its asset URLs)
    assert "<table" in html and 'src="/api/dashboard/app.js"' in html and "code" not in html and "k%3Cey" not in html
    js = route_get(dashboard_static_http, "dashboard/app.js", {"path": "app.js"})
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("text/javascript")
    css = route_get(dashboard_static_http, "dashboard/app.css", {"path": "app.css"})
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    index = route_get(dashboard_static_http, "dashboard/index.html", {"path": "index.html"})
    assert index.status_code == 200 and b"app.js" in index.get_body()


def test_the_static_route_refuses_traversal_and_unknown_files(services):
    for path in ("../dashboard_http.py", "../../function_app.py", "..%2Fscore_http.py", "%2e%2e/labels_http.py",
                 "/etc/passwd", "nope.js", "app.js/..", ".hidden", "..\\score_http.py", "dashboard/../../host.json"):
        response = route_get(dashboard_static_http, f"dashboard/{path}", {"path": path})
        assert response.status_code == 404, path
        assert b"import" not in response.get_body()


def test_stats_without_a_report_aggregate_the_audit_log_capped(services, published):
    now = datetime.now(timezone.utc)
    seed(services, now)
    response = stats_http(analyst_get("stats"))
    assert response.status_code == 200
    stats = body(response)
    assert stats["source"] == "audit_log_aggregate" and "no monitoring report" in stats["note"]
    assert stats["rows_read"] == 6 and stats["capped"] is False  # A5 and OLD are outside the 24-hour window
    assert sum(stats["volume_per_hour"].values()) == 6
    assert sum(stats["score_distribution"]["counts"]) == 6
    assert stats["latency_ms"]["p50"] == 4.0
    assert stats["model"]["version"] == published.version and stats["model"]["promoted_at"]
    assert [v["version"] for v in stats["model"]["history"]] == [published.version]
    assert stats["psi_thresholds"] == {"warn": 0.1, "alert": 0.2}


    capped = services.dashboard.stats(cap=3)
    assert capped["capped"] is True and capped["rows_read"] == 3 and "capped at 3" in capped["note"]


def test_stats_from_the_monitoring_report(published, services, every_decision_high):
    from shared.composition import app_services

    now = datetime.now(timezone.utc)
    for i in range(6):
        when = (now - timedelta(minutes=60 - i * 5)).isoformat()
        assert score_http(http_post("score", transaction(i, customer="C3", when=when))).status_code == 200
    labels_http(analyst_post("labels", [{"transaction_id": "T0", "label": "fraud"}, {"transaction_id": "T1", "label": 0}]))
    report = app_services().monitoring.run()
    stats = body(stats_http(analyst_get("stats")))
    assert stats["source"] == "monitoring_report" and stats["run_at"] == report["run_at"]
    assert sum(stats["volume_per_hour"].values()) == 6
    assert set(stats["drift"]["features"]) == set(published.manifest["feature_names"])
    assert all({"psi", "status"} <= set(f) for f in stats["drift"]["features"].values())
    assert stats["performance"] is None  # fresh labels are provisional: the dashboard judges matured ones only
    assert set(stats["latency_ms"]) == {"p50", "p95", "p99"}
    assert sum(stats["score_distribution"]["counts"]) == 6
    assert stats["model"]["version"] == published.version
    # a label maturity (and an hour: windows are whole hours) later, the same decisions are the
    # matured window (unlabelled ones legitimate)
    app_services().monitoring.run(now=now + timedelta(days=app_services().config.label_maturity_days, hours=1))
    matured = body(stats_http(analyst_get("stats")))["performance"]
    assert (matured["view"], matured["rows"], matured["positives"]) == ("matured", 6, 1)
    assert "medium" in matured["at_thresholds"]


def test_every_dashboard_route_refuses_a_missing_or_roleless_principal(services):
    nobody, viewer = {}, principal("viewer@bank.example", ("Fraud.Viewer",))
    for headers, status in ((nobody, 401), ({"x-ms-client-principal": "not base64!"}, 401), (viewer, 403)):
        assert route_get(dashboard_http, "dashboard", headers=headers).status_code == status
        assert route_get(dashboard_static_http, "dashboard/app.js", {"path": "app.js"}, headers=headers).status_code == status
        assert alerts_http(http_get("alerts", headers=headers)).status_code == status
        assert stats_http(http_get("stats", headers=headers)).status_code == status
        refused = labels_http(http_post("labels", {"transaction_id": "A1", "label": "fraud"}, headers=headers))
        assert refused.status_code == status and body(refused)["error"] in ("unauthenticated", "forbidden")
    assert services.label_store.get("A1") is None  # nothing recorded by a refused verdict


def test_entra_mode_trusts_the_principal_only_when_platform_authentication_is_on(services, monkeypatch):
    from shared.composition import reset_app_services

    monkeypatch.setenv("FRAUD_ANALYST_AUTH", "entra")
    reset_app_services()
    refused = alerts_http(analyst_get("alerts"))
    assert refused.status_code == 401 and "authentication is not configured" in body(refused)["message"]
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    assert alerts_http(analyst_get("alerts")).status_code == 200
    monkeypatch.setenv("FRAUD_ANALYST_AUTH", "development")
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "fraud-func-instance")
    reset_app_services()
    refused = alerts_http(analyst_get("alerts"))
    assert refused.status_code == 401 and "refused in Azure" in body(refused)["message"]


def test_the_analyst_is_shown_and_recorded_as_who_gave_the_verdict(services):
    now = datetime.now(timezone.utc)
    seed(services, now)
    admin = principal("carol@bank.example", ("Fraud.Admin",), object_id="c-oid")
    listed = body(alerts_http(http_get("alerts", headers=admin)))
    assert listed["analyst"] == {"name": "carol@bank.example", "object_id": "c-oid", "roles": ["Fraud.Admin"],
                                 "auth_type": "aad"}
    assert body(stats_http(http_get("stats", headers=admin)))["analyst"]["name"] == "carol@bank.example"
    # a labelled_by in the body is not who gave the verdict: the principal is
    response = labels_http(http_post("labels", {"transaction_id": "A1", "label": "fraud", "source": "analyst",
                                                "labelled_by": "someone.else@bank.example"}, headers=admin))
    accepted = body(response)
    assert response.status_code == 202 and accepted["labelled_by"] == "carol@bank.example" and accepted["joined"] == 1
    assert accepted["current"] == [{"transaction_id": "A1", "label": 1, "labelled_by": "carol@bank.example",
                                    "labelled_at": accepted["current"][0]["labelled_at"], "source": "analyst",
                                    "previous_label": None, "history": 1, "status": "pending"}]
    entry, = services.label_store.history("A1")
    assert (entry["labelled_by"], entry["labelled_by_id"], entry["label"]) == ("carol@bank.example", "c-oid", 1)
    assert entry["labelled_at"]  # a verdict without labelled_at is dated when it was given
    assert services.label_store.get("A1")["labelled_by"] == "carol@bank.example"
    audit_row = next(r for r in services.audit.read(now - timedelta(hours=1), now + timedelta(minutes=1))
                     if r["RowKey"] == "A1")
    assert (audit_row["label"], audit_row["labelled_by"]) == (1, "carol@bank.example")


def test_verdicts_are_an_append_only_history_and_a_resent_verdict_adds_nothing(services):
    now = datetime.now(timezone.utc)
    seed(services, now)
    alice, bob = principal("alice@bank.example"), principal("bob@bank.example")
    verdict = {"transaction_id": "A3", "label": "fraud", "source": "analyst"}
    assert body(labels_http(http_post("labels", verdict, headers=alice)))["joined"] == 1
    resent = body(labels_http(http_post("labels", verdict, headers=alice)))  # her browser retried
    assert resent["joined"] == 0 and resent["current"][0]["history"] == 1 and resent["current"][0]["status"] == "joined"
    changed = body(labels_http(http_post("labels", {**verdict, "label": "legitimate"}, headers=bob)))
    assert changed["joined"] == 1
    assert {k: changed["current"][0][k] for k in ("label", "labelled_by", "previous_label", "history")} \
        == {"label": 0, "labelled_by": "bob@bank.example", "previous_label": 1, "history": 2}
    assert [(e["label"], e["labelled_by"]) for e in services.label_store.history("A3")] \
        == [(1, "alice@bank.example"), (0, "bob@bank.example")]
    audit_row = next(r for r in services.audit.read(now - timedelta(hours=4), now) if r["RowKey"] == "A3")
    assert (audit_row["label"], audit_row["labelled_by"]) == (0, "bob@bank.example")  # the current value


def test_a_forged_cursor_is_400_and_a_genuine_one_pages_on(services):
    import base64

    seed(services, datetime.now(timezone.utc))
    first = body(alerts_http(analyst_get("alerts", {"limit": "2"})))
    payload, _, signature = first["next_cursor"].partition(".")
    raw = base64.urlsafe_b64decode(payload + "==")
    for forged in (base64.urlsafe_b64encode(raw).decode().rstrip("="),  # unsigned, as cursors used to be
                   base64.urlsafe_b64encode(raw.replace(b'"A2"', b'"A1"')).decode().rstrip("=") + "." + signature):
        response = alerts_http(analyst_get("alerts", {"limit": "2", "cursor": forged}))
        assert response.status_code == 400 and body(response)["errors"] == [
            {"field": "cursor", "problem": "not a cursor from this endpoint"}]
    assert [a["transaction_id"] for a in body(alerts_http(analyst_get("alerts", {"limit": "2", "cursor": first["next_cursor"]})))["alerts"]] == ["A3", "A4"]
