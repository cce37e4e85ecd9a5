"""The whole pipeline on a large generated table: wall-clock time per stage and the peak resident memory
of the run, for a default `dlautoml run` on (by default) 1,000,000 rows of 30 mixed columns.

The table has 20 numeric columns (2% missing) and 10 categorical ones (5 to 50 categories each, 1%
missing), an id column, and a label that depends on three numeric columns and two categorical ones
plus noise. The project is cloned into ``--folder`` (a fresh workspace: its own DVC cache, MLflow
store and Prefect state), the table written there, and `dlautoml run --data ... --max-minutes M` run
in a child process (its whole output in ``--folder``/run.log). Peak memory is the largest resident set of one process of the run (the flow's own
process, or one of NNI's trials), as the kernel reports it to the parent.

    .venv/bin/python benchmarks/run_at_size.py [--rows 1000000] [--max-minutes 4] [--folder /tmp/dlautoml-run-at-size]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
STAGE_LINE = re.compile(r"\[(\w+)\] (started|finished)")


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, 20)).astype(np.float32)
    frame = pd.DataFrame(numeric, columns=[f"x{index}" for index in range(20)])
    score = numeric[:, 0] + 0.5 * numeric[:, 1] - 0.5 * numeric[:, 2]
    for index in range(10):
        count = 5 + 5 * index
        codes = rng.integers(0, count, rows)
        if index < 2:
            score += np.where(codes % 2 == 0, 0.7, -0.7)
        values = np.array([f"c{index}_{code}" for code in range(count)], dtype=object)[codes]
        values[rng.random(rows) < 0.01] = None
        frame[f"k{index}"] = values
    frame.iloc[:, :20] = frame.iloc[:, :20].mask(rng.random((rows, 20)) < 0.02)
    frame.insert(0, "id", [f"row{index}" for index in range(rows)])
    frame["label"] = (score + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    frame.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--max-minutes", type=float, default=4.0, help="the training stage's budget")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dlautoml-run-at-size"))
    arguments = parser.parse_args()
    folder = arguments.folder.resolve()
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", str(PROJECT), str(folder)], check=True)
    (folder / "data").mkdir(exist_ok=True)
    started = time.perf_counter()
    write_table(folder / "data" / "large.csv", arguments.rows)
    print(f"wrote {arguments.rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)

    command = [str(Path(sys.executable).parent / "dlautoml"), "run", "--data", "data/large.csv", "--target", "label"]
    command += ["--max-minutes", str(arguments.max_minutes)]
    wrapper = (
        "import resource, subprocess, sys, json; done = subprocess.run(sys.argv[1:]); "
        "print(json.dumps([done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    started = time.perf_counter()
    stages: dict[str, list[float]] = {}
    with (
        subprocess.Popen(
            [sys.executable, "-c", wrapper, *command], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process,
        (folder / "run.log").open("w") as log,
    ):
        last = ""
        for line in process.stdout:
            log.write(line)
            last = line
            match = STAGE_LINE.search(line)
            if match:
                stages.setdefault(match.group(1), []).append(time.perf_counter() - started)
                print(f"{time.perf_counter() - started:7.0f} s  {line.strip()[-150:]}", flush=True)
    seconds = time.perf_counter() - started
    code, peak_kib = json.loads(last)
    print(f"\ndlautoml run on {arguments.rows:,} rows x 30 columns: exit {code}, {seconds:.0f} s, peak {peak_kib / 1024:.0f} MiB")
    if code:
        print(f"the run failed: its output is in {folder / 'run.log'}")
    for stage, marks in stages.items():
        if len(marks) == 2:
            print(f"  {stage:22} {marks[1] - marks[0]:7.0f} s")


if __name__ == "__main__":
    main()
