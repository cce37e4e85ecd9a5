"""A run killed with SIGKILL at any stage, then the same command (issue case 18): the run completes,
reuses the work finished before the kill, registers the model once, leaves `dvc status` clean, no
MLflow run RUNNING and no server or search manager running without its owner; a killed monitoring
check's server is stopped by the next check."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import psutil
from mlflow.tracking import MlflowClient

from tests.conftest import make_workspace, write_table

KILLS = [
    "[training] trial 1 succeeded",  # the search
    "[training] final training epoch 1/",  # the final training
    "[deployment] registered",  # after the registration, before the stage ends
    "[monitoring] started",
]


def _run(root: Path, environment: dict, kill_at: str | None, command: tuple[str, ...] = ("run",)) -> tuple[int, str]:
    """``dlautoml run`` (or ``command``) in ``root``, killed with SIGKILL at the first line holding ``kill_at``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dlautoml.cli", *command],
        cwd=root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if kill_at and kill_at in line:
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    return process.wait(timeout=600), "".join(lines)


def _orphans(since: float) -> list[str]:
    """Servers and NNI managers started since ``since`` whose parent is gone."""
    found = []
    for process in psutil.process_iter(["cmdline", "create_time", "ppid"]):
        command = " ".join(process.info["cmdline"] or [])
        if process.info["create_time"] >= since and ("prefect.server.api.server" in command or "nni_node" in command):
            if process.info["ppid"] == 1 or not psutil.pid_exists(process.info["ppid"]):
                found.append(command[:120])
    return found


def test_a_run_killed_at_each_stage_completes_when_run_again(tmp_path: Path, venv_environment: dict):
    started = time.time()
    quick = {"training": {"trial_max_epochs": 2, "final_max_epochs": 3}}
    root = make_workspace(tmp_path / "workspace", "data/table.csv", overrides=quick)
    (root / "data").mkdir()
    write_table(root / "data" / "table.csv", rows=150)
    environment = {**venv_environment, "PYTHONUNBUFFERED": "1"}
    environment.pop("PREFECT_API_URL", None)  # a temporary server of the run's own, as `make run` has

    outputs = []
    for marker in KILLS:
        code, output = _run(root, environment, marker)
        assert code == -signal.SIGKILL, f"never reached {marker!r}:\n{output[-3000:]}"
        outputs.append(output)
    code, output = _run(root, environment, None)
    outputs.append(output)
    assert code == 0 and "Pipeline finished" in output, output[-3000:]

    # Finished work is reused: each stage before the killed one ran once, the search went on.
    everything = "".join(outputs)
    for stage in ("task_formulation", "data_preparation", "model_formulation", "training", "deployment", "monitoring"):
        assert everything.count(f"[{stage}] finished") == 1, stage
    assert re.search(r"resuming an interrupted search: \d finished trial\(s\) kept", outputs[1])
    assert "this search finished in an earlier run that was interrupted" in outputs[2]
    assert "MLflow run(s) marked KILLED" in outputs[1]

    done = subprocess.run(["dvc", "status"], cwd=root, env=environment, capture_output=True, text=True, check=True)
    assert "up to date" in done.stdout
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    experiment = mlflow.get_experiment_by_name("dlautoml")
    assert mlflow.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'", output_format="list") == []
    assert [str(version.version) for version in MlflowClient().search_model_versions("name = 'dlautoml-table'")] == ["1"]
    assert "models:/dlautoml-table@champion (version 1)" in output

    # A monitoring check killed as it reports, then the next check: it stops the killed one's server.
    check = ("monitor", "--data", str(root / "data" / "table.csv"))
    code, output = _run(root, environment, "judged by version 1", check)
    assert code == -signal.SIGKILL, output[-3000:]
    code, output = _run(root, environment, None, check)
    assert code == 0 and "stopped 1 server(s) that a killed check left running" in output, output[-3000:]
    time.sleep(2)  # a manager notices its parent is gone within a second
    assert _orphans(started) == []


def test_a_run_killed_after_its_one_shot_search_reuses_the_architecture(tmp_path: Path, venv_environment: dict):
    """DARTS's supernet stops on the clock, so a second one could choose another architecture, and the
    interrupted search's trials (of the first one's architecture) would be lost with it."""
    from tests.components.test_sequences import sequences

    quick = {
        "training": {"strategy": "darts", "trial_max_epochs": 2, "final_max_epochs": 3},
        "model_formulation": {"family": "sequence"},  # one family: with several competing, TPE searches them
    }
    root = make_workspace(tmp_path / "workspace", "data/series.npz", overrides=quick)
    (root / "data").mkdir()
    features, labels = sequences(count=90, length=12)
    np.savez(root / "data" / "series.npz", X=features, y=labels)
    environment = {**venv_environment, "PYTHONUNBUFFERED": "1"}

    code, first = _run(root, environment, "[training] trial 1 succeeded")
    assert code == -signal.SIGKILL and "one-shot search chose" in first, first[-3000:]
    code, second = _run(root, environment, None)
    assert code == 0, second[-3000:]
    assert "the same one-shot search finished in an earlier run: its architecture is reused" in second
    assert "one-shot search chose" not in second
    # the trials survive only because the search is the same: the same architecture pinned (under load
    # the second trial may finish before the kill lands: then both are kept)
    assert re.search(r"resuming an interrupted search: [12] finished trial\(s\) kept", second), second[-3000:]
