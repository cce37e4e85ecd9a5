"""A run's push to the project's DVC remote: nothing without a remote, what it pushed, and a failed push
that names the command finishing it."""

import subprocess
from pathlib import Path

import pytest

from tasks.versioning import push_to_remote, track_data


def _project(root: Path, environment: dict, monkeypatch) -> Path:
    root.mkdir()
    monkeypatch.chdir(root)  # where a run works
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True, env=environment)
    (root / "table.csv").write_text("a,label\n1,0\n2,1\n")
    track_data(root / "table.csv", root)
    return root


def test_a_run_pushes_to_the_default_remote_once(tmp_path: Path, venv_environment, monkeypatch):
    root = _project(tmp_path / "project", venv_environment, monkeypatch)
    assert push_to_remote(root) is None  # one machine: no remote, nothing to do
    subprocess.run(["dvc", "remote", "add", "-d", "team", str(tmp_path / "store")], cwd=root, check=True, env=venv_environment)
    assert push_to_remote(root) == "1 file(s) pushed to the DVC remote 'team'"
    assert len([path for path in (tmp_path / "store").rglob("*") if path.is_file()]) == 1
    assert push_to_remote(root) == "the DVC remote 'team' already holds this run's data"


def test_a_failed_push_says_how_to_finish_it(tmp_path: Path, venv_environment, monkeypatch):
    root = _project(tmp_path / "project", venv_environment, monkeypatch)
    (tmp_path / "store").write_text("a file where the remote's folder should be")
    subprocess.run(["dvc", "remote", "add", "-d", "team", str(tmp_path / "store")], cwd=root, check=True, env=venv_environment)
    with pytest.raises(RuntimeError, match=rf"pushing its data to the DVC remote 'team' failed .*run 'dvc push' in {root}"):
        push_to_remote(root)
