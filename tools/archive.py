"""The open decision archive, without the app: download its Parquet, query it with DuckDB.

    python -m tools.archive download --dest archive/ [--since 2026-11-20T09]
    python -m tools.archive query archive/
    python -m tools.archive compact [--now 2026-11-21T00:00]   # what the archive timer does

``download`` copies ``decisions/date=…/hour=…/part-NNNNN.parquet`` from the archive container
(``FRAUD_ARCHIVE_CONTAINER`` of the account in ``AzureWebJobsStorage``: Azurite locally, or
any account's connection string) to DEST keeping that layout, and skips files already there
with the same size (parts never change). ``query`` runs ``ARCHIVE_QUERY`` with DuckDB over
``DEST/decisions/*/*/*.parquet`` (hive partitioning: ``date`` and ``hour`` are columns).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ARCHIVE_QUERY = """
SELECT date, hour, model_version,
       count(*)                                  AS decisions,
       count(*) FILTER (WHERE action = 'block')  AS blocks,
       count(*) FILTER (WHERE action = 'review') AS reviews,
       round(avg(fraud_score), 4)                AS mean_score
FROM read_parquet('{root}/decisions/*/*/*.parquet', hive_partitioning = true, union_by_name = true)
GROUP BY ALL
ORDER BY date, hour, model_version
"""


def parse_moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def download(archive: Any, dest: Path, since: datetime | None = None) -> list[Path]:
    """Copy the archive's Parquet parts (of hours from ``since`` on) under ``dest``, same layout."""
    copied = []
    for name, size in archive.part_names(since):
        target = dest / name
        if target.exists() and target.stat().st_size == size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as handle:
            archive.download(name, handle)
        partial.replace(target)
        copied.append(target)
    return copied


def query(root: Path, sql: str = ARCHIVE_QUERY) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of ``sql`` (``{root}`` replaced) run by DuckDB in memory."""
    import duckdb

    with duckdb.connect() as con:
        result = con.execute(sql.format(root=Path(root).as_posix()))
        return [d[0] for d in result.description], result.fetchall()


def format_table(columns: list[str], rows: list[tuple]) -> list[str]:
    cells = [columns] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.archive", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    down = commands.add_parser("download", help="copy the archive's Parquet files to a local folder")
    down.add_argument("--dest", required=True)
    down.add_argument("--since", help="only hours from this UTC time on (YYYY-MM-DD[THH])")
    ask = commands.add_parser("query", help="run the DuckDB query over a downloaded archive")
    ask.add_argument("root")
    compact = commands.add_parser("compact", help="compact finished hours now, as the archive timer does")
    compact.add_argument("--now", help="as of this UTC time (default: the clock)")
    args = parser.parse_args(argv)
    if args.command == "query":
        for line in format_table(*query(Path(args.root))):
            print(line)
        return 0
    from shared.composition import app_services

    services = app_services()
    if args.command == "download":
        copied = download(services.decision_archive, Path(args.dest), parse_moment(args.since) if args.since else None)
        print(f"copied {len(copied)} Parquet files from {services.decision_archive.container_name} to {args.dest}")
    else:
        report = services.archive_compaction.run(now=parse_moment(args.now) if args.now else None)
        for done in report["compacted"]:
            print(f"{done['hour']} part {done['part']}: {done['rows']} decisions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
