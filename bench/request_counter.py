"""Count the storage requests the app sends, by operation, below the SDK's retry policy.

``CountingTransport`` wraps the transport azure-core would use (``RequestsTransport``) and
records every ``send``: each retry is a request of its own, as the service sees it. Install it
through the hook in ``shared/adapters/storage_account.py`` before the clients are built:

    counter = RequestCounter()
    with counting(counter):          # sets storage_account.transport_factory, restores it after
        services = AppServices(env)  # every Table/Blob/Queue client of every account counted
        ...
    counter.snapshot()               # {Operation(...): count}

An operation is (service, method, resource, kind): the service from the SDK's User-Agent
(tables, blob, queue), the resource a table, container or queue name (mapped through
``names``, e.g. the configured profile table -> "profiles"), the kind a point read, query,
insert, $batch, ... A ``$batch`` is named by the table and partition of its first operation
(an entity-group transaction holds one partition), an insert by its entity's partition;
``partition_label`` turns a partition key
into a label (e.g. ``idx-*`` -> "id index"), so the audit log's decision rows and its id index,
which share one table, count apart. The response status is kept too (404 point reads, 412s).
"""
from __future__ import annotations

import re
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.pipeline.transport import HttpTransport


@dataclass(frozen=True, order=True)
class Operation:
    service: str   # tables | blob | queue | other
    method: str
    resource: str  # table / container / queue (after ``names``), with a partition label if any
    kind: str      # point read, query, insert, $batch, ...

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.resource}: {self.kind}"


_ENTITY = re.compile(r"^([^()]+)\((.*)\)$")
_BATCH_TARGET = re.compile(rb"^(POST|PUT|MERGE|PATCH|DELETE|GET) (\S+) HTTP/1\.1\r?$", re.MULTILINE)
_BATCH_PK_JSON = re.compile(rb'"PartitionKey":\s*"((?:[^"\\]|\\.)*)"')
_PK_IN_KEYS = re.compile(r"PartitionKey='((?:[^']|'')*)'")
_PK_IN_FILTER = re.compile(r"PartitionKey eq '((?:[^']|'')*)'")


def _service(headers: Mapping[str, str]) -> str:
    agent = (headers.get("User-Agent") or headers.get("user-agent") or "").lower()
    for marker, name in (("data-tables", "tables"), ("storage-blob", "blob"), ("storage-queue", "queue")):
        if marker in agent:
            return name
    return "other"


def _path_segments(url: str) -> tuple[list[str], dict[str, list[str]]]:
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    host = parts.hostname or ""
    if not any(f".{svc}." in host for svc in ("table", "blob", "queue")) and segments:
        segments = segments[1:]  # path-style (Azurite): /<account>/<resource>...
    return segments, parse_qs(parts.query)


def _body(request: Any) -> bytes:
    for attr in ("content", "body", "data"):
        try:
            value = getattr(request, attr, None)
        except Exception:
            continue
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str):
            return value.encode()
    return b""


@dataclass(frozen=True)
class _Recorded:
    """What ``record`` kept of a request, enough to classify it."""

    method: str
    url: str
    agent: str
    conditional: bool  # an If-Match header
    content: bytes     # a $batch's or an insert's first 4 KB (they name the table partition)

    @property
    def headers(self) -> dict[str, str]:
        return {"User-Agent": self.agent, **({"If-Match": "*"} if self.conditional else {})}


class RequestCounter:
    """Thread-safe tally of operations (and their response statuses)."""

    def __init__(self, names: Mapping[str, str] | None = None,
                 partition_label: Callable[[str, str], str | None] | None = None) -> None:
        self.names = dict(names or {})
        self.partition_label = partition_label  # (resource name after ``names``, partition key) -> label
        self._lock = threading.Lock()
        self._raw: list[tuple] = []
        self._seen: dict[tuple, Operation] = {}

    # -- recording: an append per request (classified later, outside the measured code) ----
    def record(self, request: Any, status: int | None) -> None:
        url = str(request.url)
        method = str(request.method).upper()
        # a $batch's first operation, or an insert's entity, names its table partition
        body = _body(request)[:4096] if "$batch" in url or method == "POST" else b""
        headers = request.headers
        raw = (method, url, headers.get("User-Agent") or headers.get("user-agent") or "",
               any(k.lower() == "if-match" for k in headers), body, status)
        with self._lock:
            self._raw.append(raw)

    def reset(self) -> None:
        with self._lock:
            self._raw = []

    def _classified(self) -> list[tuple[Operation, int | None]]:
        with self._lock:
            raw = list(self._raw)
        out = []
        for method, url, agent, conditional, body, status in raw:
            key = (method, url, agent, conditional, body)
            op = self._seen.get(key)
            if op is None:
                op = self._seen[key] = self.classify(_Recorded(method, url, agent, conditional, body))
            out.append((op, status))
        return out

    def snapshot(self) -> dict[Operation, int]:
        return dict(Counter(op for op, _ in self._classified()))

    def statuses(self) -> dict[tuple[Operation, int | None], int]:
        return dict(Counter(self._classified()))

    @property
    def total(self) -> int:
        with self._lock:
            return len(self._raw)

    # -- classification --------------------------------------------------------------------
    def _name(self, resource: str, partition: str | None = None) -> str:
        name = self.names.get(resource, resource)
        if partition is not None and self.partition_label is not None:
            label = self.partition_label(name, partition)
            if label:
                return f"{name} [{label}]"
        return name

    def classify(self, request: Any) -> Operation:
        method = str(request.method).upper()
        headers = request.headers
        service = _service(headers)
        segments, query = _path_segments(str(request.url))
        if service == "tables":
            return self._table_op(method, segments, query, headers, request)
        if service == "blob":
            return self._blob_op(method, segments, query)
        if service == "queue":
            return self._queue_op(method, segments, query)
        return Operation(service, method, "/".join(segments[:1]), "request")

    def _table_op(self, method: str, segments: list[str], query: dict, headers: Mapping[str, str],
                  request: Any) -> Operation:
        first = segments[0] if segments else ""
        if first == "$batch":
            body = _body(request)
            target = _BATCH_TARGET.search(body)
            table, partition = "?", None
            if target:
                inner_segments, _ = _path_segments(target.group(2).decode())
                entity = _ENTITY.match(inner_segments[0]) if inner_segments else None
                table = entity.group(1) if entity else (inner_segments[0] if inner_segments else "?")
                keys = _PK_IN_KEYS.search(entity.group(2)) if entity else None
                if keys:
                    partition = unquote(keys.group(1)).replace("''", "'")
            if partition is None:
                pk = _BATCH_PK_JSON.search(body)
                partition = pk.group(1).decode() if pk else None
            return Operation("tables", method, self._name(table, partition), "$batch")
        if first.startswith("Tables"):
            return Operation("tables", method, "(tables)", {"POST": "create table", "DELETE": "delete table"}
                             .get(method, "list tables"))
        entity = _ENTITY.match(first)
        if entity and entity.group(2):  # name(PartitionKey='..',RowKey='..')
            keys = _PK_IN_KEYS.search(unquote(entity.group(2)))
            partition = keys.group(1).replace("''", "'") if keys else None
            conditional = any(k.lower() == "if-match" for k in headers)
            kind = {"GET": "point read", "DELETE": "delete",
                    "PUT": "conditional replace" if conditional else "upsert (replace)",
                    "MERGE": "conditional merge" if conditional else "upsert (merge)",
                    "PATCH": "conditional merge" if conditional else "upsert (merge)"}.get(method, method.lower())
            return Operation("tables", method, self._name(entity.group(1), partition), kind)
        table = entity.group(1) if entity else first
        if method == "GET":  # a query: named by its partition when the filter pins one
            pinned = _PK_IN_FILTER.search((query.get("$filter") or [""])[0])
            partition = pinned.group(1).replace("''", "'") if pinned else None
            return Operation("tables", method, self._name(table, partition), "query")
        if method == "POST":  # an insert: its partition from the entity in the body
            pk = _BATCH_PK_JSON.search(_body(request))
            return Operation("tables", method, self._name(table, pk.group(1).decode() if pk else None), "insert")
        return Operation("tables", method, self._name(table), method.lower())

    def _blob_op(self, method: str, segments: list[str], query: dict) -> Operation:
        container = self._name(segments[0]) if segments else "(account)"
        comp = (query.get("comp") or [""])[0]
        if query.get("restype") == ["container"] or len(segments) < 2:
            kind = "list blobs" if comp == "list" else f"container {method.lower()}"
        else:
            kind = {"GET": "read", "HEAD": "properties", "DELETE": "delete"}.get(method, "")
            if method == "PUT":
                kind = {"block": "put block", "blocklist": "put block list", "appendblock": "append block",
                        "metadata": "set metadata", "lease": "lease"}.get(comp, "write")
            kind = kind or method.lower()
        return Operation("blob", method, container, kind)

    def _queue_op(self, method: str, segments: list[str], query: dict) -> Operation:
        queue = self._name(segments[0]) if segments else "(account)"
        if len(segments) >= 2 and segments[1] == "messages":
            kind = {"POST": "enqueue", "GET": "receive", "DELETE": "delete message", "PUT": "update message"}.get(
                method, method.lower())
        else:
            kind = f"queue {method.lower()}"
        return Operation("queue", method, queue, kind)


class CountingTransport(HttpTransport):
    """Delegates to ``inner`` (the SDK's transport) and records each request it sends."""

    def __init__(self, inner: HttpTransport, counter: RequestCounter) -> None:
        self.inner = inner
        self.counter = counter

    def send(self, request: Any, **kwargs: Any) -> Any:
        try:
            response = self.inner.send(request, **kwargs)
        except Exception:
            self.counter.record(request, None)  # a request that got no response is still a request
            raise
        self.counter.record(request, getattr(response, "status_code", None))
        return response

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> "CountingTransport":
        self.inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.inner.__exit__(*args)

    def __getattr__(self, name: str) -> Any:  # anything else the SDK asks of its transport
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


@contextmanager
def counting(counter: RequestCounter) -> Iterator[RequestCounter]:
    """Every storage client built inside this block sends through a ``CountingTransport``,
    around whatever transport a factory set before (e.g. a benchmarked leaner one) returns."""
    from shared.adapters import storage_account

    previous = storage_account.transport_factory
    storage_account.transport_factory = lambda inner: CountingTransport(
        previous(inner) if previous is not None else inner, counter)
    try:
        yield counter
    finally:
        storage_account.transport_factory = previous
