"""A second run on a busy workspace fails before it writes anything (issue case 6): the lock is taken
before the options go into params.yaml and the data is copied and versioned."""

import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from components.errors import UserInputError
from flows.automl import automl
from tasks.stage_runner import LOCK_FILE
from tests.conftest import make_workspace, write_table


def _busy_workspace(tmp_path: Path) -> tuple[Path, Path, str]:
    root = make_workspace(tmp_path / "workspace", "data/digits")
    other = write_table(tmp_path / "other.csv")
    return root, other, (root / "params.yaml").read_text()


def test_the_command_line_refuses_a_busy_workspace_before_writing(tmp_path: Path):
    root, other, params_before = _busy_workspace(tmp_path)
    with FileLock(str(root / LOCK_FILE)):
        done = subprocess.run(
            [sys.executable, "-m", "dlautoml.cli", "run", "--data", str(other), "--max-trials", "7"],
            cwd=root,
            capture_output=True,
            text=True,
        )
    assert done.returncode == 2 and "another pipeline run is using" in done.stderr, done.stderr
    assert (root / "params.yaml").read_text() == params_before
    assert not (root / "data").exists()


def test_the_flow_takes_the_lock_before_it_writes_the_options(tmp_path: Path, monkeypatch):
    """What the Prefect UI starts: the flow's own body, without the command line's pre-flight."""
    root, other, params_before = _busy_workspace(tmp_path)
    monkeypatch.chdir(root)
    with FileLock(str(root / LOCK_FILE)):
        with pytest.raises(UserInputError, match="another pipeline run"):
            automl.fn(workspace=".", params_file="params.yaml", data_path=str(other), max_trials=7)
    assert (root / "params.yaml").read_text() == params_before
    assert not (root / "data").exists()
