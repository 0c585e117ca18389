"""The fraud analysts' dashboard, served by the function app itself, for signed-in analysts.

These routes are anonymous at the Functions level (no host key: the page never sees or passes
one): App Service Authentication with Microsoft Entra ID signs analysts in, and every request
is refused here without a trusted principal holding Fraud.Analyst or Fraud.Admin (401/403,
``functions.http.authorise``).

GET /api/dashboard                 -> the page (functions/dashboard/index.html)
GET /api/dashboard/{*path}         -> its static files (only files inside functions/dashboard)
GET /api/alerts?limit&cursor&hours -> High/Medium decisions awaiting review, newest first, paginated
GET /api/stats                     -> the latest monitoring report for the charts + the model registry
Verdicts go to POST /api/labels (functions/labels_http.py).
"""
from __future__ import annotations

import html
import logging
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import azure.functions as func

from functions.http import authorise, json_response, problem, storage_unavailable
from shared.service.dashboard_views import BadCursor
from shared.composition import app_services
from shared.adapters.transient import is_transient

bp = func.Blueprint()
log = logging.getLogger("fraud.dashboard_http")
STATIC = Path(__file__).resolve().with_name("dashboard")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def render_index(req: func.HttpRequest) -> bytes:
    """index.html with its asset URLs made absolute (the page is served at .../dashboard, with or
    without a slash). No key travels in them: the sign-in cookie covers the assets."""
    path = urlsplit(req.url).path
    base = path[:path.find("/dashboard") + len("/dashboard")] + "/" if "/dashboard" in path else "/api/dashboard/"
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    return text.replace("{{assets}}", html.escape(quote(base))).encode()


def static_file(relative: str, req: func.HttpRequest | None = None) -> func.HttpResponse:
    """A file inside functions/dashboard, or 404: no traversal, no hidden files, known types only."""
    relative = unquote(relative or "").replace("\\", "/")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts:
        parts = ["index.html"]
    not_found = problem(404, "not_found", "no such dashboard file")
    if any(p == ".." or p.startswith(".") or "\x00" in p for p in parts):
        return not_found
    path = STATIC.joinpath(*parts).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        return not_found
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        return not_found
    body = render_index(req) if req is not None and path == STATIC / "index.html" else path.read_bytes()
    return func.HttpResponse(body, status_code=200, headers={"Content-Type": content_type, **SECURITY_HEADERS})


@bp.function_name("dashboard_http")
@bp.route(route="dashboard", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def dashboard_http(req: func.HttpRequest) -> func.HttpResponse:
    _, refused = authorise(req, app_services().config)
    return refused or static_file("index.html", req)


@bp.function_name("dashboard_static_http")
@bp.route(route="dashboard/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def dashboard_static_http(req: func.HttpRequest) -> func.HttpResponse:
    _, refused = authorise(req, app_services().config)
    return refused or static_file(req.route_params.get("path", ""), req)


def _number(req: func.HttpRequest, name: str, default: float, low: float, high: float) -> tuple[float | None, func.HttpResponse | None]:
    raw = req.params.get(name)
    if raw in (None, ""):
        return default, None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (low <= value <= high):
        return None, problem(400, "invalid_query", f"{name} must be a number from {low:g} to {high:g}",
                             [{"field": name, "problem": f"{raw!r} is not a number from {low:g} to {high:g}"}])
    return value, None


def _storage_guard(exc: Exception) -> func.HttpResponse:
    if is_transient(exc):
        return storage_unavailable(exc)
    raise exc


@bp.function_name("alerts_http")
@bp.route(route="alerts", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def alerts_http(req: func.HttpRequest) -> func.HttpResponse:
    analyst, refused = authorise(req, app_services().config)
    if refused is not None:
        return refused
    limit, error = _number(req, "limit", 50, 1, 200)
    if error is not None:
        return error
    hours, error = _number(req, "hours", 72, 1, 24 * 31)
    if error is not None:
        return error
    try:
        body = app_services().dashboard.alert_queue(limit=int(limit), hours=hours, cursor=req.params.get("cursor") or None)
    except BadCursor as exc:
        return problem(400, "invalid_query", str(exc), [{"field": "cursor", "problem": "not a cursor from this endpoint"}])
    except Exception as exc:
        return _storage_guard(exc)
    return json_response({**body, "analyst": analyst.to_dict()}, headers={"Cache-Control": "no-store"})


@bp.function_name("stats_http")
@bp.route(route="stats", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def stats_http(req: func.HttpRequest) -> func.HttpResponse:
    analyst, refused = authorise(req, app_services().config)
    if refused is not None:
        return refused
    try:
        body = app_services().dashboard.stats()
    except Exception as exc:
        return _storage_guard(exc)
    return json_response({**body, "analyst": analyst.to_dict()}, headers={"Cache-Control": "no-store"})
