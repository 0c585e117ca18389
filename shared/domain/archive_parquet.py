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
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from shared.domain.decision_archive import DECISION_COLUMNS, HEADER_KEY, check_feature_names, utc_offset_minutes
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


# The staging line's fields as the JSON reader parses them (a header line parses to a row
# without transaction_id, and is dropped).
STAGING_JSON_SCHEMA = pa.schema([
    ("transaction_id", pa.string()), ("customer_id", pa.string()), ("transaction_amount", pa.float64()),
    ("currency", pa.string()), ("timestamp", pa.string()), ("device_id", pa.string()), ("merchant_id", pa.string()),
    ("merchant_category", pa.string()), ("channel", pa.string()), ("country", pa.string()),
    ("fraud_score", pa.float64()), ("risk_level", pa.string()), ("action", pa.string()), ("is_fraud", pa.bool_()),
    ("reasons", pa.list_(pa.string())), ("rules_fired", pa.list_(pa.string())), ("model_version", pa.string()),
    ("features", pa.string()), ("scored_at", pa.string()), ("source", pa.string()), ("latency_ms", pa.float64()),
    ("shadow_score", pa.float64()), ("shadow_version", pa.string()),
])
_OFFSET = r"(?P<sign>[+-])(?P<hours>\d{2}):(?P<minutes>\d{2})$"


def staging_table(lines: bytes) -> pa.Table:
    """Whole staging lines parsed by Arrow's JSON reader (in C++, not one Python dict per line):
    the decision lines only, with the staging line's fields."""
    table = pj.read_json(pa.BufferReader(lines), read_options=pj.ReadOptions(block_size=4 << 20),
                         parse_options=pj.ParseOptions(explicit_schema=STAGING_JSON_SCHEMA,
                                                       unexpected_field_behavior="ignore"))
    table = table.select(STAGING_JSON_SCHEMA.names)
    decisions = pc.is_valid(table.column("transaction_id"))
    return table if pc.all(decisions).as_py() else table.filter(decisions)


def record_batch(staged: pa.Table, header: Mapping[str, Any], schema: pa.Schema) -> pa.RecordBatch:
    """Staging lines (``staging_table``) written under ``header`` as one record batch of ``schema``:
    the columns of ``decision_archive.archive_row``. A feature the header does not name is null."""
    n = staged.num_rows

    def empty_as_null(name: str) -> pa.Array:
        column = staged.column(name).combine_chunks()
        empty = pc.equal(column, "")
        if not pc.any(empty).as_py():  # the usual case: absent values are JSON null already
            return column
        return pc.if_else(empty, pa.scalar(None, pa.string()), column)

    def text(name: str) -> pa.Array:
        return pc.fill_null(staged.column(name), "").combine_chunks()

    columns: dict[str, Any] = {
        "transaction_id": staged.column("transaction_id"),
        "customer_id": staged.column("customer_id"),
        "transaction_amount": staged.column("transaction_amount"),
        "currency": empty_as_null("currency"),
        "event_time": staged.column("timestamp").cast(UTC_MICROS),
        "event_utc_offset_minutes": _offset_minutes(staged.column("timestamp").combine_chunks()),
        "scored_at": staged.column("scored_at").cast(UTC_MICROS),
        "fraud_score": staged.column("fraud_score"),
        "risk_level": staged.column("risk_level"),
        "action": staged.column("action"),
        "is_fraud": staged.column("is_fraud"),
        "reasons": pc.fill_null(staged.column("reasons"), pa.scalar([], pa.list_(pa.string()))),
        "rules_fired": pc.fill_null(staged.column("rules_fired"), pa.scalar([], pa.list_(pa.string()))),
        "model_version": staged.column("model_version"),
        "shadow_score": staged.column("shadow_score"),
        "latency_ms": pc.fill_null(staged.column("latency_ms"), 0.0),
        "source": text("source"),
        "feature_schema_hash": pa.array([header.get("feature_schema_hash") or ""] * n, pa.string()),
    }
    for name in ("device_id", "merchant_id", "merchant_category", "channel", "country", "shadow_version"):
        columns[name] = empty_as_null(name)
    columns.update(_feature_columns(staged.column("features"), header[HEADER_KEY], schema))
    arrays = [pa.chunked_array(columns[f.name]).combine_chunks() if isinstance(columns[f.name], pa.ChunkedArray)
              else columns[f.name] for f in schema]
    return pa.RecordBatch.from_arrays([a.cast(f.type) for a, f in zip(arrays, schema)], schema=schema)


def _offset_minutes(timestamps: pa.Array) -> pa.Array:
    """The UTC offset each ISO 8601 time was written with, in minutes."""
    parts = pc.extract_regex(timestamps, _OFFSET)
    if parts.null_count:  # an offset with seconds: Python reads it
        return pa.array([utc_offset_minutes(t) for t in timestamps.to_pylist()], pa.int32())
    hours = pc.cast(parts.field("hours"), pa.int32())
    minutes = pc.cast(parts.field("minutes"), pa.int32())
    magnitude = pc.add(pc.multiply(hours, 60), minutes)
    return pc.if_else(pc.equal(parts.field("sign"), "-"), pc.negate(magnitude), magnitude)


def _packed_bytes(packed: pa.ChunkedArray, width: int) -> bytes:
    """The concatenated float32 bytes of base64 vectors of ``width`` features each. When a vector's
    base64 has no padding (4 × width divisible by 3), the column's character buffer is one base64
    text and decodes in one call; otherwise vector by vector."""
    column = packed.combine_chunks()
    if (4 * width) % 3 == 0 and column.null_count == 0 and len(column):
        offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset:column.offset + len(column) + 1]
        text = memoryview(column.buffers()[2])[offsets[0]:offsets[-1]]
        raw = base64.b64decode(text)
        if len(raw) == len(column) * width * 4:
            return raw
    return b"".join(base64.b64decode(p) for p in column.to_pylist())


def _feature_columns(packed: pa.ChunkedArray, names: Sequence[str], schema: pa.Schema) -> dict[str, pa.Array]:
    """The float32 feature columns, decoded from the packed vectors in bulk; a feature of the
    schema the header does not name is null."""
    n = len(packed)
    raw = _packed_bytes(packed, len(names))
    matrix = np.frombuffer(raw, dtype=FEATURE_DTYPE).reshape(n, len(names)) if n else np.zeros((0, len(names)), np.float32)
    index = {name: j for j, name in enumerate(names)}
    out = {}
    for name in json.loads(schema.metadata[METADATA_FEATURES]):
        j = index.get(name)
        out[name] = pa.array(matrix[:, j]) if j is not None else pa.nulls(n, pa.float32())
    return out


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
