"""The one feature engine: a per-customer behavioural profile and the features computed from it.

Training replays history through ``CustomerProfile`` in event-time order; serving loads the
same profile from Table Storage, computes the features and applies the transaction. Both
call ``transaction_features`` then ``CustomerProfile.apply``, so they cannot drift apart.

Why bucketed aggregates (not exponential decay)
-----------------------------------------------
Three rings of time buckets keyed by *event time*:

* 12 buckets of 5 minutes  -> count/sum over the last hour,
* 24 buckets of 1 hour     -> count/sum/mean/max over the last 24 hours,
* 30 buckets of 1 day      -> count/sum/mean/max over the last 7 and 30 days.

Each bucket holds (count, sum, sum of squares, max). An update touches one bucket per ring, and a query
reads at most 30 buckets, so the cost is O(1) whatever the length of the customer's
history, and the profile stays a few KB (one Table entity). Unlike decayed counters,
buckets give an exact maximum and counts a person can read ("8 transactions in the last
hour"), which the decision's reasons quote. An event that arrives late by less than a
ring's span lands in its own bucket; older than that, it only misses that ring.
Windows are exact to the bucket width: "last hour" means the current 5-minute bucket and
the 11 before it.

Devices, merchants, categories, channels and countries are kept as bounded
most-recently-used maps (the raw device and merchant ids are not stored in the profile).
A device is keyed by ``CustomerProfile.device_key`` of its id: the profile store sets that to
the keyed device pseudonym (``shared.domain.pseudonym``), so a stored profile holds no device
id nor an unkeyed hash of one; a profile replayed in memory only (training) keeps the
default short hash. Features only ever compare the keys, and a full map evicts the least
recently seen entry, ties going to the one seen first (not to a key's spelling), so the
features are the same whichever key function a profile uses.

Counters that only grow (``history_count``, ``device_age_days``) are capped
(``HISTORY_CAP``, ``DEVICE_AGE_CAP_DAYS``): past the cap they say nothing more about
fraud, and uncapped they drift by construction as time passes since training.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from shared.domain import json_text
from shared.domain.merchant_risk import LABEL_FEATURES, MERCHANT_FEATURES, NO_MERCHANT, MerchantRiskReplay, MerchantVisit
from shared.domain.transaction import CHANNELS, MERCHANT_CATEGORIES, Transaction

FEATURE_DEFINITION_VERSION = 3  # 2: merchant risk; 3: delay-shifted and label-free merchant risk, velocity, z-score

MINUTE = 60
HOUR = 3600
DAY = 86400

# (name, bucket width in seconds, number of buckets)
RINGS = (("m5", 5 * MINUTE, 12), ("h1", HOUR, 24), ("d1", DAY, 30))
MAX_DEVICES = 16
MAX_MERCHANTS = 64
MAX_CATEGORIES = 24
MAX_COUNTRIES = 8
MAX_CHANNELS = 8
HISTORY_CAP = 200
DEVICE_AGE_CAP_DAYS = 30.0
ZSCORE_CAP = 50.0
NIGHT_HOURS = frozenset(range(0, 6))
MISSING = -1.0  # feature value meaning "no history to compare with"

BASE_FEATURES = (
    "amount",
    "log_amount",
    "amount_to_mean_1d",
    "amount_to_mean_7d",
    "amount_to_mean_30d",
    "amount_to_max_1d",
    "amount_to_max_7d",
    "amount_to_max_30d",
    "count_5m",
    "count_10m",
    "count_1h",
    "sum_1h",
    "count_24h",
    "sum_24h",
    "count_7d",
    "sum_7d",
    "count_30d",
    "sum_30d",
    "amount_zscore_30d",
    "seconds_since_previous",
    "seconds_since_same_merchant",
    "distinct_merchants_1h",
    "distinct_merchants_24h",
    "is_round_amount",
    "hour_of_day",
    "is_night",
    "is_weekend",
    "hour_share",
    "is_new_device",
    "distinct_devices_30d",
    "device_age_days",
    "is_new_merchant",
    "is_new_category",
    "is_new_country",
    "is_new_channel",
    "history_count",
)
FEATURE_NAMES: tuple[str, ...] = (
    BASE_FEATURES
    + MERCHANT_FEATURES
    + tuple(f"channel_{c}" for c in CHANNELS)
    + tuple(f"category_{c}" for c in MERCHANT_CATEGORIES)
)
N_FEATURES = len(FEATURE_NAMES)
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# Optional input columns and the features that say nothing without them: a training set
# without the column records these as unavailable in the manifest (they would be constant).
FEATURE_INPUTS: dict[str, tuple[str, ...]] = {
    "device_id": ("is_new_device", "distinct_devices_30d", "device_age_days", "merchant_new_device_share_1h",
                  "merchant_new_device_share_24h", "merchant_new_device_share_30d"),
    "channel": ("is_new_channel", *(f"channel_{c}" for c in CHANNELS)),
    "merchant_category": ("is_new_category", *(f"category_{c}" for c in MERCHANT_CATEGORIES)),
    "country": ("is_new_country",),
    "merchant_id": ("is_new_merchant", "seconds_since_same_merchant", "distinct_merchants_1h",
                    "distinct_merchants_24h", *MERCHANT_FEATURES),
}

# Features drift monitoring reports and never alarms on, and why: those that grow with the
# time since a customer's (or the profile table's) first transaction whatever the
# population does, and the merchants' fraud figures, which follow the labels of a few
# fraud incidents (the fraud itself moves them; performance on matured labels judges that).
NOT_ALARMED: dict[str, str] = {
    "history_count": f"counts every transaction since the customer's first (capped at {HISTORY_CAP}): it grows "
                     "with the time since training whatever the customers do",
    "device_age_days": f"days since the device was first seen (capped at {DEVICE_AGE_CAP_DAYS:g}): it grows with "
                       "the time since training whatever the customers do",
    **{name: "a merchant's confirmed fraud: it moves with a handful of fraud incidents and the labels' arrival, "
             "not with the population; performance on matured labels judges the fraud itself"
       for name in LABEL_FEATURES},
}


def feature_index(name: str) -> int:
    return _INDEX[name]


def _schema_hash() -> str:
    definition = {
        "version": FEATURE_DEFINITION_VERSION,
        "features": FEATURE_NAMES,
        "rings": RINGS,
        "limits": [MAX_DEVICES, MAX_MERCHANTS, MAX_CATEGORIES, MAX_COUNTRIES, MAX_CHANNELS],
        "caps": [HISTORY_CAP, DEVICE_AGE_CAP_DAYS, ZSCORE_CAP],
        "night": sorted(NIGHT_HOURS),
        "missing": MISSING,
        "merchant_risk": "as-of-hour; label windows shifted by the model's delay; label-free 1h/24h/30d hourly stats",
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


# Changes whenever the feature list or its meaning changes; the model manifest carries it
# and serving refuses a model whose hash differs.
FEATURE_SCHEMA_HASH = _schema_hash()


def short_hash(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


@dataclass
class BucketRing:
    """A ring of ``size`` buckets of ``width`` seconds; slot i holds bucket id ids[i]."""

    width: int
    size: int
    ids: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    sums: list[float] = field(default_factory=list)
    maxes: list[float] = field(default_factory=list)
    squares: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.ids:
            self.ids = [-1] * self.size
            self.counts = [0] * self.size
            self.sums = [0.0] * self.size
            self.maxes = [0.0] * self.size
        if not self.squares:
            self.squares = [0.0] * self.size

    def add(self, t: float, amount: float) -> None:
        bucket = int(t // self.width)
        slot = bucket % self.size
        current = self.ids[slot]
        if current == bucket:
            self.counts[slot] += 1
            self.sums[slot] += amount
            self.squares[slot] += amount * amount
            if amount > self.maxes[slot]:
                self.maxes[slot] = amount
        elif current < bucket:  # the slot holds a bucket at least one ring span older
            self.ids[slot] = bucket
            self.counts[slot] = 1
            self.sums[slot] = amount
            self.squares[slot] = amount * amount
            self.maxes[slot] = amount
        # else: older than the ring's span; this ring does not see it

    def windows(self, t: float, spans: tuple[int, ...]) -> list[tuple[int, float, float, float]]:
        """(count, sum, max, sum of squares) for each span: the bucket holding t and the span-1
        before it. ``spans`` ascend; the buckets are visited newest first, each once, and each
        span's totals are the running totals when its oldest bucket has been added."""
        newest = int(t // self.width)
        ids, counts, sums, maxes, squares, size = self.ids, self.counts, self.sums, self.maxes, self.squares, self.size
        out: list[tuple[int, float, float, float]] = []
        count, total, top, total_squares = 0, 0.0, 0.0, 0.0
        age = 0
        for span in spans:
            if span < age:  # age is the span before's: the running totals already go further back
                raise ValueError(f"spans must ascend, got {spans}")
            while age < span:
                bucket = newest - age
                slot = bucket % size
                if ids[slot] == bucket and counts[slot]:
                    count += counts[slot]
                    total += sums[slot]
                    total_squares += squares[slot]
                    if maxes[slot] > top:
                        top = maxes[slot]
                age += 1
            out.append((count, total, top, total_squares))
        return out

    def to_state(self) -> list[list[Any]]:
        return [self.ids, self.counts, self.sums, self.maxes, self.squares]

    def copy(self) -> "BucketRing":
        return BucketRing(self.width, self.size, self.ids[:], self.counts[:], self.sums[:], self.maxes[:],
                          self.squares[:])

    @classmethod
    def from_state(cls, width: int, size: int, state: list[list[Any]]) -> "BucketRing":
        ids, counts, sums, maxes = state[:4]
        if len(state) > 4:
            squares = [float(q) for q in state[4]]
        else:  # a version-2 profile: no spread within a bucket was kept
            squares = [float(s) * float(s) / c if c else 0.0 for s, c in zip(sums, counts)]
        return cls(width, size, list(ids), list(counts), [float(s) for s in sums], [float(m) for m in maxes], squares)


def _touch(mru: dict[str, list[float]], key: str, t: float, limit: int) -> None:
    """Record key seen at t in a bounded map key -> [first_seen, last_seen]."""
    seen = mru.get(key)
    if seen is None:
        if len(mru) >= limit:  # the least recently seen goes; of equals, the first inserted (min keeps the first)
            oldest = min(mru, key=lambda k: mru[k][1])
            del mru[oldest]
        mru[key] = [t, t]
    elif t < seen[0] or t > seen[1]:
        # a new pair, never a change in place: a profile's copy shares the pairs (``copy``)
        mru[key] = [min(seen[0], t), max(seen[1], t)]


@dataclass
class CustomerProfile:
    """A customer's behavioural state, small enough for one Table Storage entity."""

    rings: dict[str, BucketRing] = field(default_factory=lambda: {n: BucketRing(w, s) for n, w, s in RINGS})
    history_count: int = 0
    last_seen: float | None = None  # latest event time applied
    hours: list[int] = field(default_factory=lambda: [0] * 24)  # local-hour histogram
    devices: dict[str, list[float]] = field(default_factory=dict)
    merchants: dict[str, list[float]] = field(default_factory=dict)
    categories: dict[str, list[float]] = field(default_factory=dict)
    countries: dict[str, list[float]] = field(default_factory=dict)
    channels: dict[str, list[float]] = field(default_factory=dict)
    # How a device id becomes its key in ``devices``: not stored, set by whoever loads the profile.
    device_key: Callable[[str], str] = field(default=short_hash, repr=False, compare=False)

    def apply(self, txn: Transaction) -> None:
        """Fold one transaction into the profile (O(1))."""
        t = txn.epoch_seconds
        amount = txn.transaction_amount
        for ring in self.rings.values():
            ring.add(t, amount)
        self.history_count += 1
        if self.last_seen is None or t > self.last_seen:
            self.last_seen = t
        self.hours[txn.timestamp.hour] += 1
        if txn.device_id:
            _touch(self.devices, self.device_key(txn.device_id), t, MAX_DEVICES)
        if txn.merchant_id:
            _touch(self.merchants, short_hash(txn.merchant_id), t, MAX_MERCHANTS)
        if txn.merchant_category:
            _touch(self.categories, txn.merchant_category, t, MAX_CATEGORIES)
        if txn.country:
            _touch(self.countries, txn.country, t, MAX_COUNTRIES)
        if txn.channel:
            _touch(self.channels, txn.channel, t, MAX_CHANNELS)

    def copy(self) -> "CustomerProfile":
        """An independent copy (what a cache hands out: the caller applies transactions to it).
        Several times cheaper than a round trip through ``to_json``/``from_json``. The seen-maps
        are new dicts sharing their [first, last] pairs, which ``_touch`` replaces and never
        changes in place, so neither profile can change the other's."""
        return CustomerProfile(rings={name: ring.copy() for name, ring in self.rings.items()},
                               history_count=self.history_count, last_seen=self.last_seen, hours=self.hours[:],
                               devices=dict(self.devices), merchants=dict(self.merchants),
                               categories=dict(self.categories), countries=dict(self.countries),
                               channels=dict(self.channels), device_key=self.device_key)

    # -- storage form -------------------------------------------------------------------
    def to_json(self) -> str:
        state = {
            "v": FEATURE_DEFINITION_VERSION,
            "rings": {name: ring.to_state() for name, ring in self.rings.items()},
            "n": self.history_count,
            "last": self.last_seen,
            "hours": self.hours,
            "dev": self.devices,
            "mer": self.merchants,
            "cat": self.categories,
            "cty": self.countries,
            "chn": self.channels,
        }
        return json_text.dumps(state)

    @classmethod
    def from_json(cls, text: str, device_key: Callable[[str], str] = short_hash) -> "CustomerProfile":
        state = json_text.loads(text)
        if state.get("v") not in (2, FEATURE_DEFINITION_VERSION):  # version 2 reads as 3 without channels
            raise ValueError(f"profile version {state.get('v')} is not {FEATURE_DEFINITION_VERSION}")
        rings = {n: BucketRing.from_state(w, s, state["rings"][n]) for n, w, s in RINGS}
        return cls(
            rings=rings,
            history_count=state["n"],
            last_seen=state["last"],
            hours=list(state["hours"]),
            devices=state["dev"],
            merchants=state["mer"],
            categories=state["cat"],
            countries=state["cty"],
            channels=state.get("chn", {}),
            device_key=device_key,
        )


def _ratio(amount: float, denominator: float, count: int) -> float:
    return amount / denominator if count > 0 and denominator > 0 else MISSING


def _zscore(amount: float, count: int, total: float, squares: float) -> float:
    """Amount against the customer's mean and spread (MISSING under two transactions)."""
    if count < 2:
        return MISSING
    mean = total / count
    variance = max(squares / count - mean * mean, 0.0)
    spread = max(math.sqrt(variance), 0.05 * mean, 1e-9)  # a customer who always pays the same
    return max(-ZSCORE_CAP, min(ZSCORE_CAP, (amount - mean) / spread))


def is_round_amount(amount: float) -> bool:
    """At most two significant digits and at least 100 (₦250,000, ₦5,000, $300)."""
    if amount < 100 or amount != math.floor(amount):
        return False
    unit = 10 ** (int(math.log10(amount)) - 1)
    return amount % unit == 0


def transaction_features(profile: CustomerProfile, txn: Transaction,
                         merchant_values: Sequence[float] = NO_MERCHANT) -> list[float]:
    """Features of ``txn`` against the profile *before* it is applied (event-time based).

    ``merchant_values`` are the merchant risk values at the transaction's time
    (``shared.domain.merchant_risk``), from the timer's table when serving, from the replay in training.
    """
    t = txn.epoch_seconds
    amount = txn.transaction_amount
    local = txn.timestamp
    m5, h1, d1 = profile.rings["m5"], profile.rings["h1"], profile.rings["d1"]
    (c5m, _, _, _), (c10m, _, _, _), (c1h, s1h, _, _) = m5.windows(t, (1, 2, 12))
    ((c24, s24, x24, _),) = h1.windows(t, (24,))
    (c7, s7, x7, _), (c30, s30, x30, q30) = d1.windows(t, (7, 30))

    hour = local.hour
    n = profile.history_count
    if n > 0:
        near = profile.hours[hour] + profile.hours[(hour - 1) % 24] + profile.hours[(hour + 1) % 24]
        hour_share = near / n
    else:
        hour_share = MISSING

    device_key = profile.device_key(txn.device_id) if txn.device_id else None
    device_seen = profile.devices.get(device_key) if device_key else None
    horizon = t - 30 * DAY
    distinct_devices = sum(1 for first, last in profile.devices.values() if last >= horizon)
    merchant_key = short_hash(txn.merchant_id) if txn.merchant_id else None
    merchant_seen = profile.merchants.get(merchant_key) if merchant_key else None
    merchants_1h = merchants_24h = 0
    for _, last in profile.merchants.values():
        if t - DAY <= last <= t:
            merchants_24h += 1
            if last >= t - HOUR:
                merchants_1h += 1
    category_new = bool(txn.merchant_category) and txn.merchant_category not in profile.categories
    country_new = bool(txn.country) and txn.country not in profile.countries
    channel_new = bool(txn.channel) and txn.channel not in profile.channels
    known = n > 0

    values = [
        amount,
        math.log1p(amount),
        _ratio(amount, s24 / c24 if c24 else 0.0, c24),
        _ratio(amount, s7 / c7 if c7 else 0.0, c7),
        _ratio(amount, s30 / c30 if c30 else 0.0, c30),
        _ratio(amount, x24, c24),
        _ratio(amount, x7, c7),
        _ratio(amount, x30, c30),
        float(c5m),
        float(c10m),
        float(c1h),
        s1h,
        float(c24),
        s24,
        float(c7),
        s7,
        float(c30),
        s30,
        _zscore(amount, c30, s30, q30),
        max(0.0, t - profile.last_seen) if profile.last_seen is not None else MISSING,
        max(0.0, t - merchant_seen[1]) if merchant_seen is not None else MISSING,
        float(merchants_1h),
        float(merchants_24h),
        1.0 if is_round_amount(amount) else 0.0,
        float(hour),
        1.0 if hour in NIGHT_HOURS else 0.0,
        1.0 if local.weekday() >= 5 else 0.0,
        hour_share,
        1.0 if device_key is not None and device_seen is None and known else 0.0,
        float(distinct_devices),
        min(max(0.0, (t - device_seen[0]) / DAY), DEVICE_AGE_CAP_DAYS) if device_seen is not None else 0.0,
        1.0 if merchant_key is not None and merchant_seen is None and known else 0.0,
        1.0 if category_new and known else 0.0,
        1.0 if country_new and known else 0.0,
        1.0 if channel_new and known else 0.0,
        float(min(n, HISTORY_CAP)),
    ]
    values.extend(merchant_values)
    values.extend(1.0 if txn.channel == c else 0.0 for c in CHANNELS)
    category = txn.merchant_category if txn.merchant_category in MERCHANT_CATEGORIES else "other"
    if txn.merchant_category is None:
        category = None
    values.extend(1.0 if category == c else 0.0 for c in MERCHANT_CATEGORIES)
    return values


_AMOUNT = FEATURE_NAMES.index("amount")
_NEW_DEVICE = FEATURE_NAMES.index("is_new_device")
_NEW_MERCHANT = FEATURE_NAMES.index("is_new_merchant")
_HISTORY = FEATURE_NAMES.index("history_count")


def merchant_visit(values: Sequence[float]) -> MerchantVisit:
    """What a scored transaction adds to its merchant's label-free signals, read from its
    feature vector as served (float32), so the timer's recount from the audit log and
    training's replay see the same numbers."""
    return MerchantVisit(
        amount=float(values[_AMOUNT]),
        new_device=values[_NEW_DEVICE] > 0.5,
        first_visit=values[_NEW_MERCHANT] > 0.5 or values[_HISTORY] == 0,
    )


def features_then_record(profile: CustomerProfile, txn: Transaction,
                    merchant_values: Sequence[float] = NO_MERCHANT) -> list[float]:
    """The step training and serving share: features before the transaction, then apply it."""
    values = transaction_features(profile, txn, merchant_values)
    profile.apply(txn)
    return values


def replay(transactions: Iterable[Transaction], progress: Any = None,
           merchants: MerchantRiskReplay | None = None) -> np.ndarray:
    """Feature matrix (float32) for transactions replayed in the given (event-time) order.

    Each customer's profile is built from their earlier transactions only, exactly as
    serving would have it; each merchant's history from the visits before the
    transaction's hour, exactly as the timer would have stored it.
    ``progress(done)`` is called every 10,000 rows.
    """
    profiles: dict[str, CustomerProfile] = {}
    items = transactions if isinstance(transactions, Sequence) else list(transactions)
    # Filled row by row: a list of Python float lists would cost ~10x the float32 matrix.
    matrix = np.empty((len(items), N_FEATURES), dtype=np.float32)
    for i, txn in enumerate(items):
        profile = profiles.get(txn.customer_id)
        if profile is None:
            profile = profiles[txn.customer_id] = CustomerProfile()
        if merchants is None:
            matrix[i] = features_then_record(profile, txn, NO_MERCHANT)
        else:
            matrix[i] = features_then_record(profile, txn, merchants.values(txn.merchant_id, txn.epoch_seconds))
            merchants.add_visit(txn.merchant_id, txn.epoch_seconds, merchant_visit(matrix[i]))
        if progress is not None and i % 10_000 == 0:
            progress(i)
    return matrix


def as_matrix(rows: Sequence[Sequence[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), N_FEATURES)
