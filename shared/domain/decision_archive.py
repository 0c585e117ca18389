"""The open decision archive's row, its staging line and its layout (pure: no I/O, no pyarrow).

Every decision is archived once per transaction id, by the hour it was **scored** in
(``scored_at``, UTC), as Parquet under ``decisions/date=YYYY-MM-DD/hour=HH/part-NNNNN.parquet``.
On the way there it is a *staging line*: one JSON line per decision, appended by the
scoring process that made it to its own hourly append blob. The scoring path writes lines
only; the Parquet encoding (``archive_parquet``, pyarrow) runs in compaction alone.

The staging line is the decision's stored document (``DecisionRecord.document()``: the
transaction, the verdict, ``scored_at``, the feature vector as base64 float32) plus the
shadow's score and version, so it round-trips exactly. Each staging blob starts with a
header line naming the features (``{"feature_names": [...], ...}``): a blob is written by
one process, so by one version of the code and one feature list.

The row (``archive_row``) is what the Parquet holds: timestamps as UTC instants (the
transaction's own UTC offset kept beside it, so its local clock is not lost), reasons and
rules as lists, and **one float32 column per feature**, named by the feature. One column
per feature, not one list column: any engine (DuckDB, Spark, Synapse) reads a feature by
its name, without the file's metadata or a 1-based index, Parquet keeps min/max statistics
per feature (``WHERE is_new_device = 1`` skips row groups) and compresses each feature on
its own (the binary ones to almost nothing), and a query that reads no feature reads none
of their bytes. A feature list that changes between code versions adds or drops columns
between hours, which readers unify by name (DuckDB ``union_by_name``, Spark ``mergeSchema``).
"""
from __future__ import annotations

import base64
import re
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from shared.domain import json_text
from shared.domain.decision_record import FEATURE_DTYPE, DecisionRecord
from shared.domain.features import FEATURE_NAMES, FEATURE_SCHEMA_HASH

HOUR = timedelta(hours=1)
ARCHIVE_PREFIX = "decisions"
MANIFEST_PREFIX = "manifests"
STAGING_FORMAT = 1
HEADER_KEY = "feature_names"

# The decision columns of the Parquet, in order, with their logical types (archive_parquet
# maps them to Arrow types); the feature columns follow, one per feature.
DECISION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("transaction_id", "string"),
    ("customer_id", "string"),
    ("transaction_amount", "float64"),
    ("currency", "string"),
    ("event_time", "timestamp"),            # the transaction's time, UTC
    ("event_utc_offset_minutes", "int32"),  # the sender's UTC offset (its local clock)
    ("device_id", "string"),
    ("merchant_id", "string"),
    ("merchant_category", "string"),
    ("channel", "string"),
    ("country", "string"),
    ("scored_at", "timestamp"),
    ("fraud_score", "float64"),
    ("risk_level", "string"),
    ("action", "string"),
    ("is_fraud", "bool"),
    ("reasons", "list<string>"),
    ("rules_fired", "list<string>"),
    ("model_version", "string"),
    ("shadow_score", "float64"),
    ("shadow_version", "string"),
    ("latency_ms", "float64"),
    ("source", "string"),
    ("feature_schema_hash", "string"),
)
DECISION_COLUMN_NAMES = tuple(name for name, _ in DECISION_COLUMNS)
_OPTIONAL_TEXT = ("device_id", "merchant_id", "merchant_category", "channel", "country", "shadow_version")

_HOUR_DIR = re.compile(r"date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})")


# -- the layout ---------------------------------------------------------------------------
def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in (its start)."""
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def hour_dir(hour: datetime) -> str:
    """``date=YYYY-MM-DD/hour=HH``: the hive-style partition of an hour (UTC)."""
    hour = hour_of(hour)
    return f"date={hour:%Y-%m-%d}/hour={hour:%H}"


def parse_hour_dir(text: str) -> datetime:
    """The hour of a path holding ``date=YYYY-MM-DD/hour=HH``."""
    match = _HOUR_DIR.search(text)
    if match is None:
        raise ValueError(f"{text!r} holds no date=YYYY-MM-DD/hour=HH partition")
    return datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}:00:00+00:00")


def part_name(hour: datetime, part: int) -> str:
    return f"{ARCHIVE_PREFIX}/{hour_dir(hour)}/part-{part:05d}.parquet"


def manifest_name(hour: datetime, part: int) -> str:
    return f"{MANIFEST_PREFIX}/{hour_dir(hour)}/part-{part:05d}.json"


def staging_blob_name(hour: datetime, process_id: str, sequence: int) -> str:
    """A scoring process's ``sequence``-th append blob of decisions scored in ``hour``."""
    return f"{hour_dir(hour)}/{process_id}-{sequence}.jsonl"


def hour_finished(hour: datetime, now: datetime, grace: timedelta) -> bool:
    """An hour is compacted once it ended ``grace`` ago (appends still in flight land first)."""
    return hour_of(hour) + HOUR + grace <= now


# -- the staging line ---------------------------------------------------------------------
@lru_cache(maxsize=8)
def staging_header(feature_names: tuple[str, ...] = FEATURE_NAMES, schema_hash: str = FEATURE_SCHEMA_HASH) -> bytes:
    """The first line of a staging blob: what its lines' feature vectors hold (made once per list)."""
    return _line({"staging_format": STAGING_FORMAT, HEADER_KEY: list(feature_names), "feature_schema_hash": schema_hash})


def staging_line(record: DecisionRecord) -> bytes:
    """One decision as a JSON line (the stored document plus the shadow's score)."""
    doc = record.document()
    if record.shadow is not None:
        doc["shadow_score"] = float(record.shadow.score)
        doc["shadow_version"] = record.shadow.version
    return _line(doc)


def _line(doc: Mapping[str, Any]) -> bytes:
    text = json_text.dumps(doc, ascii_fallback=False)  # a lone surrogate: U+FFFD below
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:  # a lone surrogate (JSON allows "\ud800", UTF-8 and Parquet do not): U+FFFD
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode() + b"\n"


def is_header(doc: Mapping[str, Any]) -> bool:
    return HEADER_KEY in doc


def parse_staging(lines: Iterable[bytes], header: Mapping[str, Any] | None = None
                  ) -> Iterator[tuple[Mapping[str, Any], dict[str, Any]]]:
    """(header, decision document) for each decision line; header lines (a blob's first, or a
    repeat after a retried first append) set the feature names of the lines after them."""
    for raw in lines:
        if not raw.strip():
            continue
        doc = json_text.loads(raw)
        if is_header(doc):
            header = doc
            continue
        if header is None:
            raise ValueError("a staging line before any header: its features cannot be named")
        yield header, doc


# -- the archive row ------------------------------------------------------------------------
def utc_instant(text: str) -> datetime:
    """An ISO 8601 time with offset as the UTC instant it names."""
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def utc_offset_minutes(text: str) -> int:
    """The UTC offset an ISO 8601 time was written with, in minutes (the sender's clock)."""
    offset = datetime.fromisoformat(text).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def feature_values(doc: Mapping[str, Any]) -> np.ndarray:
    """The document's feature vector, float32, exactly as served."""
    return np.frombuffer(base64.b64decode(doc["features"]), dtype=FEATURE_DTYPE)


def archive_row(doc: Mapping[str, Any], header: Mapping[str, Any]) -> dict[str, Any]:
    """A staging document as the archive's row: plain values, one entry per column
    (``DECISION_COLUMN_NAMES`` then the header's feature names)."""
    names = header[HEADER_KEY]
    features = feature_values(doc)
    if len(features) != len(names):
        raise ValueError(f"transaction {doc.get('transaction_id')}: {len(features)} features, the header names {len(names)}")
    values_by_column: dict[str, Any] = {
        "transaction_id": doc["transaction_id"],
        "customer_id": doc["customer_id"],
        "transaction_amount": float(doc["transaction_amount"]),
        "currency": doc.get("currency") or None,
        "event_time": utc_instant(doc["timestamp"]),
        "event_utc_offset_minutes": utc_offset_minutes(doc["timestamp"]),
        "scored_at": utc_instant(doc["scored_at"]),
        "fraud_score": float(doc["fraud_score"]),
        "risk_level": doc["risk_level"],
        "action": doc["action"],
        "is_fraud": bool(doc["is_fraud"]),
        "reasons": list(doc.get("reasons") or ()),
        "rules_fired": list(doc.get("rules_fired") or ()),
        "model_version": doc["model_version"],
        "shadow_score": float(doc["shadow_score"]) if doc.get("shadow_score") is not None else None,
        "latency_ms": float(doc.get("latency_ms") or 0.0),
        "source": doc.get("source") or "",
        "feature_schema_hash": header.get("feature_schema_hash") or "",
        **{name: doc.get(name) or None for name in _OPTIONAL_TEXT},
    }
    row = {name: values_by_column[name] for name in DECISION_COLUMN_NAMES}
    row.update(zip(names, (float(v) for v in features)))
    return row


def check_feature_names(names: Sequence[str]) -> None:
    """Feature columns sit beside the decision columns: a name may not collide."""
    clash = sorted(set(names) & set(DECISION_COLUMN_NAMES))
    if clash:
        raise ValueError(f"feature names collide with decision columns of the archive: {clash}")
    if len(set(names)) != len(names):
        raise ValueError("feature names repeat")
