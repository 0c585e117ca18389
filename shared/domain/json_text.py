"""Compact JSON text for what the scoring path writes and reads back itself: profile states,
table entities, decision documents, archive and training-sample lines.

``orjson`` encodes a 300-transaction profile's state in ~20 µs against ~290 µs for the
standard library's ``json.dumps`` (and parses it in ~36 µs against ~140 µs), the largest
single item of a cached Event Hub event's CPU after the storage requests (issue #17,
docs/BENCHMARKS.md). The text is the same compact JSON the standard library writes with
``separators=(",", ":")`` and ``ensure_ascii=False``; only some floats are spelt differently
(``1e-7`` for ``1e-07``), which parse to the same number.

Whatever ``orjson`` refuses to encode (a numpy scalar, a dict with non-string keys, an integer
beyond 64 bits) is encoded by the standard library instead, so a caller never sees a
difference in what can be written; and text ``orjson`` refuses to parse (the ``NaN`` the
standard library writes for a non-finite float, which ``orjson`` writes as ``null``; nothing
on the scoring path is non-finite: amounts are validated, features and scores finite) is
parsed by the standard library, so rows written before still read. Input from outside (an HTTP body, an event) is not parsed
here: its rules (``NaN`` refused, duplicate keys, huge integers) are the API's
(``shared.service.scoring.parse_event_body``, ``functions.http.read_json_body``).
"""
from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any, *, ascii_fallback: bool = True) -> str:
    """``value`` as compact JSON text (no spaces, non-ASCII kept as UTF-8).

    What ``orjson`` refuses goes to the standard library, which escapes non-ASCII (``\\ud800``
    for a lone surrogate) so the text always encodes as UTF-8, as the standard library's
    default wrote table entities and responses before; with ``ascii_fallback=False`` it keeps
    non-ASCII as is, a lone surrogate too (``decision_archive`` replaces that itself)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_fallback)


def loads(text: str | bytes) -> Any:
    """Parse JSON text this app wrote (``dumps``) or a storage service returned."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
