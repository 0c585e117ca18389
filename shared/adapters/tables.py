"""A lean entity-group transaction (Table Storage ``$batch``) for the scoring hot path.

``azure-data-tables``' ``submit_transaction`` spends ~8 ms of Python CPU per call building
and parsing the multipart body through the ``email`` package (measured on this machine;
see docs/BENCHMARKS.md). This module writes the same OData batch body with plain string
formatting and parses the reply's status lines and ETags, but sends it through the table
client's own pipeline, so authentication (shared key or Entra ID), retries and transport
are the SDK's. The wire format is the documented one:
https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions
"""
from __future__ import annotations

import itertools
import os
import re
import uuid
import zlib
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from shared.domain import json_text
from shared.service.fanout import RequestFanout

MAX_OPERATIONS = 100
_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_ETAG = re.compile(rb"^ETag: (.+?)\r?$", re.MULTILINE | re.IGNORECASE)
_INT32 = (-(2**31), 2**31 - 1)


class BatchRejected(HttpResponseError):
    """The service refused the transaction; ``status_code`` is the failing operation's."""

    def __init__(self, status: int, message: str, index: int | None) -> None:
        super().__init__(message=message)
        self.status_code = status
        self.index = index


def _odata_value(name: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        out[name] = value
    elif isinstance(value, int):
        if _INT32[0] <= value <= _INT32[1]:
            out[name] = value
        else:
            out[name] = str(value)
            out[f"{name}@odata.type"] = "Edm.Int64"
    elif isinstance(value, float):
        out[name] = value
        out[f"{name}@odata.type"] = "Edm.Double"
    elif isinstance(value, datetime):
        moment = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        out[name] = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
        out[f"{name}@odata.type"] = "Edm.DateTime"
    else:
        raise TypeError(f"property {name}: unsupported type {type(value).__name__}")


def entity_json(entity: Mapping[str, Any]) -> str:
    body: dict[str, Any] = {}
    for name, value in entity.items():
        _odata_value(name, value, body)
    return json_text.dumps(body)


def _key(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def _odata_headers(table_client: Any, **headers: str) -> dict[str, str]:
    """The headers every request of this module carries (OData 3.0, the client's API version),
    and ``headers``."""
    return {"DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
            "x-ms-version": table_client.api_version, **headers}


def _error_code(content: bytes) -> str:
    """The service's error code in a refusal's JSON body ("" if none)."""
    found = re.search(rb'"code"\s*:\s*"([^"]*)"', content)
    return found.group(1).decode("utf-8", "replace") if found else ""


def _account_url(table_client: Any) -> str:
    """The account's table endpoint from the client's public ``url`` (without a SAS query)."""
    return table_client.url.split("?", 1)[0].rstrip("/")


_REQUEST_ID_PREFIX = ""
_REQUEST_NUMBERS = itertools.count()


def _new_process_prefix() -> None:
    global _REQUEST_ID_PREFIX, _REQUEST_NUMBERS
    _REQUEST_ID_PREFIX = str(uuid.uuid4())[:24]  # "xxxxxxxx-xxxx-4xxx-yxxx-": random, this process's
    _REQUEST_NUMBERS = itertools.count()


_new_process_prefix()
os.register_at_fork(after_in_child=_new_process_prefix)


def unique_id() -> str:
    """A UUID-shaped id unique to this call: the process's random prefix and a counter.

    Used as the ``x-ms-client-request-id`` of this module's requests (azure-core's
    ``RequestIdPolicy`` keeps an id the request has, else makes one with ``uuid.uuid1``, a
    thirtieth of an HTTP scoring request's CPU, issue #17) and as ``$batch`` boundaries."""
    return f"{_REQUEST_ID_PREFIX}{next(_REQUEST_NUMBERS) & 0xFFFFFFFFFFFF:012x}"


def _send(table_client: Any, request: HttpRequest) -> Any:
    """Send through the table client's own pipeline (its credential, retry policy, transport).

    The one place this module reaches into the SDK: ``TableClient`` has no public
    ``send_request``. Its generated client's (``_client``) deep-copies every request and
    re-serialises the account URL into it, a twentieth of an HTTP scoring request's CPU
    (issue #17); the request here already has its absolute URL, so it goes straight to that
    client's azure-core ``PipelineClient.send_request`` (the same pipeline, every policy).
    Pinned by ``azure-data-tables`` in requirements.txt and tested against Azurite in
    tests/integration/test_table_batch.py."""
    if "x-ms-client-request-id" not in request.headers:
        request.headers["x-ms-client-request-id"] = unique_id()
    return table_client._client._client.send_request(request, stream=True)


def submit_batch(table_client: Any, operations: Iterable[tuple]) -> list[str | None]:
    """Commit operations atomically; returns each operation's new ETag (None if not given).

    operations: ("create", entity) | ("update", entity, {"etag": e}) [replace, If-Match]
                | ("upsert", entity) [merge, no condition] | ("upsert_replace", entity)
                | ("delete", keys) [If-Match *] | ("delete", keys, {"etag": e}) [If-Match e]
    Raises ``BatchRejected`` (status 409, 412, ...) when the service refuses it.
    """
    ops = list(operations)
    if not 0 < len(ops) <= MAX_OPERATIONS:
        raise ValueError(f"a transaction takes 1-{MAX_OPERATIONS} operations, got {len(ops)}")
    base = _account_url(table_client)
    table = table_client.table_name
    batch, changeset = f"batch_{unique_id()}", f"changeset_{unique_id()}"
    parts = []
    for op in ops:
        kind, entity = op[0], op[1]
        options = op[2] if len(op) > 2 else {}
        headers = ["Content-Type: application/json", "Accept: application/json;odata=minimalmetadata",
                   "DataServiceVersion: 3.0"]
        if kind == "create":
            line = f"POST {base}/{table} HTTP/1.1"
            headers.append("Prefer: return-no-content")
        else:
            target = f"{base}/{table}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
            if kind == "update":
                line = f"PUT {target} HTTP/1.1"
                headers.append(f"If-Match: {options['etag']}")
            elif kind == "upsert":
                line = f"MERGE {target} HTTP/1.1"
            elif kind == "upsert_replace":
                line = f"PUT {target} HTTP/1.1"
            elif kind == "delete":
                line = f"DELETE {target} HTTP/1.1"
                headers.append(f"If-Match: {options.get('etag', '*')}")
            else:
                raise ValueError(f"unknown operation {kind!r}")
        content = "" if kind == "delete" else entity_json(entity)
        parts.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"{line}\r\n" + "\r\n".join(headers) + "\r\n\r\n" + content + "\r\n"
        )
    body = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        + "".join(parts) + f"--{changeset}--\r\n--{batch}--\r\n"
    ).encode()
    request = HttpRequest("POST", f"{base}/$batch", content=body, headers=_odata_headers(
        table_client, **{"Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json"}))
    response = _send(table_client, request)
    if response.status_code != 202:
        raise BatchRejected(response.status_code, f"batch refused with HTTP {response.status_code}: {response.read()[:300]!r}", None)
    content = response.read()
    statuses = [int(s) for s in _STATUS.findall(content)]
    failed = [s for s in statuses if not 200 <= s < 300]
    if failed or not statuses:
        message = content.decode("utf-8", "replace")
        found = re.search(r'"value"\s*:\s*"(\d+):', message)
        index = int(found.group(1)) if found else None
        raise BatchRejected(failed[0] if failed else 500,
                            f"transaction refused: HTTP {failed[0] if failed else '?'} {_error_code(content)}".strip(),
                            index)
    etags = [e.decode().strip() for e in _ETAG.findall(content)]
    return (etags + [None] * len(ops))[: len(ops)]


def insert_entity(table_client: Any, entity: Mapping[str, Any]) -> str | None:
    """Create one entity (a plain insert, not a one-operation ``$batch``: no multipart body to
    write or reply to parse); returns its ETag. An entity with its keys already there raises
    ``BatchRejected`` with 409, as a refused ``submit_batch`` create does."""
    base = _account_url(table_client)
    request = HttpRequest("POST", f"{base}/{table_client.table_name}", content=entity_json(entity).encode(),
                          headers=_odata_headers(table_client, **{"Content-Type": "application/json",
                                                                  "Accept": "application/json;odata=nometadata",
                                                                  "Prefer": "return-no-content"}))
    response = _send(table_client, request)
    content = response.read()
    if response.status_code == 204:
        return response.headers.get("ETag")
    raise BatchRejected(response.status_code,
                        f"insert refused with HTTP {response.status_code} {_error_code(content)}".strip(), 0)


def read_entity(table_client: Any, partition_key: str, row_key: str,
                select: str | None = None) -> tuple[dict[str, Any], str] | None:
    """Point read (properties as JSON types, no typed conversion) and its ETag; None if absent.
    ``select``: a comma-separated list of the properties to return (all by default)."""
    base = _account_url(table_client)
    url = f"{base}/{table_client.table_name}(PartitionKey='{_key(partition_key)}',RowKey='{_key(row_key)}')"
    if select:
        url += f"?$select={quote(select, safe=',')}"
    request = HttpRequest("GET", url, headers=_odata_headers(table_client, Accept="application/json;odata=nometadata"))
    response = _send(table_client, request)
    content = response.read()
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise BatchRejected(response.status_code, f"read refused with HTTP {response.status_code}: {content[:200]!r}", None)
    return json_text.loads(content), response.headers["ETag"]


ROW_KEYS_PER_QUERY = 15  # keeps the OData filter (and the URL) short


def query_row_keys(table_client: Any, partition_key: str, row_keys: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The entities of one partition among the given row keys (missing ones are simply absent)."""
    keys = list(dict.fromkeys(row_keys))
    for start in range(0, len(keys), ROW_KEYS_PER_QUERY):
        chunk = keys[start:start + ROW_KEYS_PER_QUERY]
        params = {"pk": partition_key, **{f"r{i}": k for i, k in enumerate(chunk)}}
        rows = " or ".join(f"RowKey eq @r{i}" for i in range(len(chunk)))
        yield from table_client.query_entities(f"PartitionKey eq @pk and ( {rows} )", parameters=params)


def shard_of(key: str, shards: int, salt: bytes = b"") -> int:
    """A stable shard of ``key`` among ``shards`` (crc32): the one sharding rule of every table."""
    return zlib.crc32(salt + key.encode()) % shards


def shard_key(prefix: str, key: str, shards: int) -> str:
    """A stable partition for ``key`` among ``shards`` partitions named ``<prefix>-NN``."""
    return f"{prefix}-{shard_of(key, shards):02d}"


def upsert_grouped(table_client: Any, entities: Iterable[Mapping[str, Any]],
                   map_chunks: Callable[[Callable[[list], int], list[list]], list[int]] | None = None) -> int:
    """Upsert (MERGE) entities as entity-group transactions: grouped by partition, at most
    ``MAX_OPERATIONS`` per transaction. ``map_chunks`` runs the transactions (e.g. a fan-out's
    ``map``); by default one after another. Returns the number of entities written."""
    by_partition: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for entity in entities:
        by_partition[entity["PartitionKey"]].append(entity)
    chunks = [group[start:start + MAX_OPERATIONS] for group in by_partition.values()
              for start in range(0, len(group), MAX_OPERATIONS)]

    def write(chunk: list) -> int:
        return len(submit_batch(table_client, [("upsert", e) for e in chunk]))

    return sum(map_chunks(write, chunks) if map_chunks is not None else map(write, chunks))


CREATE_ATTEMPTS = 5


_EXISTENCE_CHECKS = RequestFanout(8, "create-check-io")  # its own pool: callers create chunks on theirs

# Reads one existing entity of a partition by row key (None when absent): what a refused create
# looks up. The default reads the key only.
ExistingReader = Callable[[Any, str, str], "Mapping[str, Any] | None"]


def read_row(table_client: Any, partition_key: str, row_key: str, select: str | None = None) -> dict[str, Any] | None:
    """``read_entity`` without the ETag: the entity's properties, or None if absent."""
    hit = read_entity(table_client, partition_key, row_key, select)
    return hit[0] if hit else None


def _key_only(table_client: Any, partition_key: str, row_key: str) -> Mapping[str, Any] | None:
    return read_row(table_client, partition_key, row_key, select="RowKey")


def group_by_partition(entities: Iterable[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Entities as entity-group chunks: grouped by partition, at most ``MAX_OPERATIONS`` each;
    of entities with one key, the first wins."""
    by_partition: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for entity in entities:
        by_partition[entity["PartitionKey"]].setdefault(entity["RowKey"], entity)
    return [list(group.values())[start:start + MAX_OPERATIONS] for group in by_partition.values()
            for start in range(0, len(group), MAX_OPERATIONS)]


def create_missing(table_client: Any, chunk: list[Mapping[str, Any]],
                   read_existing: ExistingReader = _key_only) -> tuple[int, dict[str, Mapping[str, Any]]]:
    """Create the entities of one chunk (one partition, at most ``MAX_OPERATIONS``) that do not
    exist yet, never touching one that does: (entities created, the existing ones by row key, as
    ``read_existing`` read them).

    A fresh chunk is one entity-group transaction of ``create`` operations (one entity: a plain
    insert, ``insert_entity``). It fails whole on one existing entity (409), so then the chunk's
    entities are read by key (point reads in parallel: an OR of row keys would scan the
    partition, and an audit hour's holds every decision of that hour and shard) and only the
    missing ones are created; a writer racing in between makes that repeat (at most
    ``CREATE_ATTEMPTS`` times)."""
    existing: dict[str, Mapping[str, Any]] = {}
    todo = chunk
    for _ in range(CREATE_ATTEMPTS):
        try:
            if len(todo) == 1:  # one entity (an HTTP request's id claim or audit row): a plain insert
                insert_entity(table_client, todo[0])
            else:
                submit_batch(table_client, [("create", e) for e in todo])
            return len(todo), existing
        except BatchRejected as exc:
            if exc.status_code != 409:
                raise
        partition = todo[0]["PartitionKey"]
        keys = [e["RowKey"] for e in todo]
        found = {k: v for k, v in zip(keys, _EXISTENCE_CHECKS.map(
            lambda key: read_existing(table_client, partition, key), keys)) if v is not None}
        if not found:  # refused, yet none exists: not a conflict of ours
            raise BatchRejected(409, "transaction refused with 409 although none of its entities exists", None)
        existing.update(found)
        todo = [e for e in todo if e["RowKey"] not in existing]
        if not todo:  # a transaction fails whole: nothing was created by this call
            return 0, existing
    raise BatchRejected(409, f"entities kept appearing under {CREATE_ATTEMPTS} create attempts", None)


def create_grouped(table_client: Any, entities: Iterable[Mapping[str, Any]],
                   map_chunks: Callable[[Callable[[list], int], list[list]], list[int]] | None = None) -> int:
    """Create entities that do not exist yet, never touching one that does (write-once rows):
    ``create_missing`` per chunk of ``group_by_partition`` (``map_chunks`` runs the chunks, e.g.
    a fan-out's ``map``; by default one after another). Within one call, the first entity of a
    key wins. Returns the number of entities created by this call."""
    def create(chunk: list) -> int:
        return create_missing(table_client, chunk)[0]

    chunks = group_by_partition(entities)
    return sum(map_chunks(create, chunks) if map_chunks is not None else map(create, chunks))


def delete_grouped(table_client: Any, keys: Iterable[tuple[str, str]],
                   map_chunks: Callable[[Callable[[list], int], list[list]], list[int]] | None = None) -> int:
    """Delete entities by (PartitionKey, RowKey) as entity-group transactions: grouped by
    partition, at most ``MAX_OPERATIONS`` per transaction (``map_chunks`` runs them, e.g. a
    fan-out's ``map``; by default one after another). An entity already gone is not an error
    (deleting is idempotent): a transaction refused with 404 is retried one entity at a time,
    and only the entities that existed are counted. Returns the number deleted."""
    by_partition: dict[str, list[str]] = defaultdict(list)
    for partition_key, row_key in dict.fromkeys(keys):
        by_partition[partition_key].append(row_key)
    chunks = [[{"PartitionKey": pk, "RowKey": r} for r in row_keys[start:start + MAX_OPERATIONS]]
              for pk, row_keys in by_partition.items() for start in range(0, len(row_keys), MAX_OPERATIONS)]

    def delete(chunk: list) -> int:
        try:
            return len(submit_batch(table_client, [("delete", e) for e in chunk]))
        except BatchRejected as exc:
            if exc.status_code != 404:
                raise
            return sum(delete_if_present(table_client, e) for e in chunk)

    return sum(map_chunks(delete, chunks) if map_chunks is not None else map(delete, chunks))


def delete_if_present(table_client: Any, keys: Mapping[str, str], etag: str = "*") -> bool:
    """Delete one entity if it exists (and, with ``etag``, is unchanged): True when it was
    deleted, False when it was already gone. A changed entity raises ``BatchRejected`` (412)."""
    try:
        submit_batch(table_client, [("delete", dict(keys), {"etag": etag})])
    except BatchRejected as exc:
        if exc.status_code == 404:
            return False
        raise
    return True
