"""The baselines the benchmarks compare against (never used by the app).

* ``SeedScorer``: the seed's FastAPI handler — per request a pandas DataFrame, wall-clock
  time features, and a pickled scikit-learn model.
* ``NaiveStreamScorer``: a per-event Event Hub implementation as commonly written:
  for each event, query the customer's last 30 days of transactions from Table Storage,
  replay them to compute the features, score one row, write the transaction and the
  audit entry separately.
"""
from __future__ import annotations

import json
import pickle
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from shared.domain.features import CustomerProfile, features_then_record
from shared.domain.transaction import Transaction, validate_transaction


class SeedScorer:
    """The seed's /predict, made runnable: DataFrame per request + pickled sklearn model."""

    def __init__(self, sklearn_model: Any, feature_list: list[str]) -> None:
        self.model = pickle.loads(pickle.dumps(sklearn_model))  # as if joblib.load("fraud_model.pkl")
        self.feature_list = feature_list

    def predict(self, transaction: dict[str, Any]) -> dict[str, Any]:
        import pandas as pd

        df = pd.DataFrame([transaction])
        df["hour"] = datetime.now().hour
        df["is_weekend"] = datetime.now().weekday() >= 5
        df["amount_deviation"] = df["transaction_amount"] / (df.get("avg_txn_amount_7d", 1) + 1e-6)
        df = df.reindex(columns=self.feature_list, fill_value=0)
        prob = self.model.predict_proba(df)[:, 1][0]
        risk_level = "High" if prob > 0.8 else "Medium" if prob > 0.5 else "Low"
        return {"fraud_probability": float(prob), "risk_level": risk_level}


class NaiveStreamScorer:
    """Per event: read 30 days of the customer's history, replay, score one row, write twice."""

    def __init__(self, table_service: Any, model: Any, table_name: str) -> None:
        self.model = model
        try:
            table_service.create_table(table_name)
        except Exception:
            pass
        self.table = table_service.get_table_client(table_name)

    def score(self, raw: dict[str, Any]) -> float:
        outcome = validate_transaction(raw, now=datetime(9999, 1, 1, tzinfo=timezone.utc))
        txn = outcome.transaction
        since = (txn.timestamp - timedelta(days=30)).isoformat()
        history = self.table.query_entities(
            "PartitionKey eq @pk and timestamp_iso ge @since", parameters={"pk": txn.customer_id, "since": since})
        past = sorted((json.loads(e["body"]) for e in history), key=lambda b: b["timestamp"])
        profile = CustomerProfile()
        for body in past:
            profile.apply(validate_transaction(body, now=datetime(9999, 1, 1, tzinfo=timezone.utc)).transaction)
        features = np.asarray([features_then_record(profile, txn)], dtype=np.float32)
        score = float(self.model.predict(features)[0])
        self.table.upsert_entity({"PartitionKey": txn.customer_id, "RowKey": txn.transaction_id,
                                  "timestamp_iso": txn.timestamp.isoformat(), "body": json.dumps(raw)})
        self.table.upsert_entity({"PartitionKey": "audit", "RowKey": txn.transaction_id, "score": score})
        return score


def transaction_at(i: int, customer: str, when: datetime, amount: float = 15000.0) -> dict[str, Any]:
    return {"transaction_id": f"B{customer}-{i}", "customer_id": customer, "transaction_amount": amount,
            "currency": "NGN", "timestamp": when.isoformat(), "device_id": f"D{i % 3}", "merchant_id": f"M{i % 40}",
            "merchant_category": "grocery", "channel": "pos", "country": "NG"}


def as_transaction(raw: dict[str, Any]) -> Transaction:
    return validate_transaction(raw, now=datetime(9999, 1, 1, tzinfo=timezone.utc)).transaction
