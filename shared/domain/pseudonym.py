"""Keyed pseudonyms of customer and device identifiers (pure: no I/O).

A pseudonym is ``HMAC-SHA-256(key, "<kind>\\x00<identifier>")`` truncated to its first 128 bits
and written as 32 lower-case hex characters, after a kind prefix: ``cu_`` for a customer,
``dv_`` for a device. The kind in the MAC input separates the domains: a customer and a device
with the same identifier get unrelated pseudonyms, and one kind's pseudonym cannot be passed
off as the other's. Without the key, a pseudonym cannot be linked to its identifier by
guessing identifiers (unlike an unsalted hash of a short id); with it, the bank can (it holds
the identifiers anyway). 128 bits keep collisions out of reach (about 2**64 identifiers for
an even chance of one) while halving the text of a full digest.

The key comes from ``FRAUD_PSEUDONYM_KEY`` (``shared.adapters.pseudonym_key``); rotating it
changes every pseudonym, so profiles keyed by the old ones start afresh (docs/DATA.md).
"""
from __future__ import annotations

import hashlib
import hmac

MIN_KEY_BYTES = 32
PSEUDONYM_HEX = 32  # 128 bits
MAX_KNOWN = 20_000  # pseudonyms a Pseudonyms keeps computed (about 3 MB)
KINDS = {"customer": "cu_", "device": "dv_"}


class Pseudonyms:
    """The pseudonyms of one key. Equal keys make equal pseudonyms in every process."""

    __slots__ = ("_key", "_known")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a pseudonym key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        # (kind, identifier) -> pseudonym: a scoring call asks for a customer's several times
        # (its profile's partition at load, commit and cache) and an HMAC costs ~4 µs
        self._known: dict[tuple[str, str], str] = {}

    def of(self, kind: str, identifier: str) -> str:
        known = self._known.get((kind, identifier))
        if known is not None:
            return known
        prefix = KINDS[kind]
        mac = hmac.new(self._key, kind.encode() + b"\x00" + identifier.encode("utf-8", "surrogatepass"), hashlib.sha256)
        pseudonym = prefix + mac.hexdigest()[:PSEUDONYM_HEX]
        if len(self._known) >= MAX_KNOWN:
            self._known.clear()  # bounded: starts over rather than keep every identifier seen
        self._known[(kind, identifier)] = pseudonym
        return pseudonym

    def customer(self, customer_id: str) -> str:
        return self.of("customer", customer_id)

    def device(self, device_id: str) -> str:
        return self.of("device", device_id)

    def __repr__(self) -> str:  # never the key
        return "Pseudonyms(<key>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pseudonyms) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.customer("\x00pseudonyms"))


def is_pseudonym(text: str, kind: str) -> bool:
    prefix = KINDS[kind]
    body = text[len(prefix):]
    return text.startswith(prefix) and len(body) == PSEUDONYM_HEX and all(c in "0123456789abcdef" for c in body)
