"""Serve the app's HTTP functions locally with a real HTTP server (no Functions host needed).

    python -m tools.local_host --port 7071

Why this and not FastAPI + AsgiFunctionApp: the HTTP functions stay native Functions
(``func.HttpRequest`` in, ``func.HttpResponse`` out), so what runs here is exactly what
the host indexes and runs in Azure; this module only routes real HTTP requests to the
functions registered in ``function_app.app`` by their ``route`` and ``methods``, the way
``func start`` would (on ``/api/<route>``). It uses the standard library's threading HTTP
server: no extra dependency on the serving path. Function keys are not checked locally,
as with ``func start``.

The analysts' routes (anonymous at the Functions level: in Azure App Service Authentication
signs people in and adds ``X-MS-CLIENT-PRINCIPAL``) get a development principal injected
when the request carries none: ``dev.analyst@localhost`` with the roles Fraud.Analyst and
Fraud.Admin (``shared.domain.analyst_identity.development_principal``); ``--analyst`` and
``--analyst-roles`` change it, ``--no-analyst`` injects none, and a caller's own header is
passed on as sent (to try another role). The app trusts it only under
``FRAUD_ANALYST_AUTH=development``, which it refuses in Azure.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from shared.domain.analyst_identity import (DEVELOPMENT_NAME, DEVELOPMENT_ROLES, PRINCIPAL_HEADER,
                                            development_principal)

log = logging.getLogger("fraud.local_host")
DEVELOPMENT = development_principal()  # what the analysts' routes get when a request carries no principal


@dataclass(frozen=True)
class HttpRoute:
    name: str
    pattern: re.Pattern
    methods: frozenset[str]
    handler: Callable[[func.HttpRequest], func.HttpResponse]
    anonymous: bool = False  # an analysts' route: signed in by the platform in Azure, not by a key


def _compile(route: str) -> re.Pattern:
    """Functions route templates: 'dashboard/{*path}', 'alerts/{id}' -> a regex."""
    parts = []
    for piece in re.split(r"(\{[^}]+\})", route.strip("/")):
        if piece.startswith("{"):
            name = piece[1:-1].split(":")[0].rstrip("?")
            if name.startswith("*"):
                parts.append(f"(?P<{name[1:]}>.*)")
            else:
                parts.append(f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("^/api/" + "".join(parts) + "/?$")


def http_routes(functions: list[Any]) -> list[HttpRoute]:
    routes = []
    for function in functions:
        trigger = function.get_trigger()
        if trigger is None or trigger.get_binding_name() != "httpTrigger":
            continue
        binding = trigger.get_dict_repr()
        methods = frozenset(str(getattr(m, "value", m)).upper() for m in (binding.get("methods") or ["GET", "POST"]))
        routes.append(HttpRoute(function.get_function_name(), _compile(binding.get("route") or function.get_function_name()),
                                methods, function.get_user_function(),
                                str(binding.get("authLevel") or "").upper() == "ANONYMOUS"))
    # literal routes before templated ones
    routes.sort(key=lambda r: ("(?P<" in r.pattern.pattern, -len(r.pattern.pattern)))
    return routes


def dispatch(routes: list[HttpRoute], method: str, url: str, headers: dict[str, str], body: bytes,
             analyst: str | None = None) -> func.HttpResponse:
    """Route a request to its function; ``analyst`` (an X-MS-CLIENT-PRINCIPAL value) is added to a
    request for an analysts' route that carries no principal, as App Service Authentication would."""
    path = urlsplit(url).path
    allowed = False
    for route in routes:
        match = route.pattern.match(path)
        if not match:
            continue
        if method.upper() not in route.methods:
            allowed = True
            continue
        if route.anonymous and analyst and PRINCIPAL_HEADER not in {k.lower() for k in headers}:
            headers = {**headers, PRINCIPAL_HEADER: analyst}
        request = func.HttpRequest(
            method=method.upper(), url=url, headers=headers, params=dict(parse_qsl(urlsplit(url).query)),
            route_params={k: v for k, v in match.groupdict().items() if v is not None}, body=body,
        )
        try:
            return route.handler(request)
        except Exception:  # the host would answer 500 too; log it loudly
            log.exception("function %s raised", route.name)
            return func.HttpResponse(json.dumps({"error": "internal_error"}), status_code=500, mimetype="application/json")
    if allowed:
        return func.HttpResponse(json.dumps({"error": "method_not_allowed"}), status_code=405, mimetype="application/json")
    return func.HttpResponse(json.dumps({"error": "not_found", "path": path}), status_code=404, mimetype="application/json")


def make_server(functions: list[Any], host: str = "127.0.0.1", port: int = 7071,
                analyst: str | None = DEVELOPMENT) -> ThreadingHTTPServer:
    routes = http_routes(functions)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in separate writes: with Nagle on, a kept-alive connection
        # waits for the client's delayed ACK (~40 ms) before sending the body
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.send_error(400, "invalid Content-Length")
                return
            body = self.rfile.read(length) if length else b""
            url = f"http://{self.headers.get('Host') or f'{host}:{port}'}{self.path}"
            response = dispatch(routes, self.command, url, {k.lower(): v for k, v in self.headers.items()}, body, analyst)
            payload = response.get_body() or b""
            self.send_response(response.status_code)
            sent = set()
            for key, value in response.headers.items():
                if key.lower() in ("content-length", "connection"):
                    continue
                self.send_header(key, value)
                sent.add(key.lower())
            if "content-type" not in sent and response.mimetype:
                self.send_header("Content-Type", response.mimetype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def __getattr__(self, name: str) -> Any:
            # every other method (HEAD, OPTIONS, TRACE, ...) is routed too: it gets the 405 or 404
            # the Functions host would answer, not http.server's HTML 501
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the app logs what matters
            log.debug("%s - %s", self.address_string(), format % args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # listen() backlog; socketserver's default of 5 drops connections when many callers
        # connect at once (their SYN is retried after 1 s, 3 s: seconds of latency, then errors)
        request_queue_size = 128

    return Server((host, port), Handler)


def serve_in_background(functions: list[Any], host: str = "127.0.0.1", port: int = 0,
                        analyst: str | None = DEVELOPMENT) -> tuple[ThreadingHTTPServer, str]:
    server = make_server(functions, host, port, analyst)
    threading.Thread(target=server.serve_forever, name="local-host", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.local_host", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--analyst", default=DEVELOPMENT_NAME,
                        help=f"name of the development principal injected on the analysts' routes (default {DEVELOPMENT_NAME})")
    parser.add_argument("--analyst-roles", default=",".join(DEVELOPMENT_ROLES),
                        help="its app roles, comma-separated (default: %(default)s; empty: none)")
    parser.add_argument("--no-analyst", action="store_true", help="inject no principal (the analysts' routes answer 401)")
    args = parser.parse_args(argv)
    roles = tuple(r.strip() for r in args.analyst_roles.split(",") if r.strip())
    analyst = None if args.no_analyst else development_principal(args.analyst, roles)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # as host.json's "Azure.Core": "Warning": the SDK would log every storage call's headers
    logging.getLogger("azure").setLevel(logging.WARNING)
    from shared.adapters.pseudonym_key import ensure_local_key

    ensure_local_key(os.environ, Path(__file__).resolve().parent.parent)
    from function_app import indexed_functions

    server = make_server(indexed_functions(), args.host, args.port, analyst)
    print(f"serving the HTTP functions on http://{args.host}:{args.port}/api/ (Ctrl-C stops)", flush=True)
    if analyst:
        print(f"analysts' routes signed in as {args.analyst} ({', '.join(roles) or 'no roles'}); "
              "the app trusts this only with FRAUD_ANALYST_AUTH=development", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
