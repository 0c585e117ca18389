"""The locust side of ``bench/load.py`` (one headless locust run per step).

Configured by environment variables, set by ``bench.load``:

* ``BENCH_LOAD_RATE`` / ``BENCH_LOAD_USERS``: the fixed request rate, spread over that
  many users, each calling on its own evenly spaced schedule (``BankCaller``);
* ``BENCH_LOAD_FEED``: a JSONL file of transactions; each request POSTs the next one to
  ``/api/score`` (every transaction is sent at most once). Without it, each request is
  ``GET /api/health`` (the baseline);
* ``BENCH_LOAD_SAMPLES``: where to write every request's (start, ms, status, server ms)
  as JSON when the run stops, so ``bench.load`` computes exact percentiles.

Any status but 200 is a failure.
"""
from __future__ import annotations

import json
import os
import time

import gevent
from locust import FastHttpUser, events, task

RATE = float(os.environ.get("BENCH_LOAD_RATE", "10"))
USERS = int(os.environ.get("BENCH_LOAD_USERS", "5"))
FEED_PATH = os.environ.get("BENCH_LOAD_FEED") or None
SAMPLES_PATH = os.environ.get("BENCH_LOAD_SAMPLES") or None

with open(FEED_PATH, "rb") if FEED_PATH else open(os.devnull, "rb") as _handle:
    _FEED = [line for line in _handle.read().splitlines() if line.strip()]
_next = iter(_FEED)
# one row per request: [start epoch s, client ms, status (0 = no response), server latency_ms or None, error]
SAMPLES: list[list] = []


_base: float | None = None
_started = 0


class BankCaller(FastHttpUser):
    """User k of USERS calls at base + k / RATE + n * USERS / RATE (n = 0, 1, ...): together
    the users send RATE requests a second, evenly spaced. A user still waiting for a response
    when its next slot comes skips that slot (the achieved rate then falls below the target)."""

    def on_start(self) -> None:
        global _base, _started
        now = time.perf_counter()
        if _base is None:
            _base = now
        self._due = _base + _started / RATE
        _started += 1
        if self._due > now:
            gevent.sleep(self._due - now)

    def wait_time(self) -> float:
        now = time.perf_counter()
        self._due += USERS / RATE
        while self._due < now:  # behind: skip the missed slots
            self._due += USERS / RATE
        return self._due - now

    @task
    def call(self) -> None:
        if FEED_PATH is None:
            self._request("GET", "/api/health", None)
            return
        body = next(_next, None)
        if body is None:  # the feed is exhausted: stop rather than repeat a transaction id
            self.environment.runner.quit()
            return
        self._request("POST", "/api/score", body)

    def _request(self, method: str, path: str, body: bytes | None) -> None:
        started, clock = time.time(), time.perf_counter()
        headers = {"Content-Type": "application/json"} if body is not None else None
        with self.client.request(method, path, data=body, headers=headers, catch_response=True) as response:
            elapsed_ms = (time.perf_counter() - clock) * 1000
            server_ms, error = None, None
            if response.status_code == 200:
                if body is not None:
                    try:
                        answer = json.loads(response.content)
                        server_ms = answer.get("latency_ms")
                        if answer.get("duplicate"):
                            error = "duplicate decision for a fresh transaction id"
                    except ValueError:
                        error = "response is not JSON"
            else:
                error = f"HTTP {response.status_code}: {(response.text or '')[:200]}" if response.status_code else \
                    f"no response: {response.error}"
            if error:
                response.failure(error)
            else:
                response.success()
            SAMPLES.append([started, elapsed_ms, response.status_code or 0, server_ms, error])


@events.quitting.add_listener
def _write_samples(environment, **_kwargs) -> None:
    if SAMPLES_PATH:
        with open(SAMPLES_PATH, "w") as handle:
            json.dump(SAMPLES, handle)
