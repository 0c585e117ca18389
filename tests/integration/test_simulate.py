"""The transaction simulator: determinism, schema validity, fraud rate and the semantics of
each fraud scenario, checked on the written files where it matters."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timezone

import numpy as np
import pytest

from shared.domain.transaction import CHANNELS, MERCHANT_CATEGORIES, parse_timestamp, validate_transaction
from training.simulate import COLUMNS, SCENARIOS, SimulationConfig, generate, main, write_csv, write_jsonl

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)
HEADER = ("transaction_id,customer_id,timestamp,transaction_amount,currency,device_id,"
          "merchant_id,merchant_category,channel,country,is_fraud,fraud_scenario")
CONFIG = SimulationConfig(customers=300, days=30, seed=5)


@pytest.fixture(scope="module")
def result():
    return generate(CONFIG)


@pytest.fixture(scope="module")
def rows(result, tmp_path_factory):
    """The rows as read back from the CSV (amount float, is_fraud int)."""
    path = write_csv(result, tmp_path_factory.mktemp("sim") / "tx.csv")
    with open(path, newline="") as handle:
        out = list(csv.DictReader(handle))
    for row in out:
        row["transaction_amount"] = float(row["transaction_amount"])
        row["is_fraud"] = int(row["is_fraud"])
    return out


@pytest.fixture(scope="module")
def legit_median(rows):
    amounts = defaultdict(list)
    for row in rows:
        if not row["is_fraud"]:
            amounts[row["customer_id"]].append(row["transaction_amount"])
    return {c: float(np.median(v)) for c, v in amounts.items()}


def _of(rows, scenario):
    return [r for r in rows if r["fraud_scenario"] == scenario]


def _epoch(row) -> float:
    return parse_timestamp(row["timestamp"]).timestamp()


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    small = SimulationConfig(customers=60, days=14, seed=3)
    a = write_csv(generate(small), tmp_path / "a" / "tx.csv")
    b = write_csv(generate(small), tmp_path / "b" / "tx.csv")
    c = write_csv(generate(SimulationConfig(customers=60, days=14, seed=4)), tmp_path / "c" / "tx.csv")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    ja, jb = write_jsonl(generate(small), tmp_path / "a.jsonl"), write_jsonl(generate(small), tmp_path / "b.jsonl")
    assert ja.read_bytes() == jb.read_bytes()


# --------------------------------------------------------------------------- schema and shape


def test_every_row_passes_the_schema(rows):
    assert len(rows) > 10_000
    for row in rows:
        raw = {k: v for k, v in row.items() if k not in ("is_fraud", "fraud_scenario")}
        outcome = validate_transaction(raw, now=FAR_FUTURE)
        assert outcome.ok, (row, outcome.errors)


def test_columns_formats_and_vocabularies(result, rows):
    assert tuple(rows[0].keys()) == COLUMNS
    assert len(result) == len(rows)
    ts = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+01:00")
    for row in rows:
        assert ts.fullmatch(row["timestamp"])
        assert re.fullmatch(r"T\d+", row["transaction_id"])
        assert re.fullmatch(r"C\d{6}", row["customer_id"])
        assert re.fullmatch(r"M\d{6}", row["merchant_id"])
        assert re.fullmatch(r"D\d+", row["device_id"])
        assert row["currency"] == "NGN"
        assert row["merchant_category"] in MERCHANT_CATEGORIES
        assert row["channel"] in CHANNELS
        assert row["is_fraud"] == (1 if row["fraud_scenario"] else 0)
        assert row["fraud_scenario"] in ("", *SCENARIOS)
        assert round(row["transaction_amount"], 2) == row["transaction_amount"] > 0
    countries = [r["country"] for r in rows]
    assert countries.count("NG") / len(countries) > 0.97  # home country, rare foreign
    assert len(set(countries)) > 1


def test_rows_sorted_by_time_with_unique_ids(result, rows):
    times = [_epoch(r) for r in rows]
    assert all(a <= b for a, b in zip(times, times[1:]))
    assert np.array_equal(np.asarray(times, dtype=np.int64), result.epoch_seconds)
    ids = [r["transaction_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # numbered in time order
    assert times[0] >= datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() - 3600
    assert times[-1] < datetime(2026, 1, 31, tzinfo=timezone.utc).timestamp()


# --------------------------------------------------------------------------- behaviour


def test_legit_night_is_quieter_than_day(rows):
    hours = np.array([int(r["timestamp"][11:13]) for r in rows if not r["is_fraud"]])
    night_per_hour = np.isin(hours, range(0, 5)).sum() / 5
    day_per_hour = np.isin(hours, range(8, 21)).sum() / 13
    assert night_per_hour < 0.25 * day_per_hour


def test_weekends_differ_from_weekdays_per_customer(rows):
    by_customer = defaultdict(lambda: [0, 0])
    for r in rows:
        if not r["is_fraud"]:
            weekend = parse_timestamp(r["timestamp"]).weekday() >= 5
            by_customer[r["customer_id"]][weekend] += 1
    # 22 weekdays and 8 weekend days in January 2026: per-day ratios vary between customers
    ratios = [(we / 8) / (wd / 22) for wd, we in by_customer.values() if wd >= 20]
    assert np.percentile(ratios, 90) > 1.3 * np.percentile(ratios, 10)


def test_customers_differ_in_spending_level_and_activity(rows, legit_median):
    medians = np.array(list(legit_median.values()))
    assert np.percentile(medians, 90) > 5 * np.percentile(medians, 10)
    assert medians.min() < 5_000 and medians.max() > 50_000
    counts = np.array(list(Counter(r["customer_id"] for r in rows).values()))
    assert np.percentile(counts, 90) > 4 * np.percentile(counts, 10)


def test_customers_mostly_use_their_home_devices_and_usual_merchants(rows):
    devices, merchants = defaultdict(set), defaultdict(list)
    for r in rows:
        if not r["is_fraud"]:
            devices[r["customer_id"]].add(r["device_id"])
            merchants[r["customer_id"]].append(r["merchant_id"])
    assert max(len(d) for d in devices.values()) <= 4  # 1-3 home devices, maybe one replacement
    busy = [m for m in merchants.values() if len(m) >= 50]
    top5_share = [sum(c for _, c in Counter(m).most_common(5)) / len(m) for m in busy]
    assert np.median(top5_share) > 0.5
    owners = defaultdict(set)
    for r in rows:
        owners[r["merchant_id"]].add(r["customer_id"])
    assert max(len(c) for c in owners.values()) > 20  # merchants are shared between customers


# --------------------------------------------------------------------------- fraud


def test_default_fraud_rate_and_every_scenario_contributes(result, rows):
    fraud = [r for r in rows if r["is_fraud"]]
    rate = len(fraud) / len(rows)
    assert 0.005 <= rate <= 0.02
    assert abs(rate - 0.01) < 0.002
    counts = result.scenario_counts()
    assert sum(counts.values()) == len(fraud)
    for name in SCENARIOS:
        assert counts[name] >= 0.1 * len(fraud), counts


@pytest.mark.parametrize("asked", [0.005, 0.02])
def test_fraud_rate_follows_the_request(asked):
    got = generate(SimulationConfig(customers=200, days=21, seed=9, fraud_rate=asked)).fraud_rate
    assert 0.005 <= got <= 0.02
    assert abs(got - asked) < 0.15 * asked


def test_no_fraud_when_asked_for_none():
    result = generate(SimulationConfig(customers=50, days=7, fraud_rate=0.0))
    assert result.is_fraud.sum() == 0 and set(result.fraud_scenario.tolist()) == {""}


def test_account_takeover_new_device_at_night_with_large_amounts(result, rows, legit_median):
    takeover = _of(rows, "account_takeover")
    seen = defaultdict(list)  # customer -> [(time, device)] of legitimate use
    for r in rows:
        if not r["is_fraud"]:
            seen[r["customer_id"]].append((_epoch(r), r["device_id"]))
    for r in takeover:
        before = {d for t, d in seen[r["customer_id"]] if t <= _epoch(r)}
        assert r["device_id"] not in before
        assert r["transaction_amount"] > 3 * legit_median[r["customer_id"]]
    night = [r for r in takeover if int(r["timestamp"][11:13]) < 5]
    assert len(night) >= 0.7 * len(takeover)
    assert sum(r["channel"] in ("online", "transfer", "mobile") for r in takeover) == len(takeover)
    # 1-3 transactions per takeover, within an hour
    m = result.fraud_scenario == "account_takeover"
    for incident in np.unique(result.incident[m]):
        t = result.epoch_seconds[result.incident == incident]
        assert 1 <= len(t) <= 3 and t.max() - t.min() < 3600


def test_card_testing_bursts_of_small_amounts_within_minutes(result, rows):
    testing = _of(rows, "card_testing")
    assert all(50 <= r["transaction_amount"] <= 500 for r in testing)
    assert sum(r["channel"] == "online" for r in testing) >= 0.6 * len(testing)
    # Victims are distinct here, so a customer's card-testing rows are one burst.
    bursts = defaultdict(list)
    for r in testing:
        bursts[r["customer_id"]].append(_epoch(r))
    assert len(bursts) >= 3
    for times in bursts.values():
        assert 5 <= len(times) <= 20
        assert max(times) - min(times) <= 20 * 60
    m = result.fraud_scenario == "card_testing"
    assert len(np.unique(result.incident[m])) == len(bursts)


def test_compromised_merchant_fraud_concentrates_on_few_merchants(rows, legit_median):
    breached = _of(rows, "compromised_merchant")
    by_merchant = defaultdict(list)
    for r in breached:
        by_merchant[r["merchant_id"]].append(r)
    assert 1 <= len(by_merchant) <= 5
    known_devices = defaultdict(set)
    for r in rows:
        if not r["is_fraud"]:
            known_devices[r["customer_id"]].add(r["device_id"])
    for merchant, fraud in by_merchant.items():
        times = [_epoch(r) for r in fraud]
        lo, hi = min(times), max(times)
        window = [r for r in rows if r["merchant_id"] == merchant and lo <= _epoch(r) <= hi]
        share = sum(r["is_fraud"] for r in window) / len(window)
        assert 0.1 <= share <= 0.6, (merchant, share)
        assert hi - lo >= 86400  # a breach lasts days
        for r in fraud:  # ordinary-looking: the customer's own device, a higher amount
            assert r["device_id"] in known_devices[r["customer_id"]]
            assert r["transaction_amount"] > legit_median[r["customer_id"]]


def test_spending_spree_spends_big_and_fast_on_risky_categories(result, rows, legit_median):
    spree = _of(rows, "spending_spree")
    for r in spree:
        assert r["transaction_amount"] > 2 * legit_median[r["customer_id"]]
        assert r["merchant_category"] in ("electronics", "fashion", "travel", "gambling", "crypto")
    m = result.fraud_scenario == "spending_spree"
    legit_counts = defaultdict(int)
    for r in rows:
        if not r["is_fraud"]:
            legit_counts[r["customer_id"]] += 1
    for incident in np.unique(result.incident[m]):
        rows_of = result.incident == incident
        t = result.epoch_seconds[rows_of]
        assert t.max() - t.min() < 4 * 86400
        days_active = len(np.unique((t + 3600) // 86400))
        customer = result.customer_id[rows_of][0]
        assert len(t) / days_active > legit_counts[customer] / CONFIG.days


# --------------------------------------------------------------------------- API and CLI


def test_cli_writes_csv_and_jsonl_with_the_header(tmp_path, capsys):
    out, jsonl = tmp_path / "new" / "dir" / "tx.csv", tmp_path / "other" / "tx.jsonl"
    result = main(["--customers", "40", "--days", "10", "--seed", "2", "--out", str(out), "--jsonl-out", str(jsonl)])
    summary = capsys.readouterr().out.strip()
    assert "rows=" in summary and "fraud_rate=" in summary and "card_testing=" in summary and "\n" not in summary
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER and len(lines) == len(result) + 1
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == len(result)
    with open(out, newline="") as handle:
        for record, row in zip(records, csv.DictReader(handle)):
            assert list(record) == list(COLUMNS)
            assert isinstance(record["transaction_amount"], float) and isinstance(record["is_fraud"], int)
            assert record["transaction_amount"] == float(row["transaction_amount"])
            assert {k: str(v) for k, v in record.items() if k != "transaction_amount"} == \
                {k: v for k, v in row.items() if k != "transaction_amount"}


def test_cli_transactions_picks_the_number_of_customers(tmp_path, capsys):
    result = main(["--transactions", "20000", "--days", "20", "--out", str(tmp_path / "tx.csv")])
    assert 0.85 * 20000 <= len(result) <= 1.15 * 20000
    assert "customers=" in capsys.readouterr().out


def test_cli_needs_an_output_and_sane_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["--customers", "10"])
    with pytest.raises(SystemExit):
        main(["--customers", "10", "--fraud-rate", "0.9", "--out", str(tmp_path / "x.csv")])
    with pytest.raises(ValueError):
        generate(SimulationConfig(customers=0))
    with pytest.raises(ValueError):
        generate(SimulationConfig(scenario_shares={"phishing": 1.0}))
