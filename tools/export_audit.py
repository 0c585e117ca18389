"""Export the audit log for a time range to CSV (the seed's logs/transactions_log.csv).

    python -m tools.export_audit --start 2026-02-14 --end 2026-02-15 --out logs/transactions_log.csv

Dates are UTC (YYYY-MM-DD or full ISO 8601); the range is [start, end) by event time.
"""
from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime, timezone
from pathlib import Path

from shared.domain.decision_record import AUDIT_EXPORT_COLUMNS as EXPORT_COLUMNS, export_row


def parse_moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def export(audit, start: datetime, end: datetime, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted((export_row(e) for e in audit.read(start, end)), key=lambda r: (r["timestamp"], r["transaction_id"]))
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(EXPORT_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    from shared.composition import app_services

    parser = argparse.ArgumentParser(prog="python -m tools.export_audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--out", default="logs/transactions_log.csv")
    args = parser.parse_args(argv)
    count = export(app_services().audit, parse_moment(args.start), parse_moment(args.end), Path(args.out))
    print(f"exported {count} decisions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
