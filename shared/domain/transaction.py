"""The transaction schema: one definition for the Event Hub path, the HTTP path and training.

``validate_transaction`` turns an untrusted mapping into a ``Transaction`` or a list of
``FieldError`` (one per offending field), usable as a 400 body and as a dead-letter reason.
"""
from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

CHANNELS = ("online", "pos", "atm", "mobile", "transfer")
MERCHANT_CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "electronics",
    "fashion",
    "travel",
    "utilities",
    "airtime",
    "entertainment",
    "health",
    "cash",
    "transfer",
    "gambling",
    "crypto",
    "other",
)
# ISO 4217 active codes (the ones a bank in scope would plausibly see; extend as needed).
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL""".split()
)

# Identifiers become Table Storage keys: letters, digits and -_.:@ only.
ID_PATTERN = r"[A-Za-z0-9\-_.:@]{1,64}"
_ID_RE = re.compile(ID_PATTERN)
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
MAX_FUTURE = timedelta(minutes=5)
MIN_AMOUNT = 0.01
DEFAULT_MAX_AMOUNT = 1e9  # FRAUD_MAX_AMOUNT's default
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
ID_FIELDS = ("transaction_id", "customer_id")
OPTIONAL_ID_FIELDS = ("device_id", "merchant_id")
KNOWN_FIELDS = frozenset(
    (
        "transaction_id",
        "customer_id",
        "transaction_amount",
        "currency",
        "timestamp",
        "device_id",
        "merchant_id",
        "merchant_category",
        "channel",
        "country",
    )
)


@dataclass(frozen=True)
class FieldError:
    field: str
    problem: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


@dataclass(frozen=True)
class Transaction:
    transaction_id: str
    customer_id: str
    transaction_amount: float
    currency: str
    timestamp: datetime  # aware; keeps the sender's UTC offset (its local clock)
    device_id: str | None = None
    merchant_id: str | None = None
    merchant_category: str | None = None
    channel: str | None = None
    country: str | None = None

    @property
    def epoch_seconds(self) -> float:
        return self.timestamp.timestamp()

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["timestamp"] = self.timestamp.isoformat()
        return d


@dataclass(frozen=True)
class ValidationOutcome:
    transaction: Transaction | None
    errors: tuple[FieldError, ...]
    generated: tuple[str, ...] = ()  # fields the schema filled in (say so in responses)

    @property
    def ok(self) -> bool:
        return self.transaction is not None


def check_id(value: Any, field: str) -> tuple[str | None, FieldError | None]:
    if not isinstance(value, str):
        return None, FieldError(field, f"must be a string, got {type(value).__name__}")
    if not _ID_RE.fullmatch(value):
        if len(value) == 0 or len(value) > 64:
            return None, FieldError(field, f"must be 1-64 characters, got {len(value)}")
        bad = sorted({c for c in value if not _ID_RE.fullmatch(c)})
        shown = ", ".join(repr(c) for c in bad[:5])
        return None, FieldError(field, f"may contain only letters, digits and -_.:@; found {shown}")
    return value, None


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 with a UTC offset ('Z' accepted). Raises ValueError with a readable message."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 8601 string, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be ISO 8601, e.g. 2026-11-29T02:00:00+01:00") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must carry a UTC offset, e.g. +01:00 or Z")
    return parsed


def validate_transaction(
    raw: Any,
    *,
    now: datetime,
    default_currency: str = "NGN",
    max_amount: float = DEFAULT_MAX_AMOUNT,
    fill_missing: bool = False,
) -> ValidationOutcome:
    """Validate one transaction.

    ``now`` is the receive time (aware). With ``fill_missing`` (the HTTP path) a missing
    ``transaction_id`` is generated and a missing ``timestamp`` becomes ``now``; the
    outcome lists which fields were generated.
    """
    if not isinstance(raw, Mapping):
        return ValidationOutcome(None, (FieldError("$", f"must be a JSON object, got {type(raw).__name__}"),))
    errors: list[FieldError] = []
    generated: list[str] = []
    values: dict[str, Any] = {}

    for field in ID_FIELDS:
        if field not in raw or raw[field] is None:
            if field == "transaction_id" and fill_missing:
                values[field] = "gen-" + uuid.uuid4().hex
                generated.append(field)
            else:
                errors.append(FieldError(field, "is required"))
            continue
        value, err = check_id(raw[field], field)
        if err:
            errors.append(err)
        values[field] = value

    amount = raw.get("transaction_amount")
    if amount is None:
        errors.append(FieldError("transaction_amount", "is required"))
    elif isinstance(amount, bool) or not isinstance(amount, (int, float)):
        errors.append(FieldError("transaction_amount", f"must be a number, got {type(amount).__name__}"))
    elif isinstance(amount, int) and abs(amount) > max_amount:  # JSON integers may exceed float range
        errors.append(FieldError("transaction_amount", f"must be at most {max_amount:g}" if amount > 0
                                 else "must be greater than 0"))
    elif not math.isfinite(amount):
        errors.append(FieldError("transaction_amount", "must be a finite number"))
    elif amount <= 0:
        errors.append(FieldError("transaction_amount", "must be greater than 0"))
    elif amount < MIN_AMOUNT:  # a denormal amount would make every later ratio infinite
        errors.append(FieldError("transaction_amount", f"must be at least {MIN_AMOUNT}"))
    elif amount > max_amount:
        errors.append(FieldError("transaction_amount", f"must be at most {max_amount:g}"))
    else:
        values["transaction_amount"] = float(amount)

    currency = raw.get("currency")
    if currency is None:
        values["currency"] = default_currency
    elif not isinstance(currency, str) or not currency.isascii() or currency.upper() not in CURRENCIES:
        errors.append(FieldError("currency", "must be an ISO 4217 code such as NGN or USD"))
    else:
        values["currency"] = currency.upper()

    ts = raw.get("timestamp")
    if ts is None:
        if fill_missing:
            values["timestamp"] = now
            generated.append("timestamp")
        else:
            errors.append(FieldError("timestamp", "is required"))
    else:
        try:
            parsed = parse_timestamp(ts)
        except ValueError as exc:
            errors.append(FieldError("timestamp", str(exc)))
        else:
            if not EARLIEST <= parsed <= LATEST:  # also keeps every UTC conversion in range
                errors.append(FieldError("timestamp", f"must be between {EARLIEST:%Y-%m-%d} and now"))
            elif parsed - now > MAX_FUTURE:
                errors.append(FieldError("timestamp", "is more than 5 minutes in the future"))
            else:
                values["timestamp"] = parsed

    for field in OPTIONAL_ID_FIELDS:
        value = raw.get(field)
        if value is None:
            values[field] = None
            continue
        checked, err = check_id(value, field)
        if err:
            errors.append(err)
        values[field] = checked

    category = raw.get("merchant_category")
    if category is None:
        values["merchant_category"] = None
    elif not isinstance(category, str) or not 1 <= len(category) <= 64:
        errors.append(FieldError("merchant_category", "must be a string of 1-64 characters"))
    else:
        # Unknown categories are kept (banks add categories); the features map them to 'other'.
        values["merchant_category"] = category.strip().lower()

    channel = raw.get("channel")
    if channel is None:
        values["channel"] = None
    elif not isinstance(channel, str) or channel.lower() not in CHANNELS:
        errors.append(FieldError("channel", f"must be one of {', '.join(CHANNELS)}"))
    else:
        values["channel"] = channel.lower()

    country = raw.get("country")
    if country is None or country == "":
        values["country"] = None
    elif not isinstance(country, str) or not country.isascii() or not _COUNTRY_RE.fullmatch(country.upper()):
        errors.append(FieldError("country", "must be an ISO 3166 alpha-2 code such as NG"))
    else:
        values["country"] = country.upper()

    if errors:
        return ValidationOutcome(None, tuple(errors), tuple(generated))
    return ValidationOutcome(Transaction(**values), (), tuple(generated))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _any_case(words: tuple[str, ...]) -> str:
    """A pattern matching any of ``words`` in any case (JSON Schema has no case-insensitive enum)."""
    letters = ("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in w) for w in words)
    return "^(" + "|".join(letters) + ")$"


def transaction_json_schema(max_amount: float = DEFAULT_MAX_AMOUNT) -> dict[str, Any]:
    """The JSON Schema of what ``validate_transaction`` accepts, from the same constants: the
    HTTP contract (functions/openapi.json, written by ``python -m tools.openapi``) is derived
    from this, never written by hand."""
    def nullable(schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
        out = {"type": [schema.pop("type"), "null"], **schema}
        return {**out, "description": description} if description else out

    identifier = {"type": "string", "pattern": f"^{ID_PATTERN}$"}
    return {
        "type": "object",
        "required": [f for f in ID_FIELDS if f != "transaction_id"] + ["transaction_amount"],
        "properties": {
            "transaction_id": nullable(dict(identifier), "Generated when absent or null (the response says so)."),
            "customer_id": dict(identifier),
            "transaction_amount": {"type": "number", "maximum": int(max_amount) if float(max_amount).is_integer()
                                   else max_amount, "minimum": MIN_AMOUNT},
            "currency": nullable({"type": "string", "pattern": "^[A-Za-z]{3}$"},
                                 "ISO 4217, any case; FRAUD_DEFAULT_CURRENCY when absent or null."),
            "timestamp": nullable({"type": "string", "format": "date-time"},
                                  f"Event time, ISO 8601 with UTC offset, from {EARLIEST:%Y} to at most "
                                  f"{int(MAX_FUTURE.total_seconds() // 60)} minutes ahead; the receive time when absent or null."),
            **{f: nullable(dict(identifier)) for f in OPTIONAL_ID_FIELDS},
            "merchant_category": nullable({"type": "string", "minLength": 1, "maxLength": 64}),
            "channel": nullable({"type": "string", "pattern": _any_case(CHANNELS)}, f"One of {', '.join(CHANNELS)}, any case."),
            "country": nullable({"type": "string", "pattern": "^([A-Za-z]{2})?$"},
                                "ISO 3166 alpha-2, any case; empty or null when unknown."),
        },
        "example": {"customer_id": "C12345", "transaction_amount": 250000, "device_id": "new_device_99",
                    "merchant_category": "electronics", "channel": "online"},
        "description": "Optional fields may be absent or null (the same thing).",
    }
