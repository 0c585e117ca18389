"""The champion/challenger gate, pure: both models' scores on the same holdout in, a
decision (promote or not, and why) out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.domain.metrics import average_precision, threshold_report


@dataclass(frozen=True)
class PromotionGate:
    """Promote when average precision improves by ``min_ap_gain`` and recall at the alert
    threshold does not fall; with no compatible champion, promote."""

    min_ap_gain: float = 0.005

    @staticmethod
    def measure(y: np.ndarray, scores: np.ndarray, alert_threshold: float) -> dict[str, Any]:
        return {"average_precision": average_precision(y, scores),
                "recall_at_alert": threshold_report(y, scores, alert_threshold)["recall"]}

    def judge(self, y: np.ndarray, challenger_scores: np.ndarray, champion_scores: np.ndarray | None,
              alert_threshold: float, champion_version: str | None = None) -> dict[str, Any]:
        challenger = self.measure(y, challenger_scores, alert_threshold)
        if champion_scores is None:
            return {"challenger": challenger, "champion": None, "promoted": True, "reason": "no compatible champion"}
        incumbent = {"version": champion_version, **self.measure(y, champion_scores, alert_threshold)}
        gain = challenger["average_precision"] - incumbent["average_precision"]
        recall_new, recall_old = challenger["recall_at_alert"] or 0, incumbent["recall_at_alert"] or 0
        promote = gain >= self.min_ap_gain and recall_new >= recall_old
        reason = f"average precision {gain:+.4f}, recall at alert {recall_new:.3f} vs {recall_old:.3f}"
        return {"challenger": challenger, "champion": incumbent, "promoted": promote, "reason": reason}
