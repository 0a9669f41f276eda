"""Start-up cost of the CLI: `econash --help` and `econash list tasks` in fresh processes.

Lazy imports keep these fast even though econash depends on torch and three LLM SDKs.
Writes benchmarks/results/cli_startup.json (or --out) and prints a table.

    .venv/bin/python benchmarks/cli_startup.py [--repeats 5]
    .venv/bin/python benchmarks/cli_startup.py --smoke     # each command once, no warm-up: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import econash": [sys.executable, "-c", "import econash"],
    "econash --help": [sys.executable, "-m", "econash", "--help"],
    "econash list tasks": [sys.executable, "-m", "econash", "list", "tasks"],
    "econash plugins --json": [sys.executable, "-m", "econash", "plugins", "--json"],
}


def time_command(argv: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="each command once, without the warm-up run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.repeats = 1
    rows = []
    for name, argv in COMMANDS.items():
        if not args.smoke:
            time_command(argv, 1)  # warm the file cache
        times = time_command(argv, args.repeats)
        rows.append({"command": name, "median_s": statistics.median(times), "min_s": min(times),
                     "max_s": max(times), "repeats": args.repeats})
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / f"cli_startup{'_smoke' if args.smoke else ''}.json"
    out.write_text(json.dumps({"benchmark": "cli_startup", "smoke": args.smoke, "python": sys.version.split()[0],
                               "rows": rows}, indent=2))
    print(f"{'command':<26} {'median s':>9} {'min s':>7} {'max s':>7}")
    for row in rows:
        print(f"{row['command']:<26} {row['median_s']:>9.3f} {row['min_s']:>7.3f} {row['max_s']:>7.3f}")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
