"""The HTTP contract is derived from the validators (one definition): functions/openapi.json
is what ``python -m tools.openapi`` writes, and the schema and the validator agree."""
from datetime import datetime, timezone

import jsonschema
import pytest

from shared.domain.labels import label_json_schema, parse_label
from shared.domain.transaction import transaction_json_schema, validate_transaction
from tools import openapi

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
GOOD = {"customer_id": "C1", "transaction_amount": 120.5, "timestamp": "2026-11-28T10:00:00+01:00"}


def test_the_openapi_file_is_derived_from_the_validators():
    assert openapi.main(["--check"]) == 0, "functions/openapi.json is out of date: run python -m tools.openapi"


@pytest.mark.parametrize("body, valid", [
    (GOOD, True),
    ({**GOOD, "channel": "ATM", "country": "ng", "currency": "usd"}, True),
    ({**GOOD, "transaction_id": None, "device_id": None, "country": ""}, True),
    ({**GOOD, "customer_id": "has space"}, False),
    ({**GOOD, "transaction_amount": 0.001}, False),
    ({**GOOD, "transaction_amount": 2e9}, False),
    ({**GOOD, "channel": "carrier-pigeon"}, False),
    ({**GOOD, "country": "NGA"}, False),
    ({**GOOD, "merchant_category": ""}, False),
    ({"transaction_amount": 5.0}, False),
])
def test_schema_and_validator_agree_on_transactions(body, valid):
    by_validator = validate_transaction(body, now=NOW, fill_missing=True).ok
    by_schema = jsonschema.Draft202012Validator(transaction_json_schema()).is_valid(body)
    assert by_validator == by_schema == valid


@pytest.mark.parametrize("body, valid", [
    ({"transaction_id": "T1", "label": "fraud"}, True),
    ({"transaction_id": "T1", "label": True, "customer_id": "", "labelled_at": None}, True),
    ({"transaction_id": "T 1", "label": 1}, False),
    ({"label": 0}, False),
    ({"transaction_id": "T1", "label": "1", "customer_id": "C/1"}, False),
])
def test_schema_and_parser_agree_on_labels(body, valid):
    by_parser = parse_label(body, "api")[0] is not None
    by_schema = jsonschema.Draft202012Validator(label_json_schema()).is_valid(body)
    assert by_parser == by_schema == valid
