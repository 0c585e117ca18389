"""The evaluation protocol (shared.domain.metrics' card precision@k, training/evaluate.py) on
hand-computed toy cases, and the CLI end to end on a tiny CSV."""
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.domain import metrics
from training import evaluate as ev

ROOT = Path(__file__).resolve().parents[2]

# Card precision toy: two days, k = 2.
# day 0: A has two transactions (0.9 legit, 0.2 fraud) -> A counts once, at 0.9, as compromised;
#        B 0.8 legit; C 0.7 fraud.  Top 2 customers: A (fraud), B (legit) -> 1/2.
#        (Per transaction the top 2 would be A's 0.9 legit and B's 0.8 legit -> 0.)
# day 1: A 0.95 and C 0.99 (both legit today, but both had fraud on day 0: removed);
#        B 0.6 legit; D 0.5 fraud.  Ranked B, D -> 1/2.
CUSTOMERS = np.array(["A", "A", "B", "C", "A", "C", "B", "D"])
DAYS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
SCORES = np.array([0.9, 0.2, 0.8, 0.7, 0.95, 0.99, 0.6, 0.5])
Y = np.array([0, 1, 0, 1, 0, 0, 0, 1])


def test_card_precision_counts_a_customer_once_at_its_highest_score():
    result = metrics.card_precision_at_k(CUSTOMERS, DAYS, SCORES, Y, 2)
    day0, day1 = result.per_day
    assert (day0.customers, day0.ranked, day0.taken, day0.compromised_in_top_k, day0.precision) == (3, 3, 2, 1, 0.5)
    assert metrics.top_k_precision_per_day(Y[:4], SCORES[:4], DAYS[:4], 2) == 0.0  # the transaction view
    assert result.mean == pytest.approx(0.5)
    assert metrics.card_precision_at_k_per_day(CUSTOMERS, DAYS, SCORES, Y, 2) == pytest.approx(0.5)


def test_a_customer_compromised_on_an_earlier_day_is_removed_later():
    day1 = metrics.card_precision_at_k(CUSTOMERS, DAYS, SCORES, Y, 2).per_day[1]
    assert (day1.customers, day1.excluded, day1.ranked, day1.compromised_in_top_k, day1.precision) == (4, 2, 2, 1, 0.5)
    # without the removal, day 1's top 2 are C (0.99) and A (0.95), neither fraudulent that day
    assert metrics.card_precision_at_k_per_day(CUSTOMERS, DAYS, SCORES, Y, 2, exclude="none") == pytest.approx(0.25)
    # the handbook's variant: only A was caught in day 0's top 2, so C (0.99) stays on day 1
    assert metrics.card_precision_at_k_per_day(CUSTOMERS, DAYS, SCORES, Y, 2, exclude="detected") == pytest.approx(0.25)


def test_known_compromised_customers_are_removed():
    # B known compromised on every day: day 0 ranks A, C (both fraud) -> 1; day 1 ranks D only -> 1
    assert metrics.card_precision_at_k_per_day(CUSTOMERS, DAYS, SCORES, Y, 2, {"B"}) == pytest.approx(1.0)
    # known only from day 1: day 0 as before (1/2), day 1 -> D alone -> 1
    result = metrics.card_precision_at_k(CUSTOMERS, DAYS, SCORES, Y, 2, {"B": 1})
    assert [d.precision for d in result.per_day] == [0.5, 1.0] and result.mean == pytest.approx(0.75)


def test_days_with_no_customer_left_are_skipped():
    result = metrics.card_precision_at_k(["A", "A"], [0, 1], [0.9, 0.9], [1, 0], 5)
    assert [d.precision for d in result.per_day] == [1.0, None]
    assert result.mean == 1.0 and result.to_dict()["days_scored"] == 1
    assert metrics.card_precision_at_k([], [], [], [], 5).mean is None


def test_summarize_reports_card_precision_only_with_customers():
    thresholds = {"medium": 0.5, "high": 0.8}
    without = metrics.summarize(Y, SCORES, DAYS, thresholds, 2)
    assert without["card_precision_top2_per_day"] is None and "precision_top2_per_day" in without
    assert metrics.summarize(Y, SCORES, DAYS, thresholds, 2, customers=CUSTOMERS)["card_precision_top2_per_day"] == 0.5


def test_calibration_brier_ece_and_band_gaps_by_hand():
    s = np.array([0.1, 0.1, 0.3, 0.3, 0.6, 0.6, 0.9, 0.9])
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    report = ev.calibration_report(y, s, bins=10, min_band_rows=2)
    assert report["brier"] == pytest.approx((0.01 + 0.01 + 0.09 + 0.49 + 0.36 + 0.16 + 0.01 + 0.01) / 8)
    assert report["ece"] == pytest.approx((2 * 0.1 + 2 * 0.2 + 2 * 0.1 + 2 * 0.1) / 8)
    bands = {b["band"]: b for b in report["bands"]}
    assert bands["0.2-0.5"]["rows"] == 2 and bands["0.2-0.5"]["observed_rate"] == 0.5
    assert bands["0.2-0.5"]["abs_gap"] == pytest.approx(0.2)
    assert bands["0.5-0.8"]["abs_gap"] == pytest.approx(0.1) and bands["0.8-1"]["abs_gap"] == pytest.approx(0.1)
    assert report["max_band_gap"] == pytest.approx(0.2)
    assert sum(b["rows"] for b in report["bins"]) == 8
    # with the default 30-row minimum no band counts
    default = ev.calibration_report(y, s)
    assert not any(b["counts"] for b in default["bands"]) and default["max_band_gap"] is None


def test_band_edges_follow_the_risk_levels():
    # lower < score <= upper: 0.5 is in 0.2-0.5 (not Medium), 0.2 in no band, 1.0 in 0.8-1
    bands = {b["band"]: b["rows"] for b in ev.calibration_report([0, 0, 1], [0.2, 0.5, 1.0])["bands"]}
    assert bands == {"0.2-0.5": 1, "0.5-0.8": 0, "0.8-1": 1}


MIN = 60.0


def _ttd_case():
    rows = [  # customer, minutes, score, fraud
        ("A", 0, 0.1, 0),
        ("A", 10, 0.3, 1),  # incident starts
        ("A", 20, 0.4, 1),
        ("A", 30, 0.9, 1),  # flagged: 20 minutes, 2 frauds went through before
        ("A", 40, 0.2, 1),
        ("B", 0, 0.1, 1),  # never flagged during the incident
        ("B", 5, 0.45, 1),
        ("B", 10 * 24 * 60, 0.99, 0),  # flagged 10 days later: after the incident
        ("C", 0, 0.2, 1),
        ("C", 1, 0.6, 0),  # a legitimate transaction flagged: the customer is caught after 1 minute
        ("C", 2, 0.3, 1),
        ("D", 0, 0.5, 1),  # exactly the threshold: not flagged (score > threshold)
        ("D", 3, 0.51, 1),
    ]
    customers = np.array([r[0] for r in rows])
    times = np.array([r[1] * MIN for r in rows], dtype=float) + 1_770_000_000
    scores = np.array([r[2] for r in rows])
    fraud = np.array([r[3] for r in rows])
    return customers, times, scores, fraud


def test_time_to_detection_by_hand():
    customers, times, scores, fraud = _ttd_case()
    result = ev.time_to_detection(None, customers, times, scores, 0.5, fraud)
    per = {d["customer"]: d for d in result["per_incident"]}
    assert (per["A"]["detected"], per["A"]["minutes"], per["A"]["frauds_before_detection"]) == (True, 20.0, 2)
    assert (per["B"]["detected"], per["B"]["minutes"], per["B"]["frauds_before_detection"]) == (False, None, 2)
    assert (per["C"]["minutes"], per["C"]["frauds_before_detection"]) == (1.0, 1)
    assert (per["D"]["minutes"], per["D"]["frauds_before_detection"]) == (3.0, 1)
    assert result["incidents"] == 4 and result["detected"] == 3 and result["undetected"] == 1
    assert result["detected_share"] == 0.75
    assert result["median_minutes"] == 3.0 and result["median_frauds_before_detection"] == 1.0
    assert result["frauds_before_detection"] == 4 and result["frauds_in_undetected"] == 2
    # counting any later flag: B is caught 10 days after its first fraud, after both frauds
    late = ev.time_to_detection(None, customers, times, scores, 0.5, fraud, after_last_fraud_days=math.inf)
    b = [d for d in late["per_incident"] if d["customer"] == "B"][0]
    assert b["minutes"] == 10 * 24 * 60 and b["frauds_before_detection"] == 2 and late["undetected"] == 0


def test_incidents_from_ids_and_from_the_seven_day_gap():
    day = 86400.0
    customers = np.array(["E", "E", "E", "F", "G"])
    times = np.array([0, 5 * day, 15 * day, 0, 0]) + 1_770_000_000
    fraud = np.array([1, 1, 1, 1, 1])
    # no ids: E's frauds at day 0 and 5 are one incident, day 15 (10 days later) another
    groups = ev.fraud_incidents(customers, times, fraud)
    assert sorted(len(g) for g in groups) == [1, 1, 1, 2]
    # ids: one id across F and G (a breached merchant) is one incident per customer; missing ids fall back
    ids = ["7", "7", "", "9", "9"]
    groups = ev.fraud_incidents(customers, times, fraud, ids)
    assert sorted(tuple(g.tolist()) for g in groups) == [(0, 1), (2,), (3,), (4,)]


def test_money_view_by_hand():
    amounts = np.array([100, 200, 300, 400, 50, 60.0])
    y = np.array([1, 1, 1, 0, 0, 1])
    s = np.array([0.9, 0.6, 0.1, 0.85, 0.7, 0.5])
    m = ev.money_view(amounts, y, s, 0.5, 0.8, cost_per_alert=10, cost_per_block=50)
    assert m["fraud_amount"] == 660 and m["fraud_amount_blocked"] == 100 and m["fraud_amount_reviewed"] == 200
    assert m["fraud_amount_missed"] == 360  # 300 at 0.1 and 60 at exactly 0.5
    assert m["share_fraud_amount_blocked"] == pytest.approx(100 / 660)
    assert m["share_fraud_amount_reviewed"] == pytest.approx(200 / 660)
    assert m["money_weighted_recall"] == pytest.approx(300 / 660)
    assert (m["alerts"], m["false_positive_reviews"], m["blocks"], m["false_positive_blocks"]) == (2, 1, 2, 1)
    assert (m["review_cost"], m["false_positive_review_cost"], m["false_block_cost"], m["total_cost"]) == (20, 10, 50, 70)
    assert m["legit_amount_blocked"] == 400


def test_scenario_recall_by_hand():
    y = np.array([1, 1, 1, 0, 1])
    s = np.array([0.9, 0.6, 0.1, 0.99, 0.3])
    table = ev.scenario_recall(y, s, ["ato", "ato", "ato", "", ""], {"review": 0.5, "block": 0.8}, names=["card_testing"])
    assert table["ato"] == {"fraud_rows": 3, "recall_review": pytest.approx(2 / 3), "recall_block": pytest.approx(1 / 3)}
    assert table["unspecified"] == {"fraud_rows": 1, "recall_review": 0.0, "recall_block": 0.0}
    assert table["card_testing"] == {"fraud_rows": 0, "recall_review": None, "recall_block": None}


def test_evaluate_is_json_serialisable_and_renders_side_by_side():
    customers, times, scores, fraud = _ttd_case()
    amounts = np.full(scores.size, 100.0)
    kwargs = dict(times=times, customers=customers, amounts=amounts, scenarios=["x"] * scores.size, k=2)
    a = ev.evaluate(fraud, scores, **kwargs)
    b = ev.evaluate(fraud, 1 - scores, **kwargs)
    json.dumps(a)
    assert a["rows"] == 13 and a["positives"] == 10 and a["time_to_detection"]["detected"] == 3
    assert set(a["at_thresholds"]) == {"review", "block"} and a["card_precision_top2_per_day"] is not None
    md = ev.render_markdown({"model": a, "logistic_regression": b}, ["pr_curves.png"], title="Test")
    assert "| metric | model | logistic_regression |" in md and "![pr curves](pr_curves.png)" in md
    assert ev.render_markdown(a).startswith("## Evaluation")
    bare = ev.evaluate(fraud, scores)  # only labels and scores
    assert bare["time_to_detection"] is None and bare["money"] is None and bare["precision_top100_per_day"] is None


def _write_tiny_data(folder: Path) -> tuple[Path, Path]:
    data = folder / "transactions.csv"
    rows = []
    for i in range(24):
        customer = f"c{i % 4}"
        day = 1 + i // 12
        fraud = 1 if i in (1, 5, 3, 7) else 0  # c1 at 09:00, 13:00; c3 at 11:00, 15:00 (day 1)
        rows.append({"transaction_id": f"t{i}", "customer_id": customer,
                     "timestamp": f"2026-03-0{day}T{(i % 12) + 8:02d}:00:00+00:00", "transaction_amount": 100 + 10 * i,
                     "is_fraud": fraud, "fraud_scenario": "card_testing" if fraud else "",
                     "fraud_incident": (1 if customer == "c1" else 2) if fraud else ""})
    with open(data, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    scores = folder / "scores.csv"
    with open(scores, "w") as handle:
        handle.write("transaction_id,score\n")
        for r in rows:
            handle.write(f"{r['transaction_id']},{0.85 if r['is_fraud'] and r['customer_id'] == 'c1' else 0.1 + 0.01 * int(r['transaction_id'][1:])}\n")
    return data, scores


def test_cli_end_to_end(tmp_path):
    data, scores = _write_tiny_data(tmp_path)
    other = tmp_path / "lr.csv"
    other.write_text(scores.read_text().replace(",0.85", ",0.55"))
    out = tmp_path / "eval"
    result = subprocess.run([sys.executable, "-m", "training.evaluate", "--scores", str(scores), "--data", str(data),
                             "--out", str(out), "--k", "2", "--compare", f"logistic_regression={other}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"]["rows"] == 24 and summary["model"]["positives"] == 4
    assert set(summary) == {"model", "logistic_regression"}
    report = (out / "report.md").read_text()
    for png in ("pr_curves.png", "reliability.png", "score_distributions.png"):
        assert (out / png).stat().st_size > 1000 and f"({png})" in report
    full = json.loads((out / "evaluation.json").read_text())
    ttd = full["model"]["time_to_detection"]
    # incident 1 (c1, flagged at once) detected, incident 2 (c3: scores 0.13, 0.17, then <= 0.33) not
    assert (ttd["incidents"], ttd["detected"], ttd["median_minutes"]) == (2, 1, 0.0)
    assert full["model"]["by_scenario"]["card_testing"]["fraud_rows"] == 4


def test_cli_missing_ids_is_a_clear_error(tmp_path):
    data, scores = _write_tiny_data(tmp_path)
    scores.write_text(scores.read_text() + "nope,0.5\n")
    result = subprocess.run([sys.executable, "-m", "training.evaluate", "--scores", str(scores), "--data", str(data)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "1 of 25 scored transaction ids are not in" in result.stderr and "nope" in result.stderr


def test_the_scoring_path_never_imports_matplotlib():
    code = ("import sys, shared.domain.metrics, shared.domain.model, training.evaluate; "
            "print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
    assert "matplotlib" not in (ROOT / "requirements.txt").read_text()


def _handbook_card_precision(customers, days, scores, y, top_k):
    """The handbook's card_precision_top_k (Le Borgne et al., chapter 4), transcribed in pandas:
    cards caught in an earlier day's top k are removed; precision divides by top_k."""
    import pandas as pd

    df = pd.DataFrame({"CUSTOMER_ID": customers, "TX_TIME_DAYS": days, "predictions": scores, "TX_FRAUD": y})
    detected, per_day = [], []
    for day in sorted(df.TX_TIME_DAYS.unique()):
        day_df = df[df.TX_TIME_DAYS == day][["predictions", "CUSTOMER_ID", "TX_FRAUD"]]
        day_df = day_df[~day_df.CUSTOMER_ID.isin(detected)]
        day_df = day_df.groupby("CUSTOMER_ID").max().sort_values(by="predictions", ascending=False).reset_index()
        top = day_df.head(top_k)
        caught = list(top[top.TX_FRAUD == 1].CUSTOMER_ID)
        per_day.append(len(caught) / top_k)
        detected.extend(caught)
    return np.mean(per_day)


def test_card_precision_matches_the_handbook_code_on_random_data():
    rng = np.random.default_rng(3)
    n = 3000
    customers = np.array([f"C{i:03d}" for i in rng.integers(0, 150, n)])
    days = rng.integers(0, 10, n)
    y = (rng.random(n) < 0.05).astype(int)
    scores = np.clip(rng.random(n) * 0.7 + 0.3 * y, 0, 1)  # no ties (continuous)
    ours = metrics.card_precision_at_k_per_day(customers, days, scores, y, 20, exclude="detected")
    assert ours == pytest.approx(_handbook_card_precision(customers, days, scores, y, 20))  # >= 20 customers every day
