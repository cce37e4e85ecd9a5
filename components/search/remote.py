"""Search trials on other machines: NNI's remote training service runs each trial over SSH on one of
``training.remote_machines``. NNI uploads a folder to every machine (at most 300 MB) and runs the trial
command there; this module makes that folder (the ``components`` package, the trial's data and its
settings with paths inside the folder), checks what the machines need, and brings the trials' weights
back through the shared tracking server, where each remote trial logs them with its run."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from components.config import RemoteMachine
from components.errors import UserInputError
from components.search.fidelity import weights_file
from components.search.settings import TrialSettings

UPLOAD_LIMIT_BYTES = 300 * 1024 * 1024  # NNI refuses to upload a larger trial folder
SETTINGS_NAME = "trial_settings.json"
WEIGHTS_ARTIFACT = "weights"  # the folder of a remote trial's MLflow run that holds its weights


def check_machines(machines: list[RemoteMachine], tracking_uri: str) -> None:
    """Raises :class:`UserInputError` naming what the listed machines lack: a tracking server they can
    reach, one interpreter path for all (NNI runs one trial command everywhere), their SSH keys."""
    if not machines:
        return
    if not tracking_uri.startswith(("http://", "https://")):
        raise UserInputError(
            f"training.remote_machines: trials on other machines log to the tracking server, and {tracking_uri} is "
            "on this machine only; point tracking.tracking_uri (or DLAUTOML_TRACKING_URI) at a tracking server every "
            "machine reaches (deploy/team_servers.sh starts one), or empty training.remote_machines"
        )
    paths = sorted({machine.python_path for machine in machines})
    if len(paths) > 1:
        raise UserInputError(
            f"training.remote_machines: every machine needs the project's environment at the same path (NNI runs "
            f"one trial command on all of them); found {', '.join(paths)}"
        )
    for machine in machines:
        key = Path(machine.ssh_key_file).expanduser()
        if not key.is_file():
            raise UserInputError(f"training.remote_machines: the SSH key {key} for {machine.host} does not exist")
    if len({machine.gpu for machine in machines}) > 1:
        raise UserInputError(
            "training.remote_machines: list machines with GPUs or without, not both (NNI asks every trial for the same)"
        )


def ship_trials(folder: Path, settings: TrialSettings, project: Path) -> Path:
    """Writes the folder NNI uploads to each machine and returns its settings file: ``components``
    from ``project``, the splits, the preprocessor and any starting weights under ``data/``, and the
    settings with paths inside the folder; each trial saves its weights under ``checkpoints/`` and
    logs them with its MLflow run.

    Raises:
        UserInputError: the folder is over NNI's upload limit.
    """
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(Path(project) / "components", folder / "components", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (folder / "data").mkdir()

    def copied(path: str) -> str:
        shutil.copy2(path, folder / "data" / Path(path).name)
        return f"data/{Path(path).name}"

    shipped = settings.model_copy(
        update={
            "splits_file": copied(settings.splits_file),
            "preprocessor_file": copied(settings.preprocessor_file),
            "init_weights": copied(settings.init_weights) if settings.init_weights else None,
            "checkpoint_folder": "checkpoints",
            "weights_to_tracking": True,
        }
    )
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    if size > UPLOAD_LIMIT_BYTES:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserInputError(
            f"the search's data for remote trials is {size / 2**20:.0f} MB, over the 300 MB NNI uploads to a machine: "
            "empty training.remote_machines to search on this machine, or train on a sample of the data"
        )
    shipped.save(folder / SETTINGS_NAME)
    return folder / SETTINGS_NAME


def nni_machines(machines: list[RemoteMachine]) -> list[Any]:
    """The machines as NNI's ``RemoteMachineConfig``; on GPU machines each trial gets a GPU of its own."""
    from nni.experiment import RemoteMachineConfig

    return [
        RemoteMachineConfig(
            host=machine.host,
            port=machine.port,
            user=machine.user,
            ssh_key_file=str(Path(machine.ssh_key_file).expanduser()),
            python_path=machine.python_path,
            use_active_gpu=machine.gpu,
        )
        for machine in machines
    ]


def fetch_trial_weights(trials: list, checkpoint_folder: str | Path, experiment_id: str, parent_run_id: str) -> int:
    """Downloads into ``checkpoint_folder`` the weights that remote ``trials`` logged with their MLflow
    runs (children of ``parent_run_id``), where a trial's are not there yet; returns how many arrived.
    A trial without logged weights (stopped before it saved them) is left out: the final training
    then starts afresh, and the ensemble goes without it."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=1000)
    by_trial = {run.data.tags.get("nni.trial_id"): run.info.run_id for run in runs}
    fetched = 0
    for trial in trials:
        local = weights_file(checkpoint_folder, trial.parameters, trial.fidelity)
        run_id = by_trial.get(trial.trial_id)
        if local.is_file() or run_id is None:
            continue
        with tempfile.TemporaryDirectory(prefix="dlautoml-weights-") as scratch:
            try:
                path = client.download_artifacts(run_id, f"{WEIGHTS_ARTIFACT}/{local.name}", scratch)
            except (MlflowException, OSError):
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, local)
        fetched += 1
    return fetched


def remove_uploads(machines: list[RemoteMachine], experiment_id: str) -> list[str]:
    """Removes from each machine the folder NNI uploaded for ``experiment_id`` (a copy of the trial's
    data, which NNI leaves in ``~/nni-experiments`` for good); the trials' logs stay. Returns a line for
    each machine where that failed. NNI itself does not check the machines' host keys; neither does
    this, which reaches them with the same keys."""
    failures = []
    for machine in machines:
        command = [
            "ssh", "-i", str(Path(machine.ssh_key_file).expanduser()), "-p", str(machine.port),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", f"{machine.user}@{machine.host}",
            f"rm -rf nni-experiments/{shlex.quote(experiment_id)}/environments/*/upload",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
            problem = done.stderr.strip() if done.returncode else ""
        except (OSError, subprocess.TimeoutExpired) as error:
            problem = str(error)
        if problem:
            failures.append(
                f"the search's data is left on {machine.host} (~/nni-experiments/{experiment_id}/environments/*/upload): {problem}"
            )
    return failures


def trial_folder(machines: list[RemoteMachine], settings: TrialSettings, settings_file: Path, project: Path, nni_folder: Path):
    """Where the search's trials run from: (settings file, code folder) of ``project`` for local
    trials, or the folder shipped to ``machines`` (:func:`ship_trials`)."""
    if not machines:
        return settings_file, project
    shipped = ship_trials(Path(nni_folder) / "trial_code", settings, project)
    return shipped, shipped.parent


def bring_back(machines: list[RemoteMachine], search, settings: TrialSettings) -> list[str]:
    """After a search with remote trials: their weights fetched from the tracking server
    (:func:`fetch_trial_weights`) and NNI's copies of the data removed from the machines
    (:func:`remove_uploads`); returns the lines to report."""
    if not machines:
        return []
    fetched = fetch_trial_weights(search.trials, settings.checkpoint_folder, settings.experiment_id, settings.parent_run_id)
    return [f"the weights of {fetched} remote trial(s) fetched from the tracking server"] + remove_uploads(
        machines, search.experiment_id
    )
