"""The dashboard in a real headless Chromium (Debian's, never downloaded) driven by Playwright,
served by tools.local_host against this test's Azurite, signed in as the local host's
development principal (FRAUD_ANALYST_AUTH=development): no key anywhere."""
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fraud_events import http_post, transaction
from functions.score_http import score_http
from shared.domain.analyst_identity import DEVELOPMENT_NAME

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture
def browser():
    assert os.path.exists(CHROMIUM), (
        f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); "
        "the dashboard browser test never downloads a browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def served(published, services, every_decision_high):  # alerts to review
    from function_app import indexed_functions
    from shared.composition import app_services
    from tools.local_host import serve_in_background

    now = datetime.now(timezone.utc)
    ids = []
    for i in range(8):
        when = (now - timedelta(minutes=90 - i * 10)).isoformat()
        response = score_http(http_post("score", transaction(i, customer=f"C{i % 3}", amount=20000 + 1000 * i, when=when)))
        assert response.status_code == 200
        ids.append(f"T{i}")
    app_services().monitoring.run()
    server, url = serve_in_background(indexed_functions())
    yield url, list(reversed(ids))
    server.shutdown()
    server.server_close()


def test_the_dashboard_shows_alerts_and_charts_and_takes_a_verdict(browser, served, services):
    url, newest_first = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # with Chromium's errorText: net::ERR_ABORTED (the page dropped it), ERR_CONNECTION_RESET, ...
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.method} {r.url}: {r.failure}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{url}/api/dashboard")
    page.wait_for_selector("body[data-ready]", state="attached", timeout=30000)
    assert problems == []
    assert page.get_attribute("body", "data-ready") == "ok"
    assert "error" not in (page.get_attribute("#status", "class") or "")

    rows = page.locator("#alert-rows tr")
    assert [rows.nth(i).get_attribute("data-txn") for i in range(rows.count())] == newest_first
    assert "NGN" in rows.first.inner_text()
    for chart in ("#chart-volume", "#chart-drift", "#chart-perf", "#chart-latency"):
        assert page.locator(f"{chart} svg").count() == 1, chart
    assert page.locator("#chart-volume svg rect.bar").count() >= 1
    assert page.locator("#chart-drift svg rect").count() >= 5
    assert page.locator("#chart-drift svg line.th-alert").count() == 1
    assert page.locator("#chart-latency svg rect.bar").count() == 3
    assert page.locator("#fig-scores").is_visible() and page.locator("#chart-scores svg rect.bar").count() >= 1
    assert page.locator("#model-version").inner_text() == services.registry.current().version
    assert page.locator("#model-history tr").count() >= 1
    assert page.locator("#analyst-name").inner_text() == DEVELOPMENT_NAME  # who is signed in

    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)

    target = newest_first[1]
    with page.expect_response(lambda r: "/api/labels" in r.url and r.request.method == "POST") as posted:
        page.locator(f'#alert-rows tr[data-txn="{target}"] button[data-label="fraud"]').click()
    response = posted.value
    assert response.status == 202 and "code=" not in response.url
    assert json.loads(response.body())["labelled_by"] == DEVELOPMENT_NAME
    assert json.loads(response.request.post_data) == {"transaction_id": target, "label": "fraud",
                                                      "customer_id": f"C{int(target[1:]) % 3}", "source": "analyst"}
    page.wait_for_selector(f'#alert-rows tr[data-txn="{target}"]', state="detached", timeout=10000)
    assert page.locator("#alert-rows tr").count() == len(newest_first) - 1
    given = page.locator(f'#verdict-rows tr[data-txn="{target}"]')  # the current label and who gave it
    assert given.locator("td.label").inner_text() == "fraud" and given.locator("td.by").inner_text() == DEVELOPMENT_NAME

    # reload at once, as an analyst may: the verdict's request must be over by the time its row
    # goes (a response body the page leaves unread is still in flight and the reload aborts it)
    page.reload()
    page.wait_for_selector("body[data-ready]", state="attached", timeout=30000)

    assert services.label_store.get(target)["status"] == "joined"
    assert services.label_store.get(target)["labelled_by"] == DEVELOPMENT_NAME
    assert not [u for u in requested if "code=" in u]  # the page never asks for or passes a key
    now = datetime.now(timezone.utc)
    row = next(r for r in services.audit.read(now - timedelta(hours=3), now + timedelta(minutes=1)) if r["RowKey"] == target)
    assert row["label"] == 1
    assert target not in [page.locator("#alert-rows tr").nth(i).get_attribute("data-txn")
                          for i in range(page.locator("#alert-rows tr").count())]
    assert problems == []
    page.close()


def test_without_the_development_principal_the_dashboard_is_refused(browser, app_env):
    """The local host with --no-analyst: nobody is signed in, the page and its API answer 401."""
    from function_app import indexed_functions
    from tools.local_host import serve_in_background

    server, url = serve_in_background(indexed_functions(), analyst=None)
    try:
        page = browser.new_page()
        response = page.goto(f"{url}/api/dashboard")
        assert response.status == 401 and json.loads(response.body())["error"] == "unauthenticated"
        page.close()
    finally:
        server.shutdown()
        server.server_close()
