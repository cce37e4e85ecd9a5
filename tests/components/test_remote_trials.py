"""What remote search trials need, short of an SSH server (tests/team runs them over SSH): the checks
that name what the machines lack, and the folder NNI uploads, whose trial trains from it alone."""

import json
import os
import shutil
from pathlib import Path

import pytest

from components.config import RemoteMachine
from components.errors import UserInputError
from components.search import remote
from components.search.remote import check_machines, ship_trials
from components.search.settings import TrialSettings
from tests.components.test_search import GOOD, search_setup
from tests.conftest import PROJECT


def machine(tmp_path: Path, **changes) -> RemoteMachine:
    key = tmp_path / "key"
    key.write_text("a key")
    return RemoteMachine(**{"host": "gpu1", "user": "ml", "ssh_key_file": str(key), "python_path": "/opt/venv/bin", **changes})


@pytest.mark.parametrize(
    "case, message",
    [
        ("sqlite", "tracking server every machine reaches"),
        ("two paths", "at the same path .* found /opt/a/bin, /opt/venv/bin"),
        ("no key", "the SSH key .*missing for gpu1 does not exist"),
        ("gpu and not", "with GPUs or without, not both"),
    ],
)
def test_what_remote_machines_lack_is_named(tmp_path: Path, case: str, message: str):
    machines = {
        "sqlite": [machine(tmp_path)],
        "two paths": [machine(tmp_path), machine(tmp_path, python_path="/opt/a/bin")],
        "no key": [machine(tmp_path, ssh_key_file=str(tmp_path / "missing"))],
        "gpu and not": [machine(tmp_path, gpu=True), machine(tmp_path)],
    }[case]
    uri = "sqlite:///mlflow.db" if case == "sqlite" else "http://tracking:5000"
    with pytest.raises(UserInputError, match=message):
        check_machines(machines, uri)
    check_machines([machine(tmp_path)], "http://tracking:5000")  # what they need: no error
    check_machines([], "sqlite:///mlflow.db")  # none listed: trials on this machine


def test_the_uploaded_folder_holds_all_a_trial_reads(tmp_path: Path, monkeypatch):
    from components.search.trial import train_configuration

    (tmp_path / "workspace").mkdir()
    search_setup(tmp_path / "workspace", checkpoint_folder=str(tmp_path / "workspace" / "checkpoints"))
    settings = TrialSettings.load(tmp_path / "workspace" / "settings.json")
    settings_file = ship_trials(tmp_path / "upload", settings, PROJECT)
    shipped = json.loads(settings_file.read_text())
    assert shipped["splits_file"] == "data/splits.npz" and shipped["preprocessor_file"] == "data/preprocessor.json"
    assert shipped["checkpoint_folder"] == "checkpoints" and shipped["weights_to_tracking"] is True
    assert (tmp_path / "upload" / "components" / "search" / "trial.py").is_file()
    assert not list((tmp_path / "upload").rglob("__pycache__"))

    # On "another machine": the workspace gone, the trial runs in the uploaded folder.
    moved = shutil.move(tmp_path / "upload", tmp_path / "elsewhere")
    shutil.rmtree(tmp_path / "workspace")
    monkeypatch.chdir(moved)
    outcome = train_configuration(TrialSettings.load(Path(moved) / "trial_settings.json"), GOOD)
    assert outcome.score > 0.5 and len(list(Path(moved, "checkpoints").glob("*.pt"))) == 1


def test_a_folder_over_nnis_upload_limit_is_refused(tmp_path: Path, monkeypatch):
    (tmp_path / "workspace").mkdir()
    search_setup(tmp_path / "workspace")
    monkeypatch.setattr(remote, "UPLOAD_LIMIT_BYTES", 1000)
    with pytest.raises(UserInputError, match="over the 300 MB NNI uploads to a machine"):
        ship_trials(tmp_path / "upload", TrialSettings.load(tmp_path / "workspace" / "settings.json"), PROJECT)
    assert not os.path.exists(tmp_path / "upload")  # nothing half-written is left for NNI to upload


def test_a_machine_that_cannot_be_reached_to_clean_up_is_named(tmp_path: Path):
    from components.networking import free_port
    from components.search.remote import remove_uploads

    unreachable = machine(tmp_path, host="127.0.0.1", port=free_port())  # nothing listens there
    [line] = remove_uploads([unreachable], "abc123")
    assert line.startswith("the search's data is left on 127.0.0.1 (~/nni-experiments/abc123/environments/*/upload): ")
