"""Retention of the monitoring aggregates table (``FRAUD_AGGREGATE_TABLE``): a Table adapter.

The scoring processes write their hourly aggregates there with PartitionKey = the UTC hour
``YYYYMMDDHH`` (any RowKey); this module only removes whole hours past the audit retention.
It reads keys only and never needs to know what a row holds, so the writer's adapter can
change its columns freely.
"""
from __future__ import annotations

from typing import Any, Sequence

from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.tables import delete_grouped


def _is_hour_key(key: str) -> bool:
    return len(key) == 10 and key.isdigit()


class AggregateRetention:
    def __init__(self, table_client: Any) -> None:
        self._table = table_client

    def expired_hours(self, before_hour: str, limit: int) -> list[tuple[str, str]]:
        """Keys of rows in hour partitions before ``before_hour`` (one range query from the
        oldest hour, keys only); partitions not named by an hour are never listed. A table not
        created yet has nothing to delete."""
        keys: list[tuple[str, str]] = []
        rows = self._table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi",
                                          parameters={"lo": "0000000000", "hi": before_hour},
                                          select=["PartitionKey", "RowKey"], results_per_page=min(limit, 1000))
        try:
            for row in rows:
                if _is_hour_key(row["PartitionKey"]):
                    keys.append((row["PartitionKey"], row["RowKey"]))
                    if len(keys) >= limit:
                        break
        except ResourceNotFoundError:
            return []
        return keys

    def delete_rows(self, keys: Sequence[tuple[str, str]]) -> int:
        """Delete rows by key, grouped per hour partition; rows already gone are skipped."""
        return delete_grouped(self._table, keys)
