"""Synthetic labelled bank transactions (Nigeria, amounts in Naira) for training and tests.

    python -m training.simulate --customers 2000 --days 60 --out data/transactions.csv
    python -m training.simulate --transactions 1000000 --days 90 --out /tmp/sim/tx.csv \\
        --jsonl-out /tmp/sim/tx.jsonl --seed 7 --fraud-rate 0.01

The model of behaviour
----------------------
*Merchants* form one population shared by all customers (ids ``M000123``). Each has a
category (``shared.domain.transaction.MERCHANT_CATEGORIES``) and a popularity (Zipf-like, so a few
chains and ATM networks carry much of the traffic; everyday categories such as grocery,
airtime, cash and transfers are busier than travel or crypto). Categories fix how people pay there
(fuel: POS; cash: ATM or a POS agent; transfer: transfer or mobile app; ...) and how much
a purchase costs relative to the customer's usual spend (airtime is cheap, travel dear).

*Customers* (ids ``C000123``) each draw their own:

* spending level: a lognormal median amount (roughly ₦2,000 to ₦80,000 across
  customers) and their own spread around it;
* activity: a daily transaction rate (from ~0.3 to ~10 a day, median ~1.6);
* daily rhythm: one or two preferred times of day on top of a city-wide curve with few
  transactions between 00:00 and 05:00 local time (a few night owls are less quiet);
* weekly rhythm: a weekend factor (more or less active on Saturday/Sunday, a bit later
  in the day), plus a month-end payday lift shared by everyone;
* 1-3 home devices (one dominant); 20% replace their main phone once in the period (a
  legitimate "new device"); 15% start using a laptop/tablet at some point, for half of
  their online payments and transfers from then on; half pay online from a browser for
  30-90% of their online payments, and the browser's device id changes every 2-21 days
  (cookies cleared, private windows), so many legitimate online payments come from a
  device seen rarely or never before;
* 4-20 usual merchants (hence usual categories); 8-35% of their purchases (60% while
  travelling) are at merchants outside that set, half of them popular ones and half
  picked uniformly within the category (small shops, private transfer payees), so a
  meaningful share of legitimate rows is at a merchant or payee new to the customer;
* channel preferences (app people, card people, cash people);
* home country NG; 8% take one trip abroad (most of their spending there is abroad) and
  15% one trip to another city, 3-10 days each, mostly at new merchants;
* 8% are night owls (3x the city's night-time activity), so some new-merchant
  purchases happen at night;
* 4% make one big purchase in the period: 5-20x their usual amount at an electronics,
  travel or fashion merchant, at their usual time of day.

Legitimate traffic is a Poisson count per customer per day (rate x weekday/weekend x
payday), each transaction getting an hour from the customer's rhythm, a merchant, a
channel, a device, an amount and a country, all drawn vectorised with numpy.

*Fraud* is injected on top; the row budget is ``fraud_rate`` of the output (true fraud
rows / all rows), split between scenarios by ``scenario_shares``. Each fraud row belongs
to an *incident* (one attack on one victim) and carries its true scenario:

* ``account_takeover``: someone else is in the account and moves 1-3 transfers/online
  payments within minutes, each several times the customer's usual amount (like
  ₦250,000). 65% (per incident) come from a device never seen before (SIM swap, stolen
  credentials), 60% of those at 01:00-05:00 and the rest at any hour; 35% happen by
  remote access on the victim's own phone, at the victim's usual times of day.
* ``authorised_push_payment``: a social-engineering or remote-access scam: the customer
  is talked into paying. Their own (main) phone, their own usual time of day, channel
  transfer or mobile, home country, a payee they never paid (a merchant of category
  transfer, 75%, or crypto), 1-3 transfers 3-60 minutes apart (60% of incidents all to
  one "safe account"), each 2-10x the usual amount.
* ``card_testing``: a stolen card number is checked with a burst of 5-20 small
  amounts (₦50-₦500) seconds apart, online, at 1-3 merchants (usually new to the customer), from a
  device the customer never used (card-not-present fraud has no device of the customer
  at all; the browser ids above make the device flag weak on its own).
* ``compromised_merchant``: a few busy merchants are breached (skimmed terminals) for
  several days; a share (20-40%) of their traffic in that window is fraud on their
  ordinary customers, with their normal devices, hours and channels and amounts drawn
  like the customer's own (the victim's usual amount distribution at that category).
  The signal is the merchant: many victims at one merchant within days. Each victim's
  rows are one incident.
* ``spending_spree``: a stolen card is used for 1-4 days, several times a day (more
  than the customer's usual rate), for 2.5-8x the usual amount at electronics, fashion,
  travel, gambling and crypto merchants, from a device the customer never used.

Merchants of fraud are picked like those of legitimate exploration: half by
popularity within the category, half uniformly. "Usual amount" is the median of the
customer's generated legitimate amounts. Fraud starts after a short warm-up
(min(7, days // 5) days) so profiles have some history.

*Labels* are what the bank learns, late and imperfectly:

* ``report_rate`` (default 0.85) of the incidents are ever reported, each whole (all its
  rows) or not at all; unreported fraud keeps ``is_fraud`` 0;
* a reported incident is learned a delay after its last transaction: lognormal with
  median 5 days (sigma 1.4); card testing median 1 day (sigma 1.2); 20% of incidents are
  caught by the bank's analysts, median 4 hours (sigma 1.0); all clipped to [2 hours,
  60 days] (so a label may be learned after the simulated period);
* ``false_report_rate`` (default 0.0005) of legitimate rows are reported as fraud
  (friendly fraud, mistaken disputes), learned after the same 5-day-median delay.

Columns: ``is_fraud`` is the label the bank ends up with (1 for reported fraud and for
false reports); ``fraud_scenario`` the true scenario of every true fraud row, reported
or not ('' for legitimate rows, falsely reported ones included); ``fraud_incident`` the
incident number of true fraud rows ('' otherwise); ``labelled_at`` when the bank learned
the label ('' when never).

Times are generated as integer UTC epoch seconds and written in Nigerian local time
(WAT, UTC+01:00, no daylight saving): ``2026-03-04T14:05:09+01:00``. All randomness
comes from ``numpy.random.default_rng(seed)``: same arguments and seed give
byte-identical files.

Python API
----------
``generate(SimulationConfig(...)) -> Transactions``; ``Transactions`` holds one numpy
array per output column (see its docstring), sorted by time. ``write_csv`` and
``write_jsonl`` write it; ``main(argv)`` is the command line.
"""
from __future__ import annotations

import argparse
import csv
import math
import re
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from shared.domain.transaction import CHANNELS, MERCHANT_CATEGORIES

# --------------------------------------------------------------------------- constants

MINUTE, HOUR, DAY = 60, 3600, 86400
UTC_OFFSET = "+01:00"  # West Africa Time, no daylight saving
UTC_OFFSET_SECONDS = HOUR
CURRENCY = "NGN"
HOME_COUNTRY = "NG"
FOREIGN_COUNTRIES = ("GH", "GB", "US", "AE", "ZA", "KE", "CN", "FR", "BJ", "CA")
_FOREIGN_WEIGHTS = np.array([0.20, 0.20, 0.15, 0.15, 0.10, 0.05, 0.05, 0.04, 0.03, 0.03])
COUNTRIES = (HOME_COUNTRY, *FOREIGN_COUNTRIES)  # country code 0 is home

SCENARIOS = ("account_takeover", "card_testing", "compromised_merchant", "spending_spree", "authorised_push_payment")
SCENARIO_LABELS = ("", *SCENARIOS)  # scenario code 0 = legitimate
DEFAULT_SCENARIO_SHARES = {
    "account_takeover": 0.20,
    "card_testing": 0.20,
    "compromised_merchant": 0.15,
    "spending_spree": 0.20,
    "authorised_push_payment": 0.25,
}
COLUMNS = (
    "transaction_id", "customer_id", "timestamp", "transaction_amount", "currency", "device_id",
    "merchant_id", "merchant_category", "channel", "country", "is_fraud", "fraud_scenario",
    "fraud_incident", "labelled_at",
)

# Population knobs (documented in the module docstring).
SPEND_MEDIAN, SPEND_SIGMA, SPEND_RANGE = 12_000.0, 1.0, (1_000.0, 250_000.0)
RATE_MEDIAN, RATE_SIGMA, RATE_RANGE = 1.6, 0.85, (0.25, 10.0)
PAYDAY_BOOST = 1.25  # days 25..2 of the month
DEVICE_UPGRADE_SHARE = 0.20  # replace their main phone once in the period
SECOND_DEVICE_SHARE = 0.15  # start using a laptop/tablet for online payments and transfers
BROWSER_USER_SHARE = 0.5  # pay online from a browser whose device id changes (cookies cleared)
BROWSER_LIFETIME_DAYS = (2, 21)  # how long one browser id lasts, per customer
TRAVELLER_SHARE = 0.08  # one trip abroad
DOMESTIC_TRAVEL_SHARE = 0.15  # one trip to another Nigerian city
TRAVEL_EXPLORE = 0.6  # share of purchases at new merchants while travelling
EXPLORE_RANGE = (0.08, 0.35)  # per customer: share of purchases at merchants outside the usual set
LONG_TAIL_SHARE = 0.5  # of those, picked uniformly in the category (small shops, private payees)
NIGHT_OWL_SHARE = 0.08
BIG_PURCHASE_SHARE = 0.04  # one purchase of 5-20x the usual amount in the period
BIG_PURCHASE_RANGE = (5.0, 20.0)
BIG_PURCHASE_CATEGORIES = {"electronics": 0.45, "travel": 0.30, "fashion": 0.25}
ATO_OWN_DEVICE_SHARE = 0.35  # takeovers by remote access on the victim's own device
# Reporting: which incidents the bank learns about, and when.
REPORT_RATE, FALSE_REPORT_RATE = 0.85, 0.0005
ANALYST_CAUGHT_SHARE = 0.2  # of reported incidents: caught by the bank's own analysts, fast
REPORT_DELAY_MEDIAN_DAYS, REPORT_DELAY_SIGMA = 5.0, 1.4
CARD_TESTING_DELAY_MEDIAN_DAYS, CARD_TESTING_DELAY_SIGMA = 1.0, 1.2
ANALYST_DELAY_MEDIAN_HOURS, ANALYST_DELAY_SIGMA = 4.0, 1.0
REPORT_DELAY_RANGE = (2 * 3600, 60 * 86400)
MAX_USUAL_MERCHANTS = 20
MIN_AMOUNT, MAX_AMOUNT = 50.0, 50_000_000.0

# City-wide activity by local hour (00..23): quiet 00:00-05:00, busy noon and evening.
_BASE_HOURLY = np.array([
    0.15, 0.08, 0.05, 0.04, 0.05, 0.12, 0.35, 0.70, 1.00, 1.10, 1.15, 1.20,
    1.30, 1.25, 1.15, 1.10, 1.10, 1.20, 1.30, 1.30, 1.15, 0.90, 0.60, 0.35,
])

# category: (share of merchants, traffic weight of a merchant, amount multiplier, channel weights)
_CATEGORY_PROFILES: dict[str, tuple[float, float, float, dict[str, float]]] = {
    "grocery": (0.16, 1.5, 0.7, {"pos": 0.70, "online": 0.15, "mobile": 0.15}),
    "restaurant": (0.10, 1.0, 0.6, {"pos": 0.75, "online": 0.10, "mobile": 0.15}),
    "fuel": (0.08, 1.2, 0.9, {"pos": 0.90, "mobile": 0.10}),
    "electronics": (0.04, 0.4, 2.5, {"pos": 0.45, "online": 0.45, "mobile": 0.10}),
    "fashion": (0.06, 0.5, 1.4, {"pos": 0.55, "online": 0.35, "mobile": 0.10}),
    "travel": (0.02, 0.25, 3.0, {"online": 0.60, "mobile": 0.20, "pos": 0.20}),
    "utilities": (0.05, 0.8, 1.2, {"online": 0.30, "mobile": 0.50, "transfer": 0.20}),
    "airtime": (0.10, 1.5, 0.25, {"mobile": 0.75, "online": 0.15, "pos": 0.10}),
    "entertainment": (0.04, 0.6, 0.7, {"online": 0.50, "pos": 0.30, "mobile": 0.20}),
    "health": (0.04, 0.6, 1.0, {"pos": 0.70, "online": 0.10, "mobile": 0.20}),
    "cash": (0.08, 1.5, 1.3, {"atm": 0.85, "pos": 0.15}),  # ATMs and POS cash-out agents
    "transfer": (0.15, 1.5, 1.6, {"transfer": 0.60, "mobile": 0.40}),
    "gambling": (0.03, 0.6, 0.4, {"online": 0.50, "mobile": 0.50}),
    "crypto": (0.01, 0.3, 1.8, {"online": 0.40, "transfer": 0.40, "mobile": 0.20}),
    "other": (0.04, 0.5, 1.0, {"pos": 0.40, "online": 0.30, "mobile": 0.20, "transfer": 0.10}),
}
_UNKNOWN_CATEGORY = (0.03, 0.5, 1.0, {"pos": 0.4, "online": 0.3, "mobile": 0.2, "transfer": 0.1})

N_CATEGORIES, N_CHANNELS = len(MERCHANT_CATEGORIES), len(CHANNELS)
_CATEGORY_SHARE = np.array([_CATEGORY_PROFILES.get(c, _UNKNOWN_CATEGORY)[0] for c in MERCHANT_CATEGORIES])
_CATEGORY_SHARE /= _CATEGORY_SHARE.sum()
_CATEGORY_TRAFFIC = np.array([_CATEGORY_PROFILES.get(c, _UNKNOWN_CATEGORY)[1] for c in MERCHANT_CATEGORIES])
_AMOUNT_MULTIPLIER = np.array([_CATEGORY_PROFILES.get(c, _UNKNOWN_CATEGORY)[2] for c in MERCHANT_CATEGORIES])
_CHANNEL_WEIGHTS = np.array(
    [[_CATEGORY_PROFILES.get(c, _UNKNOWN_CATEGORY)[3].get(ch, 0.0) for ch in CHANNELS] for c in MERCHANT_CATEGORIES]
)
_CHANNEL_WEIGHTS[_CHANNEL_WEIGHTS.sum(axis=1) == 0] = 1.0  # a category with no known channel: any


def _code(table: Sequence[str], name: str) -> int:
    return table.index(name) if name in table else -1


def _codes(table: Sequence[str], weighted: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Codes and normalised weights of the names present in ``table`` (schema may evolve)."""
    pairs = [(table.index(k), w) for k, w in weighted.items() if k in table]
    if not pairs:  # none of the preferred names exist: anything in the table
        pairs = [(i, 1.0) for i in range(len(table))]
    codes, weights = zip(*pairs)
    return np.array(codes), np.array(weights) / sum(weights)


CH_ATM, CH_TRANSFER = _code(CHANNELS, "atm"), _code(CHANNELS, "transfer")
CAT_AIRTIME = _code(MERCHANT_CATEGORIES, "airtime")

# Written unquoted into JSON lines: the fixed vocabularies must not need escaping.
_PLAIN = re.compile(r"[A-Za-z0-9 _\-.:@+/]*")
assert all(_PLAIN.fullmatch(v) for v in (*CHANNELS, *MERCHANT_CATEGORIES, *COUNTRIES, *SCENARIO_LABELS))


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class SimulationConfig:
    """The knobs of one simulation. ``merchants=None`` scales the merchant population
    with the customers (customers // 4, at least 40)."""

    customers: int = 1000
    days: int = 30
    start: date | str = "2026-01-01"
    seed: int = 0
    fraud_rate: float = 0.01
    merchants: int | None = None
    scenario_shares: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SCENARIO_SHARES))
    report_rate: float = REPORT_RATE  # share of fraud incidents the bank ever learns about
    false_report_rate: float = FALSE_REPORT_RATE  # share of legitimate rows reported as fraud

    @property
    def start_date(self) -> date:
        return self.start if isinstance(self.start, date) else date.fromisoformat(str(self.start))

    @property
    def merchant_count(self) -> int:
        count = self.merchants if self.merchants is not None else max(40, self.customers // 4)
        return max(int(count), N_CATEGORIES)  # at least one merchant per category

    def validate(self) -> None:
        if self.customers < 1:
            raise ValueError("customers must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not 0.0 <= self.fraud_rate < 0.5:
            raise ValueError("fraud_rate must be in [0, 0.5)")
        unknown = set(self.scenario_shares) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown fraud scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
        if any(v < 0 for v in self.scenario_shares.values()) or sum(self.scenario_shares.values()) <= 0:
            raise ValueError("scenario_shares must be non-negative and not all zero")
        if not 0.0 <= self.report_rate <= 1.0:
            raise ValueError("report_rate must be in [0, 1]")
        if not 0.0 <= self.false_report_rate < 0.5:
            raise ValueError("false_report_rate must be in [0, 0.5)")
        self.start_date  # noqa: B018 - raises on a malformed date

    @classmethod
    def for_transactions(cls, transactions: int, days: int = 30, **kwargs: Any) -> "SimulationConfig":
        """A config whose output has roughly ``transactions`` rows over ``days`` days."""
        probe = cls(days=days, **kwargs)
        per_customer = _expected_daily_rate() * float(_payday_factors(probe.start_date, days).sum())
        legit_rows = transactions * (1.0 - probe.fraud_rate)
        return cls(customers=max(1, round(legit_rows / per_customer)), days=days, **kwargs)


@dataclass
class Transactions:
    """Generated transactions, one numpy array per column, all of the same length, sorted
    by time (ties: customer, then generation order).

    String columns (``transaction_id``, ``customer_id``, ``timestamp``, ``currency``,
    ``device_id``, ``merchant_id``, ``merchant_category``, ``channel``, ``country``,
    ``fraud_scenario``, ``fraud_incident``, ``labelled_at``) are numpy unicode arrays;
    ``transaction_amount`` is float64 rounded to 2 decimals; ``is_fraud`` is int8 (0/1).

    Labels are what the bank ends up knowing; the truth is kept beside them:

    * ``is_fraud``: 1 for reported fraud and for false reports of legitimate rows, 0 for
      unreported fraud and other legitimate rows;
    * ``fraud_scenario``: the true scenario of every true fraud row, reported or not; ''
      for legitimate rows (falsely reported ones included);
    * ``fraud_incident``: the incident number of true fraud rows, '' otherwise;
    * ``labelled_at``: when the bank learned the label (ISO-8601, +01:00), '' when never.

    Extras not written to files: ``epoch_seconds`` (int64 UTC), ``incident`` (int64, the
    fraud incident a row belongs to, -1 for legitimate rows), ``labelled_epoch`` (int64 UTC
    of ``labelled_at``, -1 when none) and ``customers`` (how many customers were simulated).
    """

    transaction_id: np.ndarray
    customer_id: np.ndarray
    timestamp: np.ndarray
    transaction_amount: np.ndarray
    currency: np.ndarray
    device_id: np.ndarray
    merchant_id: np.ndarray
    merchant_category: np.ndarray
    channel: np.ndarray
    country: np.ndarray
    is_fraud: np.ndarray
    fraud_scenario: np.ndarray
    fraud_incident: np.ndarray
    labelled_at: np.ndarray
    epoch_seconds: np.ndarray
    incident: np.ndarray
    labelled_epoch: np.ndarray
    customers: int = 0

    def __len__(self) -> int:
        return len(self.transaction_id)

    def columns(self) -> dict[str, np.ndarray]:
        """The output columns, in file order."""
        return {name: getattr(self, name) for name in COLUMNS}

    def rows(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts (amount float, is_fraud int), e.g. for ``validate_transaction``."""
        cols = [getattr(self, name).tolist() for name in COLUMNS]
        for values in zip(*cols):
            yield dict(zip(COLUMNS, values))

    @property
    def true_fraud(self) -> np.ndarray:
        """Rows that are fraud in truth (reported or not)."""
        return self.incident >= 0

    @property
    def fraud_rate(self) -> float:
        """True fraud rows / all rows (what ``SimulationConfig.fraud_rate`` asks for)."""
        return float(self.true_fraud.mean()) if len(self) else 0.0

    def scenario_counts(self) -> dict[str, int]:
        return {name: int(np.count_nonzero(self.fraud_scenario == name)) for name in SCENARIOS}

    def label_counts(self) -> dict[str, int]:
        """Incidents, reported incidents, labelled rows and false reports."""
        true = self.true_fraud
        incidents = np.unique(self.incident[true])
        reported = np.unique(self.incident[true & (self.is_fraud == 1)])
        return {"incidents": len(incidents), "reported_incidents": len(reported),
                "labelled_rows": int(self.is_fraud.sum()), "false_reports": int(np.count_nonzero(~true & (self.is_fraud == 1)))}

    def summary(self, seconds: float | None = None) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.scenario_counts().items())
        labels = " ".join(f"{k}={v}" for k, v in self.label_counts().items())
        took = f" seconds={seconds:.2f}" if seconds is not None else ""
        return (f"rows={len(self)} customers={self.customers} fraud_rows={int(self.true_fraud.sum())} "
                f"fraud_rate={self.fraud_rate:.4%} {counts} {labels}{took}")


def generate(config: SimulationConfig) -> Transactions:
    """Simulate customers, their legitimate traffic and the injected fraud."""
    config.validate()
    population_rng, legit_rng, fraud_rng, id_rng, label_rng = np.random.default_rng(config.seed).spawn(5)
    world = _build_world(config, population_rng)
    legit = _legitimate_transactions(world, legit_rng)
    fraud = _fraud_transactions(world, legit, config, fraud_rng)
    batch = _Batch.concat([legit, *fraud])
    _report(batch, config, label_rng)
    return _assemble(world, batch, id_rng)


def write_csv(result: Transactions, path: str | Path, chunk_rows: int = 200_000) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for start in range(0, len(result), chunk_rows):
            writer.writerows(zip(*_text_columns(result, start, start + chunk_rows)))
    return path


_JSONL_TEMPLATE = (
    '{"transaction_id":"%s","customer_id":"%s","timestamp":"%s","transaction_amount":%s,"currency":"%s",'
    '"device_id":"%s","merchant_id":"%s","merchant_category":"%s","channel":"%s","country":"%s",'
    '"is_fraud":%s,"fraud_scenario":"%s","fraud_incident":%s,"labelled_at":%s}\n'
)


def write_jsonl(result: Transactions, path: str | Path, chunk_rows: int = 200_000) -> Path:
    """JSON lines with the CSV's fields; amount is a number (2 decimals), is_fraud and
    fraud_incident ints, and an empty fraud_incident or labelled_at is null. Every string
    value is an id of plain characters or from a fixed vocabulary, so it is written without
    escaping."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    incident_at, labelled_at = COLUMNS.index("fraud_incident"), COLUMNS.index("labelled_at")
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, len(result), chunk_rows):
            cols = _text_columns(result, start, start + chunk_rows)
            cols[incident_at] = [v or "null" for v in cols[incident_at]]
            cols[labelled_at] = [f'"{v}"' if v else "null" for v in cols[labelled_at]]
            rows = zip(*cols)
            handle.write("".join(_JSONL_TEMPLATE % row for row in rows))
    return path


# --------------------------------------------------------------------------- helpers


def _text_columns(result: Transactions, start: int, stop: int) -> list[list[str]]:
    cols: list[list[str]] = []
    for name in COLUMNS:
        values = getattr(result, name)[start:stop]
        if name == "transaction_amount":
            cols.append(["%.2f" % v for v in values.tolist()])
        elif name == "is_fraud":
            cols.append(np.where(values != 0, "1", "0").tolist())
        else:
            cols.append(values.tolist())
    return cols


def _lognormal_clipped(
    rng: np.random.Generator, median: float, sigma: float, bounds: tuple[float, float], n: int
) -> np.ndarray:
    return np.clip(median * np.exp(rng.normal(0.0, sigma, n)), *bounds)


def _expected_daily_rate() -> float:
    """Mean of the clipped lognormal daily rate (closed form), for ``--transactions``."""
    mu, s = math.log(RATE_MEDIAN), RATE_SIGMA
    lo, hi = RATE_RANGE
    phi = lambda z: 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))  # noqa: E731
    a, b = (math.log(lo) - mu) / s, (math.log(hi) - mu) / s
    inside = math.exp(mu + s * s / 2.0) * (phi(b - s) - phi(a - s))
    return lo * phi(a) + hi * (1.0 - phi(b)) + inside


def _payday_factors(start: date, days: int) -> np.ndarray:
    dates = np.datetime64(start, "D") + np.arange(days)
    day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    return np.where((day_of_month >= 25) | (day_of_month <= 2), PAYDAY_BOOST, 1.0)


def _normalised_cdf(weights: np.ndarray) -> np.ndarray:
    """Row-wise CDFs ending exactly at 1 (weights: (rows, k), non-negative)."""
    cdf = np.cumsum(weights, axis=-1)
    cdf /= cdf[..., -1:]
    cdf[..., -1] = 1.0
    return cdf


def _sample_rows(cdf_rows: np.ndarray, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each ``row[i]``, an index drawn from the categorical whose CDF is ``cdf_rows[row[i]]``.

    One searchsorted over all rows: row r's CDF is shifted by r, so r + u falls in row r.
    """
    k = cdf_rows.shape[1]
    shifted = (cdf_rows + np.arange(len(cdf_rows))[:, None]).ravel()
    position = np.searchsorted(shifted, row + rng.random(len(row)), side="right")
    return np.minimum(position - row * k, k - 1)


def _sample_weighted(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of a (n, k) weight matrix."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((cum <= u[:, None]).sum(axis=1), weights.shape[1] - 1)


def _choice(rng: np.random.Generator, codes: np.ndarray, probs: np.ndarray, n: int) -> np.ndarray:
    return codes[np.searchsorted(np.cumsum(probs), rng.random(n) * probs.sum(), side="right").clip(0, len(codes) - 1)]


def _expand(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row -> (incident index, position within the incident) for incidents of ``sizes`` rows."""
    incident = np.repeat(np.arange(len(sizes)), sizes)
    first = np.cumsum(sizes) - sizes
    return incident, np.arange(int(sizes.sum())) - first[incident]


def _cumsum_within(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting at each incident."""
    total = np.cumsum(values)
    first = np.cumsum(sizes) - sizes
    return total - np.repeat(total[first] - values[first], sizes)


def _cut_to_budget(sizes: np.ndarray, budget: int, minimum: int) -> np.ndarray:
    """The leading incidents adding up to ``budget`` rows: the last ones are trimmed, none
    below ``minimum`` rows (so a budget below ``minimum`` is exceeded by one incident)."""
    if budget <= 0:
        return sizes[:0]
    k = min(int(np.searchsorted(np.cumsum(sizes), budget)) + 1, len(sizes))
    sizes = sizes[:k].copy()
    excess = int(sizes.sum()) - budget
    for i in range(k - 1, -1, -1):
        if excess <= 0:
            break
        cut = min(excess, int(sizes[i]) - minimum)
        if cut > 0:
            sizes[i] -= cut
            excess -= cut
    return sizes


def _round_amounts(
    amount: np.ndarray, channel: np.ndarray, category: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Naira amounts as people see them: ATM cash in ₦500 notes, many transfers and airtime
    top-ups in round hundreds, card payments to the kobo."""
    amount = np.round(np.clip(amount, MIN_AMOUNT, MAX_AMOUNT), 2)
    atm = channel == CH_ATM
    amount[atm] = np.maximum(np.round(amount[atm] / 500.0) * 500.0, 500.0)
    round_hundred = ((channel == CH_TRANSFER) | (category == CAT_AIRTIME)) & (rng.random(len(amount)) < 0.6)
    amount[round_hundred] = np.maximum(np.round(amount[round_hundred] / 100.0) * 100.0, 100.0)
    return amount


# --------------------------------------------------------------------------- the world


@dataclass
class _Batch:
    """Transactions as integer codes (internal); ``time`` is UTC epoch seconds."""

    customer: np.ndarray
    time: np.ndarray
    amount: np.ndarray
    device: np.ndarray
    merchant: np.ndarray
    channel: np.ndarray
    country: np.ndarray
    scenario: np.ndarray
    incident: np.ndarray
    label_time: np.ndarray  # when the bank learns the row is fraud (UTC epoch); -1: never

    def __len__(self) -> int:
        return len(self.customer)

    @classmethod
    def make(cls, scenario: str, incident: np.ndarray | int = -1, **columns: np.ndarray) -> "_Batch":
        n = len(columns["customer"])
        code = SCENARIO_LABELS.index(scenario)
        columns.setdefault("country", np.zeros(n, dtype=np.int64))
        return cls(**{k: np.asarray(v, dtype=np.float64 if k == "amount" else np.int64) for k, v in columns.items()},
                   scenario=np.full(n, code, dtype=np.int64),
                   incident=np.broadcast_to(np.asarray(incident, dtype=np.int64), (n,)).copy(),
                   label_time=np.full(n, -1, dtype=np.int64))

    @classmethod
    def concat(cls, batches: Sequence["_Batch"]) -> "_Batch":
        names = cls.__dataclass_fields__
        return cls(**{k: np.concatenate([getattr(b, k) for b in batches]) for k in names})


@dataclass
class _World:
    """Merchants, customers and their habits."""

    start: date
    days: int
    start_epoch: int  # UTC epoch of local midnight on the start date
    # merchants
    merchant_category: np.ndarray  # (M,) category code
    merchant_cdf: np.ndarray  # (M,) popularity CDF
    category_merchants: np.ndarray  # merchant codes grouped by category
    category_first: np.ndarray  # (C,) offset of each category's group
    category_size: np.ndarray  # (C,)
    category_cdf: np.ndarray  # popularity CDF of ``category_merchants``, shifted by category code
    # customers
    spend_median: np.ndarray
    spend_sigma: np.ndarray
    daily_rate: np.ndarray
    weekend_factor: np.ndarray
    hour_cdf: np.ndarray  # (customers * 2, 24): row 2c weekday, 2c+1 weekend
    device_first: np.ndarray  # global number of each customer's first home device
    device_cdf: np.ndarray  # (customers, 3) over home-device slots
    upgrade_time: np.ndarray  # when the main phone is replaced (far future: never)
    upgrade_device: np.ndarray
    laptop_time: np.ndarray  # when a second device (laptop/tablet) starts being used (far future: never)
    laptop_device: np.ndarray
    browser_share: np.ndarray  # share of online payments made from a browser (0: not a browser user)
    browser_first: np.ndarray  # global number of the customer's first browser id
    browser_lifetime: np.ndarray  # seconds one browser id lasts
    browser_phase: np.ndarray  # seconds: when the customer's browser ids change
    usual_merchants: np.ndarray  # (customers, MAX_USUAL_MERCHANTS)
    usual_cdf: np.ndarray
    explore_prob: np.ndarray  # chance a purchase is at a merchant outside the usual set
    channel_preference: np.ndarray  # (customers, channels)
    trip_start: np.ndarray
    trip_end: np.ndarray
    trip_country: np.ndarray  # 0 (home) for a domestic trip
    devices_allocated: int
    merchant_total: int
    fraud_warmup_days: int

    @property
    def customers(self) -> int:
        return len(self.spend_median)

    @property
    def end_epoch(self) -> int:
        return self.start_epoch + self.days * DAY

    def midnight(self, day: np.ndarray) -> np.ndarray:
        return self.start_epoch + np.asarray(day, dtype=np.int64) * DAY

    def new_devices(self, n: int) -> np.ndarray:
        """Devices nobody has used before (fraudsters' phones and laptops)."""
        out = np.arange(self.devices_allocated, self.devices_allocated + n, dtype=np.int64)
        self.devices_allocated += n
        return out

    def main_device(self, customer: np.ndarray, time: np.ndarray) -> np.ndarray:
        return np.where(time >= self.upgrade_time[customer], self.upgrade_device[customer], self.device_first[customer])

    def devices_of(self, customer: np.ndarray, time: np.ndarray, channel: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
        """The device each legitimate transaction comes from: a home device (the main phone,
        replaced once by some), for online payments often a short-lived browser id, and for
        online payments and transfers sometimes a laptop that appears during the period."""
        n = len(customer)
        slot = _sample_rows(self.device_cdf, customer, rng)
        device = self.device_first[customer] + slot
        upgraded = (slot == 0) & (time >= self.upgrade_time[customer])
        device[upgraded] = self.upgrade_device[customer[upgraded]]
        u = rng.random(n)
        online = channel == _code(CHANNELS, "online")
        on_laptop = (online | (channel == CH_TRANSFER)) & (time >= self.laptop_time[customer]) & (u < 0.5)
        device[on_laptop] = self.laptop_device[customer[on_laptop]]
        in_browser = online & (rng.random(n) < self.browser_share[customer])
        c = customer[in_browser]
        epoch = (time[in_browser] - self.start_epoch + self.browser_phase[c]) // self.browser_lifetime[c]
        device[in_browser] = self.browser_first[c] + epoch
        return device

    def merchants_in(self, category: np.ndarray, rng: np.random.Generator,
                     long_tail_share: float = LONG_TAIL_SHARE) -> np.ndarray:
        """A merchant of each given category: by popularity, or (``long_tail_share`` of the
        time) uniformly, so that small shops and private payees get picked too."""
        category = np.asarray(category, dtype=np.int64)
        n = len(category)
        uniform = (rng.random(n) * self.category_size[category]).astype(np.int64)
        popular = np.searchsorted(self.category_cdf, category + rng.random(n), side="right") - self.category_first[category]
        pick = np.where(rng.random(n) < long_tail_share, uniform, np.clip(popular, 0, self.category_size[category] - 1))
        return self.category_merchants[self.category_first[category] + pick]

    def usual_time_of_day(self, customer: np.ndarray, day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Seconds after local midnight, drawn from each customer's own daily rhythm."""
        weekend = ((self.start.weekday() + np.asarray(day)) % 7) >= 5
        hour = _sample_rows(self.hour_cdf, 2 * customer + weekend, rng)
        return hour * HOUR + rng.integers(0, HOUR, len(customer))

    def fraud_days(self, rng: np.random.Generator, n: int, duration_days: np.ndarray | int = 1) -> np.ndarray:
        """First day of each fraud incident, after the warm-up, leaving room for its duration."""
        last = np.maximum(self.days - np.asarray(duration_days), self.fraud_warmup_days)
        return rng.integers(self.fraud_warmup_days, last + 1, n).clip(max=self.days - 1)


def _later_device(rng: np.random.Generator, n_c: int, share: float, start_epoch: int, days: int,
                  allocated: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A new device for ``share`` of the customers from a random moment on: (when, its id, ids
    allocated so far); the others get the far future and -1."""
    chosen = rng.random(n_c) < share
    at = start_epoch + (rng.random(n_c) * days * DAY).astype(np.int64)
    when = np.where(chosen, at, np.iinfo(np.int64).max)
    device = np.full(n_c, -1, dtype=np.int64)
    device[chosen] = allocated + np.arange(int(chosen.sum()))
    return when, device, allocated + int(chosen.sum())


def _build_world(config: SimulationConfig, rng: np.random.Generator) -> _World:
    n_c, n_m, days = config.customers, config.merchant_count, config.days
    start = config.start_date
    local_zone = timezone(timedelta(seconds=UTC_OFFSET_SECONDS))
    start_epoch = int(datetime(start.year, start.month, start.day, tzinfo=local_zone).timestamp())

    # Merchants: one of each category first, then drawn by category share; Zipf popularity.
    all_categories = np.arange(N_CATEGORIES)
    category = np.concatenate([all_categories, _choice(rng, all_categories, _CATEGORY_SHARE, n_m - N_CATEGORIES)])
    rank = rng.permutation(n_m) + 1
    popularity = rank ** -0.8 * _CATEGORY_TRAFFIC[category] * np.exp(rng.normal(0.0, 0.3, n_m))
    merchant_cdf = np.cumsum(popularity) / popularity.sum()
    merchant_cdf[-1] = 1.0
    by_category = np.argsort(category, kind="stable")
    category_size = np.bincount(category, minlength=N_CATEGORIES)
    category_first = np.cumsum(category_size) - category_size
    grouped = popularity[by_category]
    group_total = np.cumsum(grouped)
    group_before = np.repeat(group_total[category_first] - grouped[category_first], category_size)
    category_totals = np.repeat(np.add.reduceat(grouped, category_first), category_size)
    category_cdf = (group_total - group_before) / category_totals + category[by_category]
    category_cdf[category_first + category_size - 1] = np.arange(N_CATEGORIES) + 1.0

    # Spending and activity.
    spend_median = _lognormal_clipped(rng, SPEND_MEDIAN, SPEND_SIGMA, SPEND_RANGE, n_c)
    spend_sigma = rng.uniform(0.35, 0.75, n_c)
    daily_rate = _lognormal_clipped(rng, RATE_MEDIAN, RATE_SIGMA, RATE_RANGE, n_c)
    weekend_factor = _lognormal_clipped(rng, 1.0, 0.35, (0.4, 2.2), n_c)

    # Daily rhythm: city curve x (floor + the customer's 1-2 preferred times of day).
    # preferred times: morning, lunch, after work, late evening
    peak_hour = _choice(rng, np.array([8.5, 12.5, 18.5, 21.0]), np.array([0.3, 0.25, 0.35, 0.1]), 2 * n_c)
    peak_hour = peak_hour.reshape(n_c, 2)
    peak_hour = peak_hour + rng.normal(0.0, 1.0, (n_c, 2))
    peak_width = rng.uniform(1.5, 3.5, (n_c, 2))
    peak_height = rng.uniform(0.5, 1.5, (n_c, 2)) * np.column_stack([np.ones(n_c), rng.random(n_c) < 0.5])
    night_owl = np.where(rng.random(n_c) < NIGHT_OWL_SHARE, 3.0, 1.0)
    hours = np.arange(24) + 0.5

    def rhythm(base: np.ndarray, shift: float) -> np.ndarray:
        distance = (hours[None, None, :] - (peak_hour + shift)[:, :, None] + 12.0) % 24.0 - 12.0
        bumps = (peak_height[:, :, None] * np.exp(-0.5 * (distance / peak_width[:, :, None]) ** 2)).sum(axis=1)
        night = np.where(hours < 6, night_owl[:, None], 1.0)
        return base[None, :] * (0.4 + bumps) * night

    weekday, weekend = rhythm(_BASE_HOURLY, 0.0), rhythm(np.roll(_BASE_HOURLY, 1), 1.5)  # weekends start later
    hour_cdf = _normalised_cdf(np.stack([weekday, weekend], axis=1)).reshape(2 * n_c, 24)

    # Home devices: 1-3, one dominant; some customers replace their main phone once.
    n_devices = _choice(rng, np.array([1, 2, 3]), np.array([0.5, 0.35, 0.15]), n_c)
    main_share = rng.uniform(0.6, 0.95, n_c)
    second_share = (1.0 - main_share) * rng.uniform(0.5, 1.0, n_c)
    device_weights = np.column_stack([main_share, second_share, 1.0 - main_share - second_share])
    device_weights[np.arange(3)[None, :] >= n_devices[:, None]] = 0.0
    device_cdf = _normalised_cdf(device_weights)
    device_first = np.cumsum(n_devices) - n_devices
    devices_allocated = int(n_devices.sum())
    upgrade_time, upgrade_device, devices_allocated = _later_device(
        rng, n_c, DEVICE_UPGRADE_SHARE, start_epoch, days, devices_allocated)
    laptop_time, laptop_device, devices_allocated = _later_device(
        rng, n_c, SECOND_DEVICE_SHARE, start_epoch, days, devices_allocated)
    # Browsers: a new device id every few days (cookies cleared, private windows).
    browser_users = rng.random(n_c) < BROWSER_USER_SHARE
    browser_share = np.where(browser_users, rng.uniform(0.3, 0.9, n_c), 0.0)
    browser_lifetime = rng.integers(BROWSER_LIFETIME_DAYS[0] * DAY, BROWSER_LIFETIME_DAYS[1] * DAY, n_c)
    browser_phase = (rng.random(n_c) * browser_lifetime).astype(np.int64)
    browser_ids = np.where(browser_users, (days * DAY) // browser_lifetime + 2, 0)
    browser_first = devices_allocated + np.cumsum(browser_ids) - browser_ids
    devices_allocated += int(browser_ids.sum())

    # Usual merchants (popular ones are usual for many), favourites first.
    usual_merchants = np.searchsorted(merchant_cdf, rng.random((n_c, MAX_USUAL_MERCHANTS)), side="right")
    usual_merchants = usual_merchants.clip(max=n_m - 1)
    n_usual = rng.integers(4, MAX_USUAL_MERCHANTS + 1, n_c)
    favourites = (np.arange(MAX_USUAL_MERCHANTS) + 1.0) ** -1.1
    usual_weights = np.where(np.arange(MAX_USUAL_MERCHANTS)[None, :] < n_usual[:, None], favourites[None, :], 0.0)
    usual_cdf = _normalised_cdf(usual_weights)
    explore_prob = rng.uniform(*EXPLORE_RANGE, n_c)
    channel_preference = rng.dirichlet(np.full(N_CHANNELS, 1.5), n_c) + 0.05

    # Travellers: one trip abroad (most spending there is abroad) or to another city; both
    # mostly at merchants new to them.
    trip_kind = rng.random(n_c)
    abroad = trip_kind < TRAVELLER_SHARE
    travellers = trip_kind < TRAVELLER_SHARE + DOMESTIC_TRAVEL_SHARE
    trip_start = start_epoch + (rng.random(n_c) * days * DAY).astype(np.int64)
    trip_end = np.where(travellers, trip_start + rng.integers(3, 11, n_c) * DAY, trip_start)
    trip_country = np.where(abroad, 1 + _choice(rng, np.arange(len(FOREIGN_COUNTRIES)), _FOREIGN_WEIGHTS, n_c), 0)

    return _World(
        start=start, days=days, start_epoch=start_epoch,
        merchant_category=category, merchant_cdf=merchant_cdf, category_merchants=by_category,
        category_first=category_first, category_size=category_size, category_cdf=category_cdf,
        spend_median=spend_median, spend_sigma=spend_sigma, daily_rate=daily_rate, weekend_factor=weekend_factor,
        hour_cdf=hour_cdf, device_first=device_first, device_cdf=device_cdf, upgrade_time=upgrade_time,
        upgrade_device=upgrade_device, laptop_time=laptop_time, laptop_device=laptop_device,
        browser_share=browser_share, browser_first=browser_first, browser_lifetime=browser_lifetime,
        browser_phase=browser_phase, usual_merchants=usual_merchants, usual_cdf=usual_cdf,
        explore_prob=explore_prob, channel_preference=channel_preference,
        trip_start=trip_start, trip_end=trip_end, trip_country=trip_country,
        devices_allocated=devices_allocated, merchant_total=n_m, fraud_warmup_days=min(7, days // 5),
    )


# --------------------------------------------------------------------------- legitimate traffic


def _legitimate_transactions(world: _World, rng: np.random.Generator) -> _Batch:
    days = world.days
    day = np.arange(days)
    is_weekend = ((world.start.weekday() + day) % 7) >= 5
    wf = world.weekend_factor[:, None]
    weekly = np.where(is_weekend[None, :], wf, 1.0) * (7.0 / (5.0 + 2.0 * wf))  # averages 1 over a week
    expected = world.daily_rate[:, None] * weekly * _payday_factors(world.start, days)[None, :]
    counts = rng.poisson(expected).ravel()
    customer, day_index = np.divmod(np.repeat(np.arange(counts.size), counts), days)
    n = len(customer)

    hour = _sample_rows(world.hour_cdf, 2 * customer + is_weekend[day_index], rng)
    time = world.midnight(day_index) + hour * HOUR + rng.integers(0, HOUR, n)

    usual = world.usual_merchants[customer, _sample_rows(world.usual_cdf, customer, rng)]
    popular = np.searchsorted(world.merchant_cdf, rng.random(n), side="right").clip(max=world.merchant_total - 1)
    new_merchant = world.merchants_in(world.merchant_category[popular], rng)  # popular or long tail
    travelling = (time >= world.trip_start[customer]) & (time < world.trip_end[customer])
    explore = np.where(travelling, TRAVEL_EXPLORE, world.explore_prob[customer])
    merchant = np.where(rng.random(n) < explore, new_merchant, usual)
    category = world.merchant_category[merchant]
    channel = _sample_weighted(_CHANNEL_WEIGHTS[category] * world.channel_preference[customer], rng)

    device = world.devices_of(customer, time, channel, rng)
    noise = np.exp(rng.normal(0.0, 1.0, n) * world.spend_sigma[customer])
    amount = _round_amounts(world.spend_median[customer] * _AMOUNT_MULTIPLIER[category] * noise, channel, category, rng)

    abroad = travelling & (world.trip_country[customer] > 0) & (rng.random(n) < 0.7)
    country = np.where(abroad, world.trip_country[customer], 0)
    everyday = _Batch.make("", customer=customer, time=time, amount=amount, device=device, merchant=merchant,
                           channel=channel, country=country)
    return _Batch.concat([everyday, _big_purchases(world, rng)])


def _big_purchases(world: _World, rng: np.random.Generator) -> _Batch:
    """Once in the period, a few customers buy something dear (a phone, a flight, a suit):
    5-20x their usual amount at an electronics, travel or fashion merchant, usually new to them."""
    customer = np.flatnonzero(rng.random(world.customers) < BIG_PURCHASE_SHARE)
    k = len(customer)
    day = rng.integers(0, world.days, k)
    time = world.midnight(day) + world.usual_time_of_day(customer, day, rng)
    category = _choice(rng, *_codes(MERCHANT_CATEGORIES, BIG_PURCHASE_CATEGORIES), k)
    merchant = world.merchants_in(category, rng)
    channel = _sample_weighted(_CHANNEL_WEIGHTS[category] * world.channel_preference[customer], rng)
    amount = world.spend_median[customer] * np.exp(rng.uniform(*np.log(BIG_PURCHASE_RANGE), k))
    amount = _round_amounts(amount, channel, category, rng)
    return _Batch.make("", customer=customer, time=time, amount=amount, device=world.devices_of(customer, time, channel, rng),
                       merchant=merchant, channel=channel)


# --------------------------------------------------------------------------- fraud


class _Victims:
    """Customers whose accounts or cards get attacked: distinct while possible, customers
    with some history (>= 5 legitimate transactions) first."""

    def __init__(self, legit_counts: np.ndarray, rng: np.random.Generator):
        active = np.flatnonzero(legit_counts >= 5)
        quiet = np.flatnonzero(legit_counts < 5)
        self.order = np.concatenate([rng.permutation(active), rng.permutation(quiet)])
        self.used = 0

    def peek(self, n: int) -> np.ndarray:
        return self.order[(self.used + np.arange(n)) % len(self.order)]

    def take(self, n: int) -> np.ndarray:
        out = self.peek(n)
        self.used += n
        return out


@dataclass
class _FraudContext:
    world: _World
    rng: np.random.Generator
    victims: _Victims
    usual_amount: np.ndarray  # per customer: median legitimate amount
    used_pairs: np.ndarray  # sorted customer * merchant_total + merchant of legitimate rows
    next_incident: int = 0

    def new_payees(self, customer: np.ndarray, category: np.ndarray, tries: int = 8) -> np.ndarray:
        """A merchant of ``category`` each customer never paid in the legitimate traffic
        (redrawn a few times; a customer who paid them all keeps the last draw)."""
        world, total = self.world, self.world.merchant_total
        merchant = world.merchants_in(category, self.rng)
        for _ in range(tries):
            key = customer * total + merchant
            pos = np.searchsorted(self.used_pairs, key).clip(max=max(len(self.used_pairs) - 1, 0))
            known = self.used_pairs[pos] == key if len(self.used_pairs) else np.zeros(len(key), bool)
            if not known.any():
                break
            merchant = np.where(known, world.merchants_in(category, self.rng), merchant)
        return merchant

    def incidents(self, n: int) -> np.ndarray:
        out = np.arange(self.next_incident, self.next_incident + n)
        self.next_incident += n
        return out

    def foreign_country(self, n: int, probability: float) -> np.ndarray:
        country = 1 + _choice(self.rng, np.arange(len(FOREIGN_COUNTRIES)), _FOREIGN_WEIGHTS, n)
        return np.where(self.rng.random(n) < probability, country, 0)


def _median_by_customer(customer: np.ndarray, amount: np.ndarray, n_customers: int, fallback: np.ndarray) -> np.ndarray:
    order = np.lexsort((amount, customer))
    counts = np.bincount(customer, minlength=n_customers)
    first = np.cumsum(counts) - counts
    lo = amount[order][np.minimum(first + (counts - 1) // 2, len(order) - 1)] if len(order) else fallback
    hi = amount[order][np.minimum(first + counts // 2, len(order) - 1)] if len(order) else fallback
    return np.where(counts > 0, (lo + hi) / 2.0, fallback)


def _scenario_budgets(config: SimulationConfig, legit_rows: int) -> dict[str, int]:
    """Fraud rows per scenario so that fraud / (legit + fraud) == fraud_rate."""
    exact = config.fraud_rate * legit_rows / (1.0 - config.fraud_rate)
    total = round(exact)
    # Rounding must not push a rate asked for inside the 0.5-2% band outside it.
    if total and config.fraud_rate >= 0.005 and total / (legit_rows + total) < 0.005:
        total = math.ceil(exact)
    if total and config.fraud_rate <= 0.02 and total / (legit_rows + total) > 0.02:
        total = math.floor(exact)
    shares = {k: float(config.scenario_shares.get(k, 0.0)) for k in SCENARIOS}
    weight = sum(shares.values())
    budgets = {k: int(total * v / weight) for k, v in shares.items()}
    for k in sorted(shares, key=lambda k: -shares[k])[: total - sum(budgets.values())]:
        budgets[k] += 1  # hand out the rounding remainder
    if total > 0:
        for k, v in shares.items():
            budgets[k] = max(budgets[k], 1) if v > 0 else 0  # every wanted scenario is present
    return budgets


def _fraud_transactions(
    world: _World, legit: _Batch, config: SimulationConfig, rng: np.random.Generator
) -> list[_Batch]:
    budgets = _scenario_budgets(config, len(legit))
    if sum(budgets.values()) == 0:
        return []
    legit_counts = np.bincount(legit.customer, minlength=world.customers)
    ctx = _FraudContext(world, rng, _Victims(legit_counts, rng),
                        _median_by_customer(legit.customer, legit.amount, world.customers, world.spend_median),
                        np.unique(legit.customer * world.merchant_total + legit.merchant))
    batches = [_compromised_merchants(ctx, legit, budgets["compromised_merchant"])]
    shortfall = budgets["compromised_merchant"] - len(batches[0])  # too little merchant traffic: move rows on
    others = [k for k in _SCENARIO_BUILDERS if budgets[k] > 0]
    for i, name in enumerate(others):
        extra = shortfall // len(others) + (1 if i < shortfall % len(others) else 0)
        batches.append(_SCENARIO_BUILDERS[name](ctx, budgets[name] + max(extra, 0)))
    return batches


def _account_takeover(ctx: _FraudContext, budget: int) -> _Batch:
    """Someone else is in the account and moves large sums within minutes: from a device of
    their own after a SIM swap or credential theft (often at night), or (``ATO_OWN_DEVICE_SHARE``)
    by remote access on the victim's own phone, at the victim's usual times."""
    rng, world = ctx.rng, ctx.world
    sizes = _cut_to_budget(_choice(rng, np.array([1, 2, 3]), np.array([0.5, 0.3, 0.2]), budget + 1), budget, 1)
    k = len(sizes)
    victim = ctx.victims.take(k)
    own_device = rng.random(k) < ATO_OWN_DEVICE_SHARE
    night = ~own_device & (rng.random(k) < 0.6)
    day = world.fraud_days(rng, k)
    start_second = np.where(night, (rng.uniform(1.0, 5.0, k) * HOUR).astype(np.int64),
                            np.where(own_device, world.usual_time_of_day(victim, day, rng), rng.integers(0, DAY, k)))
    start = world.midnight(day) + start_second
    device = np.where(own_device, world.main_device(victim, start), world.new_devices(k))
    incident, position = _expand(sizes)
    gap = np.where(position == 0, 0, rng.integers(2 * MINUTE, 20 * MINUTE, len(incident)))
    time = start[incident] + _cumsum_within(gap, sizes)

    channel_codes, channel_probs = _codes(CHANNELS, {"transfer": 0.45, "online": 0.35, "mobile": 0.20})
    channel = _choice(rng, channel_codes, channel_probs, len(incident))
    category = np.empty(len(incident), dtype=np.int64)
    for ch, targets in (("transfer", {"transfer": 1.0}),
                        ("online", {"electronics": 0.35, "crypto": 0.3, "gambling": 0.2, "travel": 0.15}),
                        ("mobile", {"transfer": 0.6, "crypto": 0.2, "airtime": 0.2})):
        rows = channel == _code(CHANNELS, ch)
        category[rows] = _choice(rng, *_codes(MERCHANT_CATEGORIES, targets), int(rows.sum()))
    merchant = world.merchants_in(category, rng)

    usual = ctx.usual_amount[victim][incident]
    drain = np.exp(rng.normal(math.log(200_000.0), 0.5, len(incident)))  # the canonical ₦250k-ish transfer
    amount = np.maximum(usual * rng.uniform(4.0, 12.0, len(incident)), drain)
    amount = np.where(rng.random(len(incident)) < 0.5, np.round(amount, -3), amount)  # round thousands
    amount = _round_amounts(amount, channel, category, rng)
    amount = np.maximum(amount, usual * 4.0)
    return _Batch.make("account_takeover", ctx.incidents(k)[incident], customer=victim[incident], time=time,
                       amount=np.round(amount, 2), device=device[incident], merchant=merchant, channel=channel,
                       country=ctx.foreign_country(k, 0.10)[incident])


CARD_TESTING_AMOUNTS = np.array([50.0, 100.0, 100.0, 150.0, 200.0, 200.0, 250.0, 300.0, 500.0])


def _card_testing(ctx: _FraudContext, budget: int) -> _Batch:
    """Bursts of 5-20 tiny online payments seconds apart, to see whether a card works."""
    rng, world = ctx.rng, ctx.world
    sizes = _cut_to_budget(rng.integers(5, 21, budget // 5 + 1), budget, 5)
    k = len(sizes)
    victim, device = ctx.victims.take(k), world.new_devices(k)
    start = world.midnight(world.fraud_days(rng, k)) + rng.integers(0, DAY - HOUR, k)
    incident, position = _expand(sizes)
    n = len(incident)
    gap = np.where(position == 0, 0, rng.integers(3, 50, n))
    time = start[incident] + _cumsum_within(gap, sizes)

    # 1-3 merchants per burst, usually ones the customer never used.
    test_categories = _codes(MERCHANT_CATEGORIES, {"electronics": 0.25, "fashion": 0.2, "entertainment": 0.2,
                                                   "airtime": 0.15, "gambling": 0.1, "other": 0.1})
    burst_merchants = world.merchants_in(_choice(rng, *test_categories, 3 * k), rng).reshape(k, 3)
    merchants_per_burst = rng.integers(1, 4, k)
    merchant = burst_merchants[incident, (rng.random(n) * merchants_per_burst[incident]).astype(np.int64)]
    channel = _choice(rng, *_codes(CHANNELS, {"online": 0.85, "mobile": 0.15}), k)[incident]
    amount = np.where(rng.random(n) < 0.6, CARD_TESTING_AMOUNTS[rng.integers(0, len(CARD_TESTING_AMOUNTS), n)],
                      np.round(rng.uniform(50.0, 500.0, n), 2))
    return _Batch.make("card_testing", ctx.incidents(k)[incident], customer=victim[incident], time=time, amount=amount,
                       device=device[incident], merchant=merchant, channel=channel,
                       country=ctx.foreign_country(k, 0.25)[incident])


def _authorised_push_payment(ctx: _FraudContext, budget: int) -> _Batch:
    """Social engineering and remote-access scams: the customer is talked into paying a new
    payee (a mule account or a crypto desk) from their own phone, at their own usual time:
    1-3 transfers minutes to an hour apart, each 2-10x the usual amount."""
    rng, world = ctx.rng, ctx.world
    sizes = _cut_to_budget(_choice(rng, np.array([1, 2, 3]), np.array([0.45, 0.35, 0.2]), budget + 1), budget, 1)
    k = len(sizes)
    victim = ctx.victims.take(k)
    day = world.fraud_days(rng, k)
    start = world.midnight(day) + world.usual_time_of_day(victim, day, rng)
    incident, position = _expand(sizes)
    n = len(incident)
    gap = np.where(position == 0, 0, rng.integers(3 * MINUTE, 60 * MINUTE, n))
    time = start[incident] + _cumsum_within(gap, sizes)
    customer = victim[incident]

    category = _choice(rng, *_codes(MERCHANT_CATEGORIES, APP_PAYEE_CATEGORIES), k)[incident]
    payee = ctx.new_payees(customer, category)
    same_payee = (rng.random(k) < 0.6)[incident]  # "move it all to this safe account"
    first = np.cumsum(sizes) - sizes
    payee = np.where(same_payee, payee[first[incident]], payee)
    category = world.merchant_category[payee]
    channel = _choice(rng, *_codes(CHANNELS, {"transfer": 0.6, "mobile": 0.4}), n)

    usual = ctx.usual_amount[customer]
    amount = usual * np.exp(rng.uniform(math.log(APP_AMOUNT_RANGE[0]), math.log(APP_AMOUNT_RANGE[1]), n))
    amount = np.where(rng.random(n) < 0.5, np.maximum(np.round(amount, -3), 1000.0), amount)  # round thousands
    amount = _round_amounts(amount, channel, category, rng)
    amount = np.clip(amount, usual * APP_AMOUNT_RANGE[0], usual * APP_AMOUNT_RANGE[1] * 1.1)
    return _Batch.make("authorised_push_payment", ctx.incidents(k)[incident], customer=customer, time=time,
                       amount=np.round(amount, 2), device=world.main_device(customer, time), merchant=payee,
                       channel=channel)


APP_PAYEE_CATEGORIES = {"transfer": 0.75, "crypto": 0.25}
APP_AMOUNT_RANGE = (2.0, 10.0)
SPREE_CATEGORIES = {"electronics": 0.30, "fashion": 0.25, "travel": 0.15, "gambling": 0.15, "crypto": 0.15}


def _spending_spree(ctx: _FraudContext, budget: int) -> _Batch:
    """A stolen card spent fast for 1-4 days on resellable goods, travel, betting, crypto."""
    rng, world = ctx.rng, ctx.world
    candidates = budget // 3 + 1  # each incident has >= 3 rows
    victim = ctx.victims.peek(candidates)
    spree_days = np.minimum(rng.integers(1, 5, candidates), world.days)
    per_day = np.clip(np.ceil(world.daily_rate[victim] * rng.uniform(2.0, 4.0, candidates)), 3, 12).astype(np.int64)
    sizes = _cut_to_budget(spree_days * per_day, budget, 3)
    k = len(sizes)
    victim, spree_days, per_day = ctx.victims.take(k), spree_days[:k], per_day[:k]
    device = world.new_devices(k)
    first_day = world.fraud_days(rng, k, spree_days)
    incident, position = _expand(sizes)
    n = len(incident)
    day = np.minimum(first_day[incident] + position // per_day[incident], world.days - 1)
    time = world.midnight(day) + rng.integers(8 * HOUR, 23 * HOUR, n)

    category = _choice(rng, *_codes(MERCHANT_CATEGORIES, SPREE_CATEGORIES), n)
    merchant = world.merchants_in(category, rng)
    weights = _CHANNEL_WEIGHTS[category].copy()
    if CH_ATM >= 0 and weights.shape[1] > 1:
        weights[:, CH_ATM] = 0.0
    weights[weights.sum(axis=1) == 0] = 1.0
    channel = _sample_weighted(weights, rng)
    usual = ctx.usual_amount[victim][incident]
    amount = _round_amounts(usual * np.exp(rng.uniform(math.log(2.5), math.log(8.0), n)), channel, category, rng)
    amount = np.maximum(amount, np.round(usual * 2.5, 2))
    return _Batch.make("spending_spree", ctx.incidents(k)[incident], customer=victim[incident], time=time,
                       amount=amount, device=device[incident], merchant=merchant, channel=channel,
                       country=ctx.foreign_country(k, 0.10)[incident])


def _compromised_merchants(ctx: _FraudContext, legit: _Batch, budget: int) -> _Batch:
    """A few busy merchants are breached for 3-10 days; 20-40% of their traffic in that
    window is fraud on their own (otherwise normal-looking) customers.

    Merchants are tried busiest-first (randomised by traffic). A breach is taken whole
    when it fits the remaining budget (and half the scenario's rows, so that there are at
    least two breaches) and has at least max(10, budget / 10) fraud rows; a breach too
    big is shortened (to no less than 2 days). Only if that leaves the scenario
    empty (tiny data sets) are shorter or smaller breaches allowed. Rows left over go to
    the other scenarios.
    """
    rng, world = ctx.rng, ctx.world
    empty = _Batch.make("compromised_merchant", customer=np.zeros(0), time=np.zeros(0), amount=np.zeros(0),
                        device=np.zeros(0), merchant=np.zeros(0), channel=np.zeros(0))
    if budget <= 0 or len(legit) == 0:
        return empty
    order = np.lexsort((legit.time, legit.merchant))
    by_merchant, times, customers = legit.merchant[order], legit.time[order], legit.customer[order]
    traffic = np.bincount(legit.merchant, minlength=world.merchant_total)
    busy = np.flatnonzero(traffic >= 5)
    if len(busy) == 0:
        return empty
    candidates = rng.choice(busy, size=len(busy), replace=False, p=traffic[busy] / traffic[busy].sum())
    available_days = max(1, world.days - world.fraud_warmup_days)

    parts: list[_Batch] = []
    remaining = budget
    min_rows = max(10, budget // 10)  # a few sizeable breaches, not many small ones ...
    per_breach = max(min_rows, math.ceil(budget / 2))  # ... but at least two, at different times
    for min_breach_days in (min(2, available_days), 0):
        for merchant in candidates[:50].tolist():
            if remaining <= 0 or (parts and min_breach_days == 0):
                break
            lo, hi = np.searchsorted(by_merchant, [merchant, merchant + 1])
            span = min(int(rng.integers(3, 11)), available_days) * DAY
            t0 = int(world.midnight(world.fraud_days(rng, 1, span // DAY)[0]))
            share = rng.uniform(0.2, 0.4)
            a, b = np.searchsorted(times[lo:hi], [t0, t0 + span])
            wanted = round((b - a) * share / (1.0 - share))
            cap = min(remaining, per_breach)
            if wanted > cap:  # shorten the breach so that the share holds
                span = int(span * cap / wanted)
                a, b = np.searchsorted(times[lo:hi], [t0, t0 + span])
                wanted = round((b - a) * share / (1.0 - share))
            k = min(wanted, cap)
            if span < min_breach_days * DAY or b - a < 5 or k < (min_rows if min_breach_days else 1):
                continue
            parts.append(_breach(ctx, merchant, times[lo + a: lo + b], customers[lo:hi], k))
            remaining -= k
    return _Batch.concat(parts) if parts else empty


def _breach(
    ctx: _FraudContext, merchant: int, window_times: np.ndarray, merchant_customers: np.ndarray, k: int
) -> _Batch:
    """``k`` fraud rows at a breached merchant: they follow the merchant's own traffic in the
    window (times), hit its usual customers with their usual device and channel habits,
    and amounts drawn like the customer's own (skimmed cards are cashed out later, elsewhere).
    Each victim's rows are one incident (each victim reports, or not, on their own)."""
    rng, world = ctx.rng, ctx.world
    time = window_times[rng.integers(0, len(window_times), k)] + rng.integers(-30 * MINUTE, 30 * MINUTE, k)
    customer = merchant_customers[rng.integers(0, len(merchant_customers), k)]
    category = np.full(k, world.merchant_category[merchant])
    channel = _sample_weighted(_CHANNEL_WEIGHTS[category] * world.channel_preference[customer], rng)
    noise = np.exp(rng.normal(0.0, 1.0, k) * world.spend_sigma[customer])
    amount = _round_amounts(world.spend_median[customer] * _AMOUNT_MULTIPLIER[category] * noise, channel, category, rng)
    victims, victim_of_row = np.unique(customer, return_inverse=True)
    return _Batch.make("compromised_merchant", ctx.incidents(len(victims))[victim_of_row], customer=customer,
                       time=time, amount=amount,
                       device=world.main_device(customer, time), merchant=np.full(k, merchant), channel=channel)


_SCENARIO_BUILDERS = {
    "account_takeover": _account_takeover,
    "card_testing": _card_testing,
    "spending_spree": _spending_spree,
    "authorised_push_payment": _authorised_push_payment,
}


# --------------------------------------------------------------------------- labels


def _report_delays(rng: np.random.Generator, scenario: np.ndarray) -> np.ndarray:
    """Seconds from an incident's last transaction until the bank learns of it: lognormal,
    median 5 days (card testing 1 day; incidents the bank's analysts catch themselves, 4
    hours), clipped to [2 hours, 60 days]."""
    n = len(scenario)
    z = rng.normal(0.0, 1.0, n)
    analyst = rng.random(n) < ANALYST_CAUGHT_SHARE
    testing = scenario == SCENARIO_LABELS.index("card_testing")
    median = np.where(analyst, ANALYST_DELAY_MEDIAN_HOURS * HOUR,
                      np.where(testing, CARD_TESTING_DELAY_MEDIAN_DAYS, REPORT_DELAY_MEDIAN_DAYS) * DAY)
    sigma = np.where(analyst, ANALYST_DELAY_SIGMA, np.where(testing, CARD_TESTING_DELAY_SIGMA, REPORT_DELAY_SIGMA))
    return np.clip(median * np.exp(sigma * z), *REPORT_DELAY_RANGE).astype(np.int64)


def _report(batch: _Batch, config: SimulationConfig, rng: np.random.Generator) -> None:
    """Fill ``batch.label_time``: ``report_rate`` of the fraud incidents are reported (all of
    an incident's rows at once, a delay after its last row); ``false_report_rate`` of the
    legitimate rows are disputed as fraud (friendly fraud, mistakes), a delay after the row."""
    fraud = np.flatnonzero(batch.scenario > 0)
    if len(fraud):
        incident = batch.incident[fraud]
        k = int(incident.max()) + 1
        last = np.full(k, np.iinfo(np.int64).min)
        np.maximum.at(last, incident, batch.time[fraud])
        scenario = np.zeros(k, dtype=np.int64)
        scenario[incident] = batch.scenario[fraud]
        reported = rng.random(k) < config.report_rate
        known_at = last + _report_delays(rng, scenario)
        batch.label_time[fraud] = np.where(reported[incident], known_at[incident], -1)
    legit = np.flatnonzero(batch.scenario == 0)
    disputed = legit[rng.random(len(legit)) < config.false_report_rate]
    delay = np.clip(REPORT_DELAY_MEDIAN_DAYS * DAY * np.exp(REPORT_DELAY_SIGMA * rng.normal(0.0, 1.0, len(disputed))),
                    *REPORT_DELAY_RANGE).astype(np.int64)
    batch.label_time[disputed] = batch.time[disputed] + delay


# --------------------------------------------------------------------------- output


def _id_table(prefix: str, count: int, width: int) -> np.ndarray:
    digits = np.strings.zfill(np.arange(count).astype(str), max(width, len(str(max(count - 1, 0)))))
    return np.strings.add(prefix, digits)


def _assemble(world: _World, batch: _Batch, rng: np.random.Generator) -> Transactions:
    """Sort by time (then customer, then generation order) and turn codes into strings."""
    n = len(batch)
    order = np.lexsort((np.arange(n), batch.customer, batch.time))
    b = _Batch(**{k: getattr(batch, k)[order] for k in _Batch.__dataclass_fields__})
    # Device numbers are shuffled so that an id says nothing about whose device it is or
    # whether a fraudster's.
    device_label = rng.permutation(world.devices_allocated)
    local = (b.time + UTC_OFFSET_SECONDS).astype("datetime64[s]")
    true_fraud, labelled = b.scenario > 0, b.label_time >= 0
    fraud_incident = np.full(n, "", dtype=f"<U{len(str(max(int(b.incident.max(initial=0)), 0)))}")
    fraud_incident[true_fraud] = b.incident[true_fraud].astype(str)
    labelled_at = np.full(n, "", dtype="<U25")
    label_local = (b.label_time[labelled] + UTC_OFFSET_SECONDS).astype("datetime64[s]")
    labelled_at[labelled] = np.strings.add(np.datetime_as_string(label_local, unit="s"), UTC_OFFSET)
    return Transactions(
        transaction_id=_id_table("T", n, 9),
        customer_id=_id_table("C", world.customers, 6)[b.customer],
        timestamp=np.strings.add(np.datetime_as_string(local, unit="s"), UTC_OFFSET),
        transaction_amount=np.round(b.amount, 2),
        currency=np.full(n, CURRENCY),
        device_id=_id_table("D", world.devices_allocated, 8)[device_label[b.device]],
        merchant_id=_id_table("M", world.merchant_total, 6)[b.merchant],
        merchant_category=np.array(MERCHANT_CATEGORIES)[world.merchant_category[b.merchant]],
        channel=np.array(CHANNELS)[b.channel],
        country=np.array(COUNTRIES)[b.country],
        is_fraud=labelled.astype(np.int8),
        fraud_scenario=np.array(SCENARIO_LABELS)[b.scenario],
        fraud_incident=fraud_incident,
        labelled_at=labelled_at,
        epoch_seconds=b.time,
        incident=b.incident,
        labelled_epoch=b.label_time,
        customers=world.customers,
    )


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.simulate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--customers", type=int, help="number of customers (default 1000)")
    size.add_argument("--transactions", type=int, help="aim for about this many rows (picks the number of customers)")
    p.add_argument("--days", type=int, default=30, help="days simulated (default 30)")
    p.add_argument("--start", default="2026-01-01", help="first day, YYYY-MM-DD (default 2026-01-01)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--fraud-rate", type=float, default=0.01, help="share of fraud rows (default 0.01)")
    p.add_argument("--merchants", type=int, help="merchant population (default: customers // 4, at least 40)")
    p.add_argument("--report-rate", type=float, default=REPORT_RATE,
                   help=f"share of fraud incidents the bank learns about (default {REPORT_RATE})")
    p.add_argument("--false-report-rate", type=float, default=FALSE_REPORT_RATE,
                   help=f"share of legitimate rows reported as fraud (default {FALSE_REPORT_RATE})")
    p.add_argument("--out", help="CSV output path")
    p.add_argument("--jsonl-out", help="JSON lines output path")
    return p


def main(argv: Sequence[str] | None = None) -> Transactions:
    args = build_parser().parse_args(argv)
    if not args.out and not args.jsonl_out:
        build_parser().error("give --out and/or --jsonl-out")
    began = _time.perf_counter()
    common = dict(start=args.start, seed=args.seed, fraud_rate=args.fraud_rate, merchants=args.merchants,
                  report_rate=args.report_rate, false_report_rate=args.false_report_rate)
    try:
        if args.transactions is not None:
            if args.transactions < 1:
                raise ValueError("transactions must be at least 1")
            config = SimulationConfig.for_transactions(args.transactions, days=args.days, **common)
        else:
            config = SimulationConfig(customers=args.customers if args.customers is not None else 1000,
                                      days=args.days, **common)
        config.validate()
    except ValueError as exc:
        build_parser().error(str(exc))
    result = generate(config)
    if args.out:
        write_csv(result, args.out)
    if args.jsonl_out:
        write_jsonl(result, args.jsonl_out)
    print(result.summary(_time.perf_counter() - began), flush=True)
    return result


if __name__ == "__main__":
    main()
