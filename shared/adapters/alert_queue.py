"""Alerts on High decisions: a Storage Queue adapter and an optional webhook.

Queue messages are base64-encoded JSON (the encoding Functions' queue trigger expects),
so a downstream function or a case-management system can consume ``fraud-alerts``; they
carry what a case needs and no personal identifier (``DecisionRecord.alert_message``).
The webhook (Teams-style) is posted from a small background pool with retries, off the
decision's critical path.
"""
from __future__ import annotations

import json
import logging
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from shared.adapters.storage_account import create_if_missing
from shared.domain.decision_record import DecisionRecord
from shared.domain.pseudonym import Pseudonyms

log = logging.getLogger(__name__)


class AlertQueue:
    def __init__(self, queue_service: Any, queue_name: str = "fraud-alerts") -> None:
        self._queue = queue_service.get_queue_client(
            queue_name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )

    def ensure_queue(self) -> None:
        create_if_missing(self._queue.create_queue)

    def send(self, record: DecisionRecord) -> None:
        self._queue.send_message(json.dumps(record.alert_message()))

    def count(self) -> int:
        return int(self._queue.get_queue_properties().approximate_message_count or 0)

    def peek(self, max_messages: int = 32) -> list[dict[str, Any]]:
        return [json.loads(m.content) for m in self._queue.peek_messages(max_messages=max_messages)]

    def receive_all(self) -> list[dict[str, Any]]:
        """Drain the queue (tests and local tools)."""
        out = []
        while True:
            batch = list(self._queue.receive_messages(messages_per_page=32, max_messages=32))
            if not batch:
                return out
            for m in batch:
                out.append(json.loads(m.content))
                self._queue.delete_message(m)


class AlertWebhook:
    """POST alerts to a webhook with bounded retries, in the background.

    The webhook leaves the bank (a Teams channel): its card names the customer by their keyed
    pseudonym only (``DecisionRecord.webhook_message``), never a raw customer or device id."""

    def __init__(self, url: str, pseudonyms: Pseudonyms, attempts: int = 4, timeout: float = 5.0) -> None:
        self.url = url
        self.pseudonyms = pseudonyms
        self.attempts = attempts
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alert-webhook")

    def _card(self, record: DecisionRecord) -> bytes:
        message = record.webhook_message(self.pseudonyms.customer(record.customer_id))
        reasons = "; ".join(message["reasons"])
        text = (f"**{message['risk_level']} risk** transaction {message['transaction_id']} of customer "
                f"{message['customer_pseudonym']}: score {message['fraud_score']:.2f}, action {message['action']}. {reasons}")
        return json.dumps({"text": text, "alert": message}).encode()

    def post_now(self, record: DecisionRecord) -> bool:
        body = self._card(record)
        for attempt in range(self.attempts):
            try:
                request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        return True
            except Exception as exc:  # network errors of every kind: retry, then log
                log.warning("alert webhook attempt %d failed: %s", attempt + 1, exc)
            time.sleep(min(0.5 * 2 ** attempt, 8.0))
        log.error("alert webhook gave up on transaction %s", record.transaction_id)
        return False

    def post(self, record: DecisionRecord):
        return self._pool.submit(self.post_now, record)
