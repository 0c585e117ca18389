"""Write the transaction and label schemas of functions/openapi.json from the validators.

    python -m tools.openapi           # rewrite functions/openapi.json
    python -m tools.openapi --check   # exit 1 if it is out of date (tests run the same check)

The validators (``shared.domain.transaction``, ``shared.domain.labels``) are the one
definition of what the API accepts; the OpenAPI description is derived from them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.domain.labels import label_json_schema
from shared.domain.transaction import transaction_json_schema

SPEC = Path(__file__).resolve().parent.parent / "functions" / "openapi.json"


def derived(document: dict) -> dict:
    schemas = document["components"]["schemas"]
    return {**document, "components": {**document["components"], "schemas": {
        **schemas, "Transaction": transaction_json_schema(), "Label": label_json_schema()}}}


def render(document: dict) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date")
    args = parser.parse_args(argv)
    current = SPEC.read_text(encoding="utf-8")
    wanted = render(derived(json.loads(current)))
    if args.check:
        if current != wanted:
            print(f"{SPEC} is out of date: run python -m tools.openapi", file=sys.stderr)
            return 1
        return 0
    SPEC.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
