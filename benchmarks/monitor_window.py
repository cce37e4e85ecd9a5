"""Reading a monitoring window at volume: seconds and peak memory of ``read_window`` (what a
monitoring check reads from the request log: the request and row counts, a sample of latencies and a
uniform sample of input rows with their outputs) on logs of many one-row requests of 20 features,
against a baseline measured in the same run on the same log: one SQLite query of every request's id,
row count and latency, fetched whole (what a check read before the window was scanned in chunks).
A week at 100 requests a second is 60 million requests.

    .venv/bin/python benchmarks/monitor_window.py [--requests 100000 1000000 3000000] [--max-rows 2000]

Each measurement runs in a fresh process; peak memory is that process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
from data_preparation import measure

PROJECT = Path(__file__).resolve().parent.parent

WINDOW = """
import sys
from pathlib import Path
from components.serving.request_log import read_window
window = read_window(Path(sys.argv[1]), since=0.0, max_rows=int(sys.argv[2]))
assert window.requests == int(sys.argv[3]) and len(window.inputs) == min(int(sys.argv[2]), window.total_rows)
"""

BASELINE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
rows = connection.execute("SELECT id, rows, latency_ms FROM requests WHERE received_at > 0 ORDER BY id").fetchall()
assert len(rows) == int(sys.argv[3])
"""


def write_log(path: Path, requests: int) -> None:
    """A request log of ``requests`` one-row requests, one second apart, written straight into SQLite."""
    sys.path.insert(0, str(PROJECT))
    from components.serving.request_log import connect, to_blob

    rng = np.random.default_rng(0)
    inputs = [to_blob(rng.normal(size=(1, 20)).astype(np.float32)) for _ in range(100)]
    output = to_blob(np.array([[0.2, 0.8]], dtype=np.float32))
    connect(path).close()  # the schema the server writes
    with sqlite3.connect(path) as connection:
        for start in range(0, requests, 100_000):
            stop = min(start + 100_000, requests)
            connection.executemany(
                "INSERT INTO requests (request_id, received_at, model_name, model_version, rows, latency_ms, inputs, outputs,"
                " predictions) VALUES (?, ?, 'model', '1', 1, ?, ?, ?, '[1]')",
                ((f"r{index}", 1.0 + index, 1.0 + index % 50, inputs[index % 100], output) for index in range(start, stop)),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--max-rows", type=int, default=2000, help="input rows a check tests (monitoring.max_window)")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dlautoml-monitor-window"))
    arguments = parser.parse_args()
    folder = arguments.folder.resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(
        f"{'requests':>10} {'seconds':>8} {'peak MiB':>9} {'baseline s':>11} {'baseline MiB':>13} {'memory ratio':>13}",
        flush=True,
    )
    for requests in sorted(arguments.requests):
        log = folder / "requests.db"
        log.unlink(missing_ok=True)
        write_log(log, requests)
        command = [str(log), str(arguments.max_rows), str(requests)]
        base_seconds, base_peak = measure([sys.executable, "-c", BASELINE, *command], PROJECT)
        seconds, peak = measure([sys.executable, "-c", WINDOW, *command], PROJECT)
        print(
            f"{requests:10d} {seconds:8.1f} {peak:9.0f} {base_seconds:11.1f} {base_peak:13.0f} {peak / base_peak:13.2f}",
            flush=True,
        )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
