"""MLflow helpers shared by stages and by search trials (which run as separate processes)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.transient import bound_server_requests

Result = TypeVar("Result")
# MLflow 3's UI opens an experiment in its GenAI view unless the experiment says it trains models.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def with_retries(action: Callable[[], Result], attempts: int = 5, delay: float = 0.5) -> Result:
    """Retries an MLflow call that a concurrent writer of the SQLite store may briefly block."""
    for attempt in range(attempts):
        try:
            return action()
        except MlflowException as error:
            if "locked" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(delay * (attempt + 1))
    raise AssertionError("unreachable")


def configure_tracking(tracking_uri: str, experiment: str, artifact_folder: Path) -> str:
    """Points MLflow at the store and returns the experiment's id, creating it if needed.

    New experiments keep their artifacts under ``artifact_folder`` (for a local store) rather
    than MLflow's default location. Requests to a tracking server get bounded time and attempts.
    """
    bound_server_requests()
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    existing = with_retries(lambda: client.get_experiment_by_name(experiment))
    if existing is not None:
        if existing.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:  # an experiment from an earlier release
            with_retries(lambda: client.set_experiment_tag(existing.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING))
        mlflow.set_experiment(experiment_id=existing.experiment_id)
        return existing.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:") or "://" not in tracking_uri:
        location = (Path(artifact_folder).resolve() / experiment).as_uri()
    try:
        experiment_id = client.create_experiment(
            experiment, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING}
        )
    except MlflowException:
        experiment_id = client.get_experiment_by_name(experiment).experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit(folder: Path | str = ".") -> str:
    """The checked-out commit, with ``-dirty`` when tracked files have uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def flatten(prefix: str, values: dict[str, Any]) -> dict[str, str]:
    """Flattens nested parameters into MLflow's ``section.key`` form."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(name, value))
        else:
            flat[name] = str(value)[:6000]
    return flat


def log_finished_run(
    experiment_id: str,
    run_name: str,
    parent_run_id: str | None,
    parameters: dict[str, Any],
    history: list[dict[str, float]],
    final_metrics: dict[str, float],
    tags: dict[str, str],
    started: float | None = None,
    series: list[tuple[float, dict[str, float]]] = (),
) -> str:
    """Writes a whole run (parameters, per-epoch curves, final metrics) in one batch, after the fact.

    The run's start is ``started`` (``time.time()``) and its end now, so that MLflow shows how long it
    really took; the curve's epochs are spread over that time and the final metrics sit at its last
    step. ``series`` are timed samples (the machine's use, :mod:`components.system_metrics`), one step
    each. One batch per run keeps concurrent trial processes from contending for the SQLite store.
    """
    client = MlflowClient()
    all_tags = dict(tags)
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    now = int(time.time() * 1000)
    start = int(started * 1000) if started else now
    run = with_retries(lambda: client.create_run(experiment_id, start_time=start, run_name=run_name, tags=all_tags))
    at = lambda step: start + (now - start) * (step + 1) // max(len(history), 1)  # noqa: E731
    last = max(len(history) - 1, 0)
    metrics = [Metric(key, float(value), at(step), step) for step, row in enumerate(history) for key, value in row.items()] + [
        Metric(key, float(value), now, last) for key, value in final_metrics.items()
    ]
    metrics += [
        Metric(key, float(value), int(at * 1000), step) for step, (at, row) in enumerate(series) for key, value in row.items()
    ]
    params = [Param(key, value) for key, value in flatten("", parameters).items()]
    for start in range(0, max(len(metrics), 1), 900):
        batch = {"metrics": metrics[start : start + 900], "params": params if start == 0 else [], "tags": []}
        with_retries(lambda batch=batch: client.log_batch(run.info.run_id, **batch))
    with_retries(lambda: client.set_terminated(run.info.run_id, end_time=now))
    return run.info.run_id


WORKSPACE_TAG = "dlautoml.workspace"


def workspace_id(workspace: Path | str) -> str:
    """The workspace a pipeline run belongs to, as its ``WORKSPACE_TAG`` says: the machine and the folder.
    On a shared tracking server, two workers' workspaces may have the same path on different machines."""
    import socket

    return f"{socket.gethostname()}:{Path(workspace).resolve()}"


def close_stale_runs(experiment_id: str, workspace: Path | str) -> int:
    """Marks KILLED the pipeline runs of ``workspace`` (on this machine) still RUNNING, and their RUNNING descendants
    (stages, search trials): runs of a process that was killed. Call it only while holding the
    workspace lock, when no other run of the workspace can be going. Returns how many were closed."""
    client = MlflowClient()
    running = "attributes.status = 'RUNNING'"
    stale = client.search_runs(
        [experiment_id], f"{running} and tags.`{WORKSPACE_TAG}` = '{workspace_id(workspace)}'", max_results=1000
    )
    closed = 0
    while stale:
        run = stale.pop()
        client.set_terminated(run.info.run_id, status="KILLED")
        closed += 1
        stale += client.search_runs(
            [experiment_id], f"{running} and tags.mlflow.parentRunId = '{run.info.run_id}'", max_results=1000
        )
    return closed
