"""A large table and SIGTERM (issue case 20): the data is validated once per command, and SIGTERM
during data preparation ends the run within seconds, with its Prefect temporary server stopped, its
MLflow runs marked failed and no staging folder left."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest

from components.config import DataPreparationParams, TaskFormulationParams
from components.data.validation import validate_dataset
from tests.conftest import make_workspace, write_table
from tests.reliability.test_kill_and_rerun import _orphans


def _read_into(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _innermost_frames(output: str, frames: int = 12) -> str:
    """The threads of a faulthandler dump in ``output``, each with its ``frames`` innermost calls (where it
    waits), without the list of extension modules that follows the dump (thousands of characters)."""
    dump = output[output.rfind("Fatal Python error") :].split("\nExtension modules:")[0]
    threads = []
    for thread in dump.split("\n\n"):
        lines = thread.strip("\n").splitlines()
        threads.append(
            "\n".join(lines[: frames + 1] + ([f"  ... {len(lines) - frames - 1} outer calls"] if len(lines) > frames + 1 else []))
        )
    return "\n\n".join(threads)


def test_the_same_data_is_validated_once_and_again_when_it_changes(tmp_path: Path):
    table = write_table(tmp_path / "table.csv", rows=200)
    formulation, preparation = TaskFormulationParams(data_path=str(table), target="label"), DataPreparationParams()
    first = validate_dataset(table, formulation, preparation)
    assert validate_dataset(table, formulation, preparation) is first
    assert validate_dataset(table, formulation, preparation.model_copy(update={"seed": 1})) is not first
    write_table(table, rows=201)
    assert validate_dataset(table, formulation, preparation) is not first


def test_sigterm_during_data_preparation_stops_the_run_and_what_it_started(tmp_path: Path, venv_environment: dict):
    started = time.time()
    root = make_workspace(tmp_path / "workspace", "data/large.csv")
    (root / "data").mkdir()
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300_000, 6))
    labels = (rows[:, 0] + rows[:, 1] > 0).astype(int)
    np.savetxt(
        root / "data" / "large.csv",
        np.column_stack([rows, labels]),
        delimiter=",",
        fmt="%.4f",
        comments="",
        header="a,b,c,d,e,f,label",
    )
    # PYTHONFAULTHANDLER: should the run hang, SIGABRT makes it print every thread's stack (below).
    environment = {**venv_environment, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
    environment.pop("PREFECT_API_URL", None)  # a temporary server of the run's own
    process = subprocess.Popen(
        [sys.executable, "-m", "dlautoml.cli", "run"],
        cwd=root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "[data_preparation] started" in line:
            time.sleep(2)
            process.send_signal(signal.SIGTERM)
            signalled = time.time()
            break
    # The rest of the output is read while the run unwinds, so that a full pipe cannot hold it up.
    reader = threading.Thread(target=_read_into, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        process.wait(timeout=30)
        reader.join(timeout=10)
        output = "".join(lines)
        pytest.fail(
            "the run did not end within 120 s of SIGTERM; where its threads were:\n"
            + _innermost_frames(output)
            + "\n\nwhat it printed last:\n"
            + output[: output.rfind("Fatal Python error")][-3000:]
        )
    reader.join(timeout=10)  # a server left running would hold the pipe open: the assertions below say so
    output = "".join(lines)
    assert code == 128 + signal.SIGTERM and "terminated (SIGTERM)" in output, output[-3000:]
    assert time.time() - signalled < 60, output[-3000:]
    assert "Stopping temporary server" in output
    time.sleep(1)
    assert _orphans(started) == []
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert {(run.info.run_name, run.info.status) for run in runs} >= {("pipeline", "FAILED"), ("data_preparation", "FAILED")}
    assert not any(run.info.status == "RUNNING" for run in runs)
    assert not list((root / "outputs").glob(".*staging"))
