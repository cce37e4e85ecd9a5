"""Setting up a pipeline run from its options, the same way for the command line and the Prefect UI:
validate the data, copy it into the workspace, write the options into params.yaml, version the data."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from components.config import load_params
from components.data.dataset import source_signature
from components.data.digits import DEFAULT_DATA, write_digits_images
from components.data.feedback import FeedbackSet, labelled_requests
from components.data.sources import keep_loaded
from components.data.validation import validate_dataset
from components.errors import UserInputError
from components.manifests import PreparationManifest, TaskManifest
from components.serving.request_log import read_requests
from tasks.versioning import track_data, with_feedback

REQUEST_LOG = "serving/requests.db"


def place_data(data: Path, workspace: Path, say: Callable[[str], None] = print) -> str:
    """Data outside the project is copied under data/ so that DVC can version it."""
    data = data.expanduser()
    if not data.exists():
        raise UserInputError(f"data path {data} does not exist: pass an existing CSV file or image folder with --data")
    resolved, root = data.resolve(), workspace.resolve()
    if resolved.is_relative_to(root):
        return str(resolved.relative_to(root))
    destination = root / "data" / resolved.name
    say(f"copying {resolved} to {destination} so that DVC can version it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.copying")
    shutil.rmtree(staging, ignore_errors=True)
    if resolved.is_dir():
        shutil.copytree(resolved, staging)
    else:
        shutil.copy2(resolved, staging)
    if destination.is_dir():
        shutil.rmtree(destination)
    staging.replace(destination)
    return str(destination.relative_to(root))


def update_params(params_file: Path, updates: dict[str, dict[str, object]]) -> None:
    """Writes overrides into params.yaml, keeping its comments, so dvc repro sees the same run."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    document = yaml.load(params_file.read_text())
    changed = False
    for section, values in updates.items():
        for key, value in values.items():
            if value is not None and document[section].get(key) != value:
                document[section][key] = value
                changed = True
    if changed:
        with params_file.open("w") as stream:
            yaml.dump(document, stream)


def check_run(
    workspace: Path,
    params_file: Path,
    data: Path | None = None,
    target: str | None = None,
    task_type: str | None = None,
    modality: str | None = None,
) -> None:
    """Validates the parameters file, the options and the data, writing nothing: the command line's
    pre-flight, so that bad input fails in one line before the run starts and takes the workspace.

    Raises:
        UserInputError: the parameters file, an option or the data is unusable.
    """
    configured, formulation = _formulation(params_file, target, task_type, modality)
    if data is None and formulation.data_path == DEFAULT_DATA and not (workspace / DEFAULT_DATA).exists():
        return  # the bundled digits, which the run writes
    validate_dataset(_source(workspace, data, formulation), formulation, configured.data_preparation)


def prepare_run(
    workspace: Path,
    params_file: Path,
    data: Path | None = None,
    target: str | None = None,
    task_type: str | None = None,
    max_trials: int | None = None,
    max_minutes: float | None = None,
    strategy: str | None = None,
    modality: str | None = None,
    say: Callable[[str], None] = print,
    init_from: str | None = None,
) -> str:
    """Validates the data before anything is written, then records the options and versions the data.
    The caller holds the workspace lock.

    Returns:
        The data version (DVC hash).

    Raises:
        UserInputError: the parameters file, an option or the data is unusable; nothing was written.
    """
    configured, formulation = _formulation(params_file, target, task_type, modality)
    if data is None and formulation.data_path == DEFAULT_DATA and write_digits_images(workspace / DEFAULT_DATA):
        say(f"wrote the bundled digits dataset to {DEFAULT_DATA}")
    source = _source(workspace, data, formulation)
    validate_dataset(source, formulation, configured.data_preparation)
    loaded = source_signature(source)  # the stages find the validated dataset loaded, though copied and versioned
    data_path = place_data(Path(data), workspace, say) if data is not None else formulation.data_path
    update_params(
        Path(params_file),
        {
            "task_formulation": {"data_path": data_path, "target": target, "task_type": task_type, "modality": modality},
            "training": {"max_trials": max_trials, "max_minutes": max_minutes, "strategy": strategy, "init_from": init_from},
        },
    )
    version = track_data(workspace / data_path, workspace)
    keep_loaded(loaded, workspace / data_path)
    say(f"data {data_path} is DVC version {version}")
    feedback_version = absorb_feedback(workspace, Path(params_file), say)
    return with_feedback(version, feedback_version)


def _source(workspace: Path, data: Path | None, formulation) -> Path:
    """The data to validate: the --data path, else params.yaml's data_path in the workspace."""
    return Path(data).expanduser() if data is not None else workspace / formulation.data_path


def _formulation(params_file: Path, target: str | None, task_type: str | None, modality: str | None):
    """The parameters read from ``params_file``, and the task formulation with the options applied."""
    if not Path(params_file).is_file():
        raise UserInputError(f"parameters file {params_file} not found: run from the project folder or pass --params")
    configured = load_params(params_file)
    overrides = {key: value for key, value in (("target", target), ("task_type", task_type), ("modality", modality)) if value}
    return configured, configured.task_formulation.model_copy(update=overrides)


def absorb_feedback(workspace: Path, params_file: Path, say: Callable[[str], None] = print) -> str | None:
    """Adds the served inputs that received labels (``dlautoml feedback``) to the feedback file,
    versions it with DVC and writes its version into params.yaml; returns the version, or None when
    there is no labelled input.

    Only inputs served by a model of this dataset count: they are shaped like its training features.
    The version in params.yaml is what tells DVC (and the stage runner) that data_preparation must
    run again; a workspace without feedback needs no feedback file at all.
    """
    params = load_params(params_file)
    path = workspace / params.data_preparation.feedback_path
    feedback = FeedbackSet.load(path)
    log = workspace / REQUEST_LOG
    data_path = params.task_formulation.data_path
    try:
        task, preparation = TaskManifest.read(workspace), PreparationManifest.read(workspace)
    except FileNotFoundError:
        task = preparation = None
    if log.is_file() and task is not None and task.data_path == data_path:
        dtype = np.uint8 if task.modality == "image" else np.float32
        inputs, labels, ids = labelled_requests(read_requests(log, labelled_only=True), preparation.input_shape, dtype)
        grown = feedback.extended(data_path, inputs, labels, ids)
        if len(grown) != len(feedback) or grown.dataset != feedback.dataset:
            say(
                f"added {len(grown) - len(feedback)} labelled production inputs from {REQUEST_LOG} to {path.relative_to(workspace)}"
            )
            grown.save(path)
            feedback = grown
    if not len(feedback):
        return None
    version = track_data(path, workspace)
    update_params(params_file, {"data_preparation": {"feedback_version": version}})
    say(f"feedback {params.data_preparation.feedback_path}: {len(feedback)} labelled production inputs, DVC version {version}")
    return version
