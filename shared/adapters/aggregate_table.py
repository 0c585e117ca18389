"""The monitoring aggregates table: Table Storage adapter of ``MonitoringAggregatePort``.

Aggregate rows: PartitionKey = the event hour ``YYYYMMDDHH`` (UTC), RowKey = the writing
process and its generation; the document (``HourAggregate`` dicts) as zlib-compressed JSON,
base64 in string properties of at most 30,000 characters (a property holds 64 KiB of UTF-16),
replaced whole at each flush. A range query over the hours of a window reads them all.

Labelled decisions: PartitionKey ``L<YYYYMMDDHH>`` (the decision's event hour), RowKey = the
transaction id; upserted by the label join. ``L`` sorts after digits, so the aggregate
range queries never see these rows.

Retention (``expired_hours``/``delete_rows``) removes both kinds of row of the hours before a
cut-off, keys only.
"""
from __future__ import annotations

import base64
import json
import zlib
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.adapters.storage_account import create_if_missing
from shared.adapters.tables import delete_grouped, upsert_grouped
from shared.domain.merchant_risk import HOUR
from shared.domain.monitoring_aggregate import LabelledDecision

CHUNK_CHARS = 30_000
MAX_CHUNKS = 30  # 900,000 characters: within an entity's 1 MiB with the keys
LABELLED = "L"


def hour_partition(hour: int) -> str:
    return datetime.fromtimestamp(hour * HOUR, timezone.utc).strftime("%Y%m%d%H")


def encode_document(document: dict[str, Any]) -> dict[str, str]:
    text = base64.b64encode(zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)).decode()
    chunks = [text[i:i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    if len(chunks) > MAX_CHUNKS:
        raise ValueError(f"aggregate document of {len(text)} encoded characters exceeds one entity")
    return {f"d{i:02d}": chunk for i, chunk in enumerate(chunks)} | {"chunks": len(chunks)}


def decode_document(entity: dict[str, Any]) -> dict[str, Any]:
    text = "".join(entity[f"d{i:02d}"] for i in range(int(entity["chunks"])))
    return json.loads(zlib.decompress(base64.b64decode(text)))


class MonitoringAggregateTable:
    def __init__(self, table_client: Any) -> None:
        self._table = table_client

    def ensure_table(self) -> None:
        create_if_missing(self._table.create_table)

    def put(self, hour: int, row_key: str, document: dict[str, Any]) -> None:
        entity = {"PartitionKey": hour_partition(hour), "RowKey": row_key, **encode_document(document)}
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def read(self, first_hour: int, end_hour: int) -> Iterator[dict[str, Any]]:
        rows = self._table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi",
                                          parameters={"lo": hour_partition(first_hour), "hi": hour_partition(end_hour)},
                                          results_per_page=1000)
        for row in rows:
            yield decode_document(dict(row))

    def put_labelled(self, rows: Sequence[LabelledDecision]) -> None:
        entities = []
        for row in rows:
            fields = {k: v for k, v in row.to_dict().items() if v is not None}
            entities.append({"PartitionKey": LABELLED + hour_partition(row.hour), "RowKey": row.transaction_id, **fields})
        upsert_grouped(self._table, entities)

    def read_labelled(self, first_hour: int, end_hour: int) -> Iterator[LabelledDecision]:
        rows = self._table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi",
            parameters={"lo": LABELLED + hour_partition(first_hour), "hi": LABELLED + hour_partition(end_hour)},
            results_per_page=1000)
        for row in rows:
            yield LabelledDecision.from_dict(dict(row))

    # -- retention ----------------------------------------------------------------------------
    def expired_hours(self, before_hour: str, limit: int) -> list[tuple[str, str]]:
        """Keys of the aggregate and labelled-decision rows of hours before ``before_hour``
        (``YYYYMMDDHH``): one range query per kind, keys only. Partitions not named by an hour
        are never listed; a table not created yet has nothing to delete."""
        keys: list[tuple[str, str]] = []
        for prefix in ("", LABELLED):
            rows = self._table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi",
                                              parameters={"lo": prefix + "0000000000", "hi": prefix + before_hour},
                                              select=["PartitionKey", "RowKey"], results_per_page=min(limit, 1000))
            try:
                for row in rows:
                    hour = row["PartitionKey"][len(prefix):]
                    if len(hour) == 10 and hour.isdigit():
                        keys.append((row["PartitionKey"], row["RowKey"]))
                        if len(keys) >= limit:
                            return keys
            except ResourceNotFoundError:
                return []
        return keys

    def delete_rows(self, keys: Sequence[tuple[str, str]]) -> int:
        """Delete rows by key, grouped per partition; rows already gone are skipped."""
        return delete_grouped(self._table, keys)
