"""Marker-delimited sections of docs/BENCHMARKS.md, so each benchmark rewrites only its own.

    <!-- bench.load:begin -->
    ...written by bench/load.py...
    <!-- bench.load:end -->

Text outside every benchmark's markers (hand-written sections and notes) is kept as is.
"""
from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str, *, top: bool = False, before: str | None = None) -> str:
    """``text`` with the region between ``name``'s markers (markers included) replaced by ``body``
    between fresh markers. Without the markers the region is added: at the top (``top``), before
    the first line starting with ``before``, or at the end."""
    begin, end = markers(name)
    block = f"{begin}\n{body.strip()}\n{end}\n"
    i, j = text.find(begin), text.find(end)
    if (i < 0) != (j < 0) or (i >= 0 and j < i) or text.count(begin) > 1 or text.count(end) > 1:
        raise ValueError(f"the markers of section {name!r} are unbalanced; fix the file by hand")
    if i >= 0:
        tail = text[j + len(end):]
        return text[:i] + block + (tail[1:] if tail.startswith("\n") else tail)
    if not text.strip():
        return block
    if top:
        return block + "\n" + text.lstrip("\n")
    if before is not None:
        at = 0
        for line in text.splitlines(keepends=True):
            if line.startswith(before):
                return text[:at] + block + "\n" + text[at:]
            at += len(line)
    return text.rstrip("\n") + "\n\n" + block


def write_section(path: Path, name: str, body: str, **where: object) -> None:
    old = path.read_text() if path.exists() else ""
    path.write_text(replace_section(old, name, body, **where))  # type: ignore[arg-type]
