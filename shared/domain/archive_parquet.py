"""The archive's Parquet: its explicit Arrow schema, and staging documents turned into Arrow
record batches column by column.

This module imports pyarrow, so only compaction imports it (lazily, inside the function
that compacts): never the scoring path, which writes staging lines only
(``shared.domain.decision_archive``). The columns and their meaning are those of
``decision_archive.archive_row``; a test reads a written file back to exactly those rows.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shared.domain.decision_archive import (DECISION_COLUMNS, HEADER_KEY, check_feature_names, utc_instant,
                                            utc_offset_minutes)
from shared.domain.decision_record import FEATURE_DTYPE

UTC_MICROS = pa.timestamp("us", tz="UTC")
ARROW_TYPES = {
    "string": pa.string(),
    "float64": pa.float64(),
    "int32": pa.int32(),
    "bool": pa.bool_(),
    "timestamp": UTC_MICROS,
    "list<string>": pa.list_(pa.string()),
}
NOT_NULL = frozenset({"transaction_id", "customer_id", "transaction_amount", "event_time", "event_utc_offset_minutes",
                      "scored_at", "fraud_score", "risk_level", "action", "is_fraud", "reasons", "rules_fired",
                      "model_version", "latency_ms", "source", "feature_schema_hash"})
METADATA_FEATURES = b"fraud.feature_names"
METADATA_PLAN = b"fraud.plan"
SORT_KEYS = [("scored_at", "ascending"), ("transaction_id", "ascending")]


def arrow_schema(feature_names: Sequence[str], plan: Mapping[str, Any] | None = None) -> pa.Schema:
    """The part file's schema: the decision columns, then one float32 column per feature;
    the feature names (in order) and the compaction plan that wrote the file in its metadata."""
    check_feature_names(feature_names)
    fields = [pa.field(name, ARROW_TYPES[kind], nullable=name not in NOT_NULL) for name, kind in DECISION_COLUMNS]
    fields += [pa.field(name, pa.float32()) for name in feature_names]
    metadata = {METADATA_FEATURES: json.dumps(list(feature_names)).encode()}
    if plan is not None:
        metadata[METADATA_PLAN] = json.dumps(plan, sort_keys=True).encode()
    return pa.schema(fields, metadata=metadata)


def record_batch(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], schema: pa.Schema) -> pa.RecordBatch:
    """(header, staging document) pairs as one record batch of ``schema``. A feature the
    document's header does not name is null in its row."""
    docs = [doc for _, doc in pairs]

    def text(key: str, optional: bool = True) -> pa.Array:
        return pa.array([(d.get(key) or None) if optional else d[key] for d in docs], pa.string())

    def number(key: str, default: float | None = None) -> pa.Array:
        return pa.array([float(d[key]) if d.get(key) is not None else default for d in docs], pa.float64())

    columns: dict[str, pa.Array] = {
        "transaction_id": text("transaction_id", optional=False),
        "customer_id": text("customer_id", optional=False),
        "transaction_amount": number("transaction_amount"),
        "currency": text("currency"),
        "event_time": pa.array([utc_instant(d["timestamp"]) for d in docs], UTC_MICROS),
        "event_utc_offset_minutes": pa.array([utc_offset_minutes(d["timestamp"]) for d in docs], pa.int32()),
        "device_id": text("device_id"),
        "merchant_id": text("merchant_id"),
        "merchant_category": text("merchant_category"),
        "channel": text("channel"),
        "country": text("country"),
        "scored_at": pa.array([utc_instant(d["scored_at"]) for d in docs], UTC_MICROS),
        "fraud_score": number("fraud_score"),
        "risk_level": text("risk_level", optional=False),
        "action": text("action", optional=False),
        "is_fraud": pa.array([bool(d["is_fraud"]) for d in docs], pa.bool_()),
        "reasons": pa.array([list(d.get("reasons") or ()) for d in docs], pa.list_(pa.string())),
        "rules_fired": pa.array([list(d.get("rules_fired") or ()) for d in docs], pa.list_(pa.string())),
        "model_version": text("model_version", optional=False),
        "shadow_score": number("shadow_score"),
        "shadow_version": text("shadow_version"),
        "latency_ms": number("latency_ms", 0.0),
        "source": pa.array([d.get("source") or "" for d in docs], pa.string()),
        "feature_schema_hash": pa.array([h.get("feature_schema_hash") or "" for h, _ in pairs], pa.string()),
    }
    columns.update(_feature_columns(pairs, schema))
    return pa.RecordBatch.from_arrays([columns[f.name] for f in schema], schema=schema)


def _feature_columns(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], schema: pa.Schema
                     ) -> dict[str, pa.Array]:
    """The float32 feature columns, decoded from each document's packed vector in bulk: one
    matrix per feature list (normally one), scattered into the schema's columns."""
    wanted = json.loads(schema.metadata[METADATA_FEATURES])
    n = len(pairs)
    values = {name: np.zeros(n, dtype=np.float32) for name in wanted}
    present = {name: np.zeros(n, dtype=bool) for name in wanted}
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, (header, _) in enumerate(pairs):
        groups.setdefault(tuple(header[HEADER_KEY]), []).append(i)
    for names, rows in groups.items():
        raw = b"".join(base64.b64decode(pairs[i][1]["features"]) for i in rows)
        matrix = np.frombuffer(raw, dtype=FEATURE_DTYPE).reshape(len(rows), len(names))
        index = np.asarray(rows)
        for j, name in enumerate(names):
            if name in values:
                values[name][index] = matrix[:, j]
                present[name][index] = True
    return {name: pa.array(values[name], pa.float32(), mask=~present[name]) for name in wanted}


def part_feature_names(schema: pa.Schema) -> list[str]:
    return json.loads(schema.metadata[METADATA_FEATURES])


def part_plan(schema: pa.Schema) -> dict[str, Any] | None:
    """The compaction plan a part file records (None: a file not written by compaction)."""
    raw = (schema.metadata or {}).get(METADATA_PLAN)
    return json.loads(raw) if raw else None


def sort_and_dedupe(table: pa.Table) -> pa.Table:
    """Rows sorted by (scored_at, transaction_id), one per transaction id. A redelivered
    decision is the stored one, scored_at included, so its repeats sit side by side."""
    if table.num_rows == 0:
        return table
    table = table.sort_by(SORT_KEYS)
    ids = table.column("transaction_id").to_numpy(zero_copy_only=False)
    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    return table if keep.all() else table.filter(pa.array(keep))


def parquet_writer(sink: Any, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer over a binary file-like sink (zstd; statistics on every column)."""
    return pq.ParquetWriter(sink, schema, compression="zstd", write_statistics=True)
