"""Dead-lettered events: list them, or replay them once the cause is fixed.

    python -m tools.dead_letters list
    python -m tools.dead_letters replay

Replaying scores each event at most once (transactions already applied are recognised by
id) and removes the letters of events now scored; letters still invalid stay, with reasons.
"""
from __future__ import annotations

import argparse
import json
import sys

from shared.service.dead_letter_replay import replay_dead_letters


def main(argv: list[str] | None = None) -> int:
    from shared.composition import app_services

    parser = argparse.ArgumentParser(prog="python -m tools.dead_letters", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["list", "replay"])
    args = parser.parse_args(argv)
    services = app_services()
    if args.command == "list":
        for name, document in services.dead_letters.items():
            reasons = "; ".join(f"{r['field']}: {r['problem']}" for r in document.get("reasons", []))
            print(f"{name}\t{document.get('raw_bytes')} bytes\t{reasons}")
        return 0
    print(json.dumps(replay_dead_letters(services.scoring, services.dead_letters).__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
