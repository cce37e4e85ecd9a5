"""What every stage does around its own work: skip when unchanged, write outputs atomically,
open an MLflow run, and record the stage in dvc.lock.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import mlflow
from filelock import FileLock, Timeout
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from components.config import PipelineParams, load_params
from components.errors import UserInputError
from components.leftovers import close_leftovers, record_servers
from components.manifests import Manifest, stage_folder
from components.tracking import WORKSPACE_TAG, close_stale_runs, configure_tracking, flatten, git_commit, workspace_id
from components.transient import causes, is_transient
from tasks import versioning

ManifestType = TypeVar("ManifestType", bound=Manifest)
LOCK_FILE = ".dlautoml.lock"
SKIPPED_TAG = "dlautoml.skipped"
METRICS_FILE = "metrics.json"  # a stage's figures for `dvc metrics show`, copied to metrics/<stage>.json


def retry_when_transient(task, task_run, state) -> bool:
    """Prefect's retry condition for every stage: run it again only when a server or store did not
    answer. A stage is safe to repeat: it writes into a staging folder, a search resumes from its
    journal and a registration is not repeated; anything else would fail the same way again."""
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    if not isinstance(error, BaseException) or not is_transient(error):
        return False
    print(f"[{task.name}] a server did not answer ({causes(error)[-1]}): the stage runs again", flush=True)
    return True


# Each stage's Prefect task options. Retries wait 30 s, then 2 min, on top of the tracking client's own
# attempts per request (components/transient.py): an outage of about three minutes costs no run.
STAGE_TASK = {
    "log_prints": True,
    "retries": 2,
    "retry_delay_seconds": [30, 120],
    "retry_condition_fn": retry_when_transient,
}


class StageTask:
    """A stage's Prefect task, built the first time the flow calls it or asks for one of its
    attributes (``with_options``, ``fn``): ``python -m tasks.<stage>``, which is what ``dvc repro``
    runs, then never imports Prefect, which took 1.1 s of every stage process."""

    def __init__(self, function: Callable, name: str, task_run_name: str | None) -> None:
        functools.update_wrapper(self, function)
        self._function, self._name, self._task_run_name = function, name, task_run_name
        self._task = None

    def _prefect_task(self):
        if self._task is None:
            from prefect import task
            from prefect.cache_policies import NONE

            options = {"name": self._name, "task_run_name": self._task_run_name, "cache_policy": NONE, **STAGE_TASK}
            self._task = task(**options)(self._function)
        return self._task

    def __call__(self, *args, **kwargs):
        return self._prefect_task()(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._prefect_task(), name)


def stage_task(name: str, task_run_name: str | None = None) -> Callable[[Callable], StageTask]:
    """Makes a stage function the flow's Prefect task ``name`` (see :class:`StageTask`)."""
    return lambda function: StageTask(function, name, task_run_name)


class RunContext(BaseModel):
    """What a stage needs to know about the pipeline run it belongs to."""

    workspace: str = "."
    params_file: str = "params.yaml"
    parent_run_id: str | None = None
    experiment_id: str | None = None
    data_version: str = "untracked"
    git_commit: str = "unknown"
    orchestrated: bool = False

    @property
    def root(self) -> Path:
        return Path(self.workspace)

    def params(self) -> PipelineParams:
        return load_params(self.root / self.params_file)

    def tags(self, stage: str) -> dict[str, str]:
        return {"dlautoml.stage": stage, "git_commit": self.git_commit, "data_version": self.data_version}


@dataclass
class StageInputs:
    """Handed to a stage's body: its parameters, the folder to write into, and the run."""

    params: PipelineParams
    output: Path
    workspace: Path
    run_id: str
    context: RunContext

    def say(self, message: str) -> None:
        print(message, flush=True)


def say(stage: str, message: str) -> None:
    print(f"[{stage}] {message}", flush=True)


def artifact_key(kind: str, workspace: str | Path) -> str:
    """A Prefect artifact key of this workspace's own (keys are global on a server: two projects would
    otherwise show each other's latest report): the kind, the folder's name and a hash of the machine and
    the folder's path (two workers' folders may have the same path on different machines)."""
    folder = Path(workspace).resolve()
    name = re.sub(r"[^a-z0-9]+", "-", folder.name.lower()).strip("-")[:40] or "workspace"
    return f"{kind}-{name}-{hashlib.sha256(workspace_id(folder).encode()).hexdigest()[:8]}"


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """A Prefect markdown artifact of the current flow run; a stage run by `dvc repro` has none."""
    if "prefect" not in sys.modules:  # a process that never imported Prefect runs no flow
        return
    try:
        from prefect.artifacts import create_markdown_artifact
        from prefect.context import get_run_context

        get_run_context()
        create_markdown_artifact(markdown=markdown, key=key, description=description)
    except Exception:  # not inside a Prefect run: nothing to attach the artifact to
        pass


def _publish_metrics(stage: str, folder: Path, root: Path) -> None:
    """Copies the stage's metrics file to metrics/<stage>.json, which `dvc metrics show` reads."""
    source = folder / METRICS_FILE
    if not source.is_file():
        return
    target = root / "metrics" / f"{stage}.json"
    target.parent.mkdir(exist_ok=True)
    staging = target.with_suffix(".writing")
    shutil.copy2(source, staging)
    staging.replace(target)


def _replace_folder(staging: Path, final: Path) -> None:
    retired = final.with_name(f".{final.name}.retired")
    shutil.rmtree(retired, ignore_errors=True)
    if final.exists():
        final.rename(retired)
    staging.rename(final)
    shutil.rmtree(retired, ignore_errors=True)


def tracking_for(context: RunContext, params: PipelineParams) -> str:
    tracking = params.tracking
    return configure_tracking(tracking.uri(context.root), tracking.experiment, context.root / tracking.artifact_folder)


def execute_stage(
    stage: str,
    manifest_type: type[ManifestType],
    context: RunContext,
    body: Callable[[StageInputs], ManifestType],
) -> ManifestType:
    """Runs one stage's body around the platform's bookkeeping.

    The body writes into a staging folder; only when it returns does the folder replace the stage's
    output folder, so a failed stage leaves the previous outputs untouched and nothing half-written.
    Under orchestration an unchanged stage is skipped and a finished one is recorded in dvc.lock.
    """
    root = context.root
    params = context.params()
    experiment_id = tracking_for(context, params)
    if context.orchestrated and versioning.stage_is_current(stage, root):
        say(stage, "unchanged code, parameters and inputs: skipped, keeping its last outputs")
        manifest = manifest_type.read(root)
        tags = {**context.tags(stage), SKIPPED_TAG: "true"}
        with mlflow.start_run(run_name=stage, experiment_id=experiment_id, parent_run_id=context.parent_run_id, tags=tags):
            if manifest.metrics:
                mlflow.log_metrics(manifest.metrics)
        return manifest
    final = stage_folder(stage, root)
    staging = final.with_name(f".{stage}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    say(stage, "started")
    try:
        with mlflow.start_run(
            run_name=stage, experiment_id=experiment_id, parent_run_id=context.parent_run_id, tags=context.tags(stage)
        ) as run:
            section = getattr(params, stage)
            mlflow.log_params(flatten(stage, section.model_dump()))
            manifest = body(StageInputs(params, staging, root, run.info.run_id, context))
            manifest.write(staging)
            if manifest.metrics and not (staging / METRICS_FILE).exists():  # the headline figures, for dvc metrics
                (staging / METRICS_FILE).write_text(json.dumps(manifest.metrics, indent=2) + "\n")
            if manifest.metrics:
                mlflow.log_metrics(manifest.metrics)
            for warning in manifest.warnings:
                say(stage, f"warning: {warning}")
            mlflow.log_artifact(str(staging / "manifest.json"), artifact_path=stage)
            _replace_folder(staging, final)
            _publish_metrics(stage, final, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if context.orchestrated:
        versioning.record_stage(stage, root)
    say(stage, "finished")
    return manifest


@contextmanager
def workspace_lock(workspace: str | Path = ".") -> Iterator[None]:
    """Holds the workspace for one pipeline run, from before its options are written until its last stage.

    Raises:
        UserInputError: another run holds it.
    """
    root = Path(workspace)
    lock = FileLock(str(root / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout as error:
        raise UserInputError(
            f"another pipeline run is using {root.resolve()}: wait for it to finish (lock file {LOCK_FILE})"
        ) from error
    try:
        yield
    finally:
        lock.release()


def check_workspace_free(workspace: str | Path = ".") -> None:
    """Fails at once when another run holds the workspace (a pre-flight check; the run takes the lock itself)."""
    with workspace_lock(workspace):
        pass


@contextmanager
def pipeline_run(workspace: str = ".", params_file: str = "params.yaml", summarise: bool = True) -> Iterator[RunContext]:
    """One pipeline run's MLflow parent run for all six stages (``summarise``: their figures on it at
    the end; off for a run of the first stages only); the caller holds ``workspace_lock``."""
    root = Path(workspace)
    context = RunContext(workspace=str(root), params_file=params_file, git_commit=git_commit(root), orchestrated=True)
    params = context.params()
    context.data_version = versioning.dataset_version(root, params)
    experiment_id = tracking_for(context, params)
    closed = close_stale_runs(experiment_id, root)  # a killed run's: the caller holds the workspace lock
    servers = close_leftovers(root)
    if closed or servers:
        print(f"closed what a killed run left open: {closed} MLflow run(s) marked KILLED, {len(servers)} server(s) stopped")
    record_servers(root)
    client = MlflowClient()
    tags = {**context.tags("pipeline"), WORKSPACE_TAG: workspace_id(root)}
    parent = client.create_run(experiment_id, run_name="pipeline", tags=tags)
    client.log_batch(parent.info.run_id, params=[Param(key, value) for key, value in flatten("", params.model_dump()).items()])
    context.parent_run_id = parent.info.run_id
    context.experiment_id = experiment_id
    status = "FAILED"
    try:
        yield context
        if summarise:
            from tasks.summary import summary_figures

            metrics, summary_tags = summary_figures(root)  # so that the runs table compares pipelines
            client.log_batch(
                parent.info.run_id,
                metrics=[Metric(key, value, int(time.time() * 1000), 0) for key, value in metrics.items()],
                tags=[RunTag(key, value) for key, value in summary_tags.items()],
            )
        status = "FINISHED"
    finally:
        client.set_terminated(parent.info.run_id, status=status)


def run_standalone(stage: str, manifest_type: type[ManifestType], body: Callable[[StageInputs], ManifestType]) -> None:
    """Entry point for ``python -m tasks.<stage>``, which is what ``dvc repro`` runs."""
    root = Path(".")
    try:
        params = load_params(root / "params.yaml")
        context = RunContext(git_commit=git_commit(root), data_version=versioning.dataset_version(root, params))
        execute_stage(stage, manifest_type, context, body)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
