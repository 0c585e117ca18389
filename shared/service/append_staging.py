"""What every per-process append-blob writer shares (monitoring aggregates, the decision
archive's staging, the training sample): a writer id unique per process, and lines packed
into append blocks.

A process appends only to blobs (or rows) named by its own id, so writers never contend; the
blocks are cut at line ends, so a reader never sees half a line.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
from typing import Iterable

MAX_APPEND_BYTES = 4 * 1024 * 1024  # an append blob's block: at most 4 MiB


def writer_id() -> str:
    """Unique per process: host name, pid and a random part (a recycled pid on a new host
    instance never reuses a blob or a row)."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40].strip("-") or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def pack_lines(lines: Iterable[bytes], max_bytes: int = MAX_APPEND_BYTES) -> list[bytes]:
    """Newline-terminated lines joined into blocks of at most ``max_bytes``, cut at line ends."""
    blocks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if len(line) > max_bytes:
            raise ValueError(f"a line of {len(line)} bytes exceeds an append block ({max_bytes} at most)")
        if size + len(line) > max_bytes:
            blocks.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        blocks.append(b"".join(current))
    return blocks
