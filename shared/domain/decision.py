"""Decisions: risk level, action, reasons a person understands, and the rules layer.

Pure functions over plain data: a score, the transaction and its feature vector in;
a ``Verdict`` out. Rules can raise the risk, never lower it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from shared.domain.features import MISSING, feature_index
from shared.domain.transaction import Transaction

RISK_ORDER = ("Low", "Medium", "High")
ACTIONS = {"Low": "approve", "Medium": "review", "High": "block"}
MAX_REASONS = 3


@dataclass(frozen=True)
class Thresholds:
    high: float = 0.8
    medium: float = 0.5
    alert: float = 0.7  # is_fraud (the seed's second API)

    @classmethod
    def resolve(cls, manifest: Mapping[str, float], overrides: Mapping[str, float | None]) -> "Thresholds":
        """Manifest values, then app-setting overrides where set."""
        values = {k: float(manifest[k]) for k in ("high", "medium", "alert") if k in manifest}
        values.update({k: float(v) for k, v in overrides.items() if v is not None})
        thresholds = cls(**values)
        if not 0 <= thresholds.medium <= thresholds.high <= 1:
            raise ValueError(f"thresholds must satisfy 0 <= medium <= high <= 1, got {thresholds}")
        return thresholds

    def as_dict(self) -> dict[str, float]:
        return {"high": self.high, "medium": self.medium, "alert": self.alert}

    def risk_level(self, score: float) -> str:
        if score > self.high:
            return "High"
        if score > self.medium:
            return "Medium"
        return "Low"


class RulesError(ValueError):
    pass


@dataclass(frozen=True)
class DecisionRules:
    """Bank-configured rules: block-lists and per-channel amount ceilings."""

    blocked_customers: frozenset[str] = frozenset()
    blocked_devices: frozenset[str] = frozenset()
    channel_ceilings: Mapping[str, float] = field(default_factory=dict)
    ceiling_risk: str = "Medium"

    @classmethod
    def from_json(cls, text: str | bytes | None) -> "DecisionRules":
        """Parse the rules document; an invalid one is an error, never silently ignored.

        {"block_customers": ["C1"], "block_devices": ["D9"],
         "channel_ceilings": {"atm": 200000, "transfer": 5000000}, "ceiling_risk": "Medium"}
        """
        if not text:
            return cls()
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise RulesError(f"rules are not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise RulesError("rules must be a JSON object")
        unknown = set(doc) - {"block_customers", "block_devices", "channel_ceilings", "ceiling_risk"}
        if unknown:
            raise RulesError(f"unknown rule keys: {sorted(unknown)}")
        ceilings = doc.get("channel_ceilings", {})
        if not isinstance(ceilings, dict) or not all(isinstance(v, (int, float)) and v > 0 for v in ceilings.values()):
            raise RulesError("channel_ceilings must map channel to a positive amount")
        ceiling_risk = doc.get("ceiling_risk", "Medium")
        if ceiling_risk not in RISK_ORDER:
            raise RulesError(f"ceiling_risk must be one of {RISK_ORDER}")
        return cls(
            frozenset(map(str, doc.get("block_customers", []))),
            frozenset(map(str, doc.get("block_devices", []))),
            {str(k): float(v) for k, v in ceilings.items()},
            ceiling_risk,
        )

    def fired(self, txn: Transaction) -> list[tuple[str, str, str]]:
        """(rule id, minimum risk level, reason) for every rule the transaction trips."""
        hits = []
        if txn.customer_id in self.blocked_customers:
            hits.append(("blocked_customer", "High", "customer is on the block-list"))
        if txn.device_id and txn.device_id in self.blocked_devices:
            hits.append(("blocked_device", "High", "device is on the block-list"))
        ceiling = self.channel_ceilings.get(txn.channel or "")
        if ceiling is not None and txn.transaction_amount > ceiling:
            hits.append(
                (f"ceiling_{txn.channel}", self.ceiling_risk,
                 f"amount {txn.transaction_amount:,.0f} is over the {txn.channel} ceiling of {ceiling:,.0f}")
            )
        return hits


@dataclass(frozen=True)
class Verdict:
    risk_level: str
    action: str
    is_fraud: bool
    reasons: tuple[str, ...]
    rules_fired: tuple[str, ...]


def _f(features: Sequence[float], name: str) -> float:
    return float(features[feature_index(name)])


def explain(txn: Transaction, features: Sequence[float]) -> list[tuple[float, str]]:
    """Candidate reasons with a strength, strongest first; each quotes the evidence."""
    reasons: list[tuple[float, str]] = []
    ratio30 = _f(features, "amount_to_mean_30d")
    if ratio30 != MISSING and ratio30 >= 3:
        reasons.append((ratio30, f"amount {ratio30:.0f}× the 30-day average"))
    ratio_max = _f(features, "amount_to_max_30d")
    if ratio_max != MISSING and ratio_max > 1.5 and ratio30 < 3:
        reasons.append((ratio_max * 1.5, f"amount {ratio_max:.1f}× the largest in 30 days"))
    history = _f(features, "history_count")
    if _f(features, "is_new_device") == 1.0:
        reasons.append((8.0, "first transaction from this device"))
    share = _f(features, "hour_share")
    if history >= 10 and share != MISSING and share < 0.03:
        hour = txn.timestamp.strftime("%H:00")
        reasons.append((7.0 - share * 100, f"{hour} is outside this customer's usual hours"))
    count_1h = _f(features, "count_1h")
    if count_1h >= 4:
        reasons.append((count_1h, f"{count_1h:.0f} transactions in the last hour"))
    count_24h = _f(features, "count_24h")
    mean_daily = _f(features, "count_30d") / 30.0
    if count_24h >= 6 and count_24h > 3 * max(mean_daily, 1.0) and count_1h < 4:
        reasons.append((count_24h / max(mean_daily, 1.0), f"{count_24h:.0f} transactions in 24 hours, usually {mean_daily:.1f} a day"))
    if _f(features, "is_new_merchant") == 1.0 and _f(features, "is_new_category") == 1.0:
        reasons.append((3.0, f"first purchase in category '{txn.merchant_category}'"))
    elif _f(features, "is_new_merchant") == 1.0:
        reasons.append((2.0, "first transaction with this merchant"))
    if _f(features, "is_new_country") == 1.0:
        reasons.append((5.0, f"first transaction from country {txn.country}"))
    if history == 0:
        reasons.append((1.0, "no earlier transactions for this customer"))
    reasons.sort(key=lambda r: -r[0])
    return reasons


@dataclass(frozen=True)
class DecisionPolicy:
    thresholds: Thresholds = Thresholds()
    rules: DecisionRules = DecisionRules()

    def decide(self, txn: Transaction, score: float, features: Sequence[float]) -> Verdict:
        level = self.thresholds.risk_level(score)
        fired = self.rules.fired(txn)
        rule_reasons = []
        for rule_id, minimum, reason in fired:
            if RISK_ORDER.index(minimum) > RISK_ORDER.index(level):
                level = minimum
            rule_reasons.append(f"rule {rule_id}: {reason}")
        reasons: list[str] = rule_reasons[:MAX_REASONS]
        if level != "Low":
            for _, text in explain(txn, features):
                if len(reasons) >= MAX_REASONS:
                    break
                reasons.append(text)
            if not reasons:
                reasons.append(f"model score {score:.2f}")
        return Verdict(
            risk_level=level,
            action=ACTIONS[level],
            is_fraud=bool(score > self.thresholds.alert or (fired and level == "High")),
            reasons=tuple(reasons),
            rules_fired=tuple(r[0] for r in fired),
        )

