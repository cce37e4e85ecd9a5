"""DVC: is a stage up to date, record what a stage produced, and version the input data."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml
from dvc.repo import Repo

from components.errors import UserInputError


def _repo(workspace: Path) -> Repo:
    logging.getLogger("dvc").setLevel(logging.WARNING)
    try:
        return Repo(str(workspace))
    except Exception as error:  # dvc raises NotDvcRepoError and friends
        raise UserInputError(f"{Path(workspace).resolve()} is not a DVC project: run 'dvc init' there first") from error


def stage_is_current(stage: str, workspace: Path) -> bool:
    """True when DVC finds the stage's code, parameters, inputs and outputs unchanged since it last ran."""
    with _repo(workspace) as repo:
        return not repo.status(targets=[stage])


def record_stage(stage: str, workspace: Path) -> None:
    """Writes the stage's entry in dvc.lock and caches its outputs, as ``dvc repro`` would have."""
    with _repo(workspace) as repo:
        repo.commit(stage, force=True)


def track_data(path: Path, workspace: Path) -> str:
    """Adds the input data to DVC (a no-op when unchanged) and returns its version (the DVC hash)."""
    relative = Path(path).resolve().relative_to(Path(workspace).resolve())
    with _repo(workspace) as repo:
        repo.add([str(relative)])
    return data_version(path)


def dataset_version(workspace: Path, params) -> str:
    """The version of everything a run trains on: the dataset's DVC hash, plus the feedback file's
    when labelled production inputs are part of the data."""
    return with_feedback(
        data_version(Path(workspace) / params.task_formulation.data_path), params.data_preparation.feedback_version
    )


def with_feedback(version: str, feedback_version: str | None) -> str:
    """A dataset version, with the feedback file's version when there is one."""
    return f"{version}+feedback:{feedback_version}" if feedback_version else version


def data_version(path: Path) -> str:
    """The DVC hash recorded for ``path`` in its ``.dvc`` file, or ``untracked``."""
    path = Path(path)
    record = path.with_name(path.name + ".dvc")
    if not record.is_file():
        return "untracked"
    outs = (yaml.safe_load(record.read_text()) or {}).get("outs") or [{}]
    return str(outs[0].get("md5", "untracked"))


def new_workspace(project: Path, root: Path, params: dict) -> Path:
    """A fresh git + DVC project at ``root`` with ``project``'s pipeline (dvc.yaml and the code its
    stages depend on) and ``params`` as its params.yaml; whatever ``root`` held is replaced."""
    import shutil
    import subprocess

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for name in ("components", "tasks"):
        if (project / name).is_dir():
            shutil.copytree(project / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        if (project / name).is_file():
            shutil.copy2(project / name, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    Repo.init(str(root)).close()
    return root


def push_to_remote(workspace: Path) -> str | None:
    """Pushes the data and stage outputs that dvc.lock and the ``.dvc`` files name to the project's
    default DVC remote, so that another machine can ``dvc pull`` any registered model's data version;
    returns a line saying what was pushed, or None when no default remote is configured (one machine).

    Raises:
        RuntimeError: the remote did not take the push; the run's work is kept and a ``dvc push`` in the
            workspace finishes it.
    """
    with _repo(workspace) as repo:
        remote = repo.config["core"].get("remote")
        if not remote:
            return None
        try:
            pushed = repo.push()
        except Exception as error:  # dvc raises its own errors for every remote kind
            raise RuntimeError(
                f"the run finished, but pushing its data to the DVC remote '{remote}' failed ({error}); "
                f"run 'dvc push' in {Path(workspace).resolve()} once the remote is reachable"
            ) from error
    return (
        f"{pushed} file(s) pushed to the DVC remote '{remote}'"
        if pushed
        else f"the DVC remote '{remote}' already holds this run's data"
    )
