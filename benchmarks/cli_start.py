"""How long `dlautoml --help` takes, against the interpreter's own start-up measured in the same run.

    .venv/bin/python benchmarks/cli_start.py [--repeats 10]

Prints the median wall-clock time of each and their ratio: the command line's own cost is the
difference (its imports: typer, pydantic and the parameter models, numpy).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    repeats = parser.parse_args().repeats
    baseline = _median_seconds([sys.executable, "-c", "pass"], repeats)
    help_time = _median_seconds([sys.executable, "-m", "dlautoml.cli", "--help"], repeats)
    run_help = _median_seconds([sys.executable, "-m", "dlautoml.cli", "run", "--help"], repeats)
    print(f"python -c pass        {baseline * 1000:7.0f} ms")
    print(f"dlautoml --help       {help_time * 1000:7.0f} ms  ({help_time / baseline:.1f}x the interpreter's start)")
    print(f"dlautoml run --help   {run_help * 1000:7.0f} ms  ({run_help / baseline:.1f}x)")


if __name__ == "__main__":
    main()
