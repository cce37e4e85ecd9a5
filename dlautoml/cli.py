"""The ``dlautoml`` command: run the pipeline, check new data for drift, open the UIs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import get_args

import typer

from components.config import TaskFormulationParams, TrainingParams
from components.data.digits import DEFAULT_DATA
from components.errors import UserInputError, listing
from components.serving.request_log import ENDPOINT_FILE
from dlautoml.knowledge_cli import knowledge_app

app = typer.Typer(
    help="Deep-learning AutoML: labelled data in, a searched, trained, ONNX-deployed and monitored model out.\n\n"
    "Run from the project folder (it holds params.yaml and dvc.yaml).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts hold [default: ...] notes, which Rich would take for markup and drop
)


def _quiet_services() -> None:
    """Settings for the services a command starts, and SIGTERM handled so that they stop with it."""
    from components.termination import exit_cleanly_on_sigterm

    exit_cleanly_on_sigterm()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("mlflow.store.db.utils", "alembic"):  # "Creating initial MLflow database tables..."
        logging.getLogger(name).setLevel(logging.WARNING)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _choices(name: str, section: type, key: str) -> type[StrEnum]:
    """The values a params.yaml key accepts (its Literal type), as the enum typer offers on the command line."""
    return StrEnum(name, {value: value for value in get_args(section.model_fields[key].annotation)})


Strategy = _choices("Strategy", TrainingParams, "strategy")
Modality = _choices("Modality", TaskFormulationParams, "modality")
TaskType = _choices("TaskType", TaskFormulationParams, "task_type")


@app.command()
def run(
    data: Path | None = typer.Option(
        None,
        help="a table (CSV, Parquet), sequences (.npz), or a folder of images: class sub-folders, or one table of "
        "image paths with labels and any other columns [default: params.yaml, then the bundled digits]",
    ),
    target: str | None = typer.Option(None, help="target column of a table (or of the table in an image folder)"),
    task_type: TaskType | None = typer.Option(None, help="force classification or regression"),
    modality: Modality | None = typer.Option(None, help="override the detected modality"),
    max_trials: int | None = typer.Option(None, min=1, help="number of NNI search trials"),
    max_minutes: float | None = typer.Option(
        None, min=0.1, help="wall-clock budget of the training stage: search and final training together"
    ),
    strategy: Strategy | None = typer.Option(
        None,
        help="NNI strategy: a tuner that proposes architectures (successive_halving: many short trials, the best third of each rung trained longer), or one-shot NAS over the image, sequence or text family's model space (darts), then tpe over its training; auto: darts for those families from 2,000 training rows, tpe otherwise",
    ),
    init_from: str | None = typer.Option(
        None,
        help="start from a registered model, models:/NAME@ALIAS or models:/NAME/VERSION, of the same modality and input "
        "shape: its network is kept, its head replaced, and the search tunes its training",
    ),
    params: Path = typer.Option(Path("params.yaml"), help="parameters file (one section per stage)"),
) -> None:
    """Run the six-stage pipeline (Prefect flow 'automl'); unchanged stages are skipped.

    Options given here are written into params.yaml first, so that `dvc repro` runs the same thing.
    """
    _quiet_services()
    workspace = Path(".")
    try:
        from tasks.run_setup import check_run
        from tasks.stage_runner import check_workspace_free

        check_workspace_free(workspace)
        check_run(workspace, params, data, target, task_type and task_type.value, modality and modality.value)
        from flows.automl import automl

        summary = automl(
            workspace=str(workspace),
            params_file=str(params),
            data_path=data and str(data),
            target=target,
            task_type=task_type and task_type.value,
            max_trials=max_trials,
            max_minutes=max_minutes,
            strategy=strategy and strategy.value,
            modality=modality and modality.value,
            init_from=init_from,
        )
    except UserInputError as error:
        _fail(str(error))
    except Exception as error:  # a stage failed: Prefect has logged the traceback
        _fail(f"pipeline failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", code=1)
    typer.echo(summary)


@app.command()
def monitor(
    data: Path | None = typer.Option(
        None,
        help="new inputs (a table with the training feature columns, a folder of images, or a folder with a table "
        "of image paths and the other columns) [default: the serving endpoint's requests since the last check]",
    ),
    params: Path = typer.Option(Path("params.yaml"), help="parameters file"),
    serve_deployments: bool = typer.Option(
        False, "--serve", help="serve the 'monitor' (on monitoring.schedule) and 'automl' deployments until stopped"
    ),
    prefect_port: int = typer.Option(
        4200, min=1, max=65535, help="port of the local Prefect server --serve starts when none is configured"
    ),
) -> None:
    """Check new inputs for drift and uncertainty (Prefect flow 'monitor'); results go to MLflow.

    Exits 0 whether or not there is drift; the figures and the decision are printed and logged.
    With --serve, runs the scheduled deployments instead (starting a local Prefect server on
    127.0.0.1:4200 when PREFECT_API_URL is not set); a drift then starts the 'automl' deployment.
    """
    _quiet_services()
    if serve_deployments:
        from flows.deployments import serve_deployments as serve_both

        try:
            serve_both(params, say=typer.echo, port=prefect_port)
        except RuntimeError as error:
            _fail(str(error), code=1)
        return
    try:
        from components.config import load_params
        from components.manifests import DeploymentManifest, MonitoringManifest
        from flows.monitor import monitor as monitor_flow
        from tasks.monitoring import load_new_inputs

        load_params(params)  # pre-flight: what the check reads, before a flow starts
        DeploymentManifest.read(".")
        MonitoringManifest.read(".")
        if data is not None:
            load_new_inputs(data, Path("."))
        monitor_flow(data_path=str(data) if data is not None else None, workspace=".", params_file=str(params))
    except UserInputError as error:
        _fail(str(error))
    except FileNotFoundError as error:
        _fail(f"{error}: run `dlautoml run` first")


@app.command()
def serve(
    model: str | None = typer.Option(None, help="registered model name [default: the one this workspace last deployed]"),
    alias: str = typer.Option("champion", help="registry alias to serve; the server follows it when it moves"),
    host: str = typer.Option("127.0.0.1", help="address to bind; the default keeps the endpoint local"),
    port: int = typer.Option(8000, min=1, max=65535, help="port to listen on"),
    max_batch_size: int | None = typer.Option(None, min=1, help="largest micro-batch [default: chosen by the deployment sweep]"),
    max_wait_ms: float = typer.Option(5.0, min=0.0, help="longest a request waits for others to batch with"),
    log_sample_rate: float = typer.Option(1.0, min=0.0, max=1.0, help="share of requests written to the request log"),
    request_log: Path = typer.Option(Path("serving/requests.db"), help="SQLite request log that monitoring reads"),
    log_retention_days: float = typer.Option(
        30.0, min=0.0, help="logged requests older than this are deleted, unless they have labels (dlautoml feedback)"
    ),
    max_inputs: int = typer.Option(10_000, min=1, help="most rows, texts, sequences or images in one request (413 beyond)"),
    reload_seconds: float = typer.Option(5.0, min=0.5, help="how often to check whether the alias moved"),
    params: Path = typer.Option(Path("params.yaml"), help="parameters file (for the tracking store)"),
) -> None:
    """Serve a registered model over HTTP with ONNX Runtime: POST /predict, GET /health, GET /metrics.

    A request may hold 10 MB, --max-inputs inputs and 4096 x 4096 pixels per image; beyond, it is
    answered 413 with the limit. /health reports the version served, and "degraded" when the version
    the alias points at has failed to load three times in a row.
    """
    _quiet_services()
    import uvicorn

    from components.networking import check_can_listen
    from components.serving.app import ServingConfig, create_app
    from components.serving.limits import RequestLimits
    from components.serving.model_store import alias_version
    from components.serving.request_log import check_request_log, release_endpoint

    try:
        model = _registry_context(params, model)
        alias_version(model, alias)
        check_can_listen(host, port)
        check_request_log(request_log)
    except UserInputError as error:
        _fail(str(error))
    config = ServingConfig(
        model_name=model,
        alias=alias,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        request_log=request_log,
        log_sample_rate=log_sample_rate,
        log_retention_days=log_retention_days,
        limits=RequestLimits(max_inputs=max_inputs),
        reload_seconds=reload_seconds,
    )
    typer.echo(f"serving {model}@{alias} on http://{host}:{port} (POST /predict, GET /health, GET /metrics)")
    # Where the monitor finds this server's own figures (error rate, CPU, memory).
    endpoint = request_log.parent / ENDPOINT_FILE
    endpoint.parent.mkdir(parents=True, exist_ok=True)
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    endpoint.write_text(json.dumps({"url": f"http://{local}:{port}", "pid": os.getpid(), "model": model}))
    try:
        uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
    finally:
        release_endpoint(endpoint)


def _registry_context(params: Path, model: str | None) -> str:
    """Points MLflow at the workspace's store and returns the model name (default: last deployed)."""
    import mlflow

    from components.config import load_params
    from components.manifests import DeploymentManifest

    mlflow.set_tracking_uri(load_params(params).tracking.uri(Path(".")))
    if model is not None:
        return model
    try:
        return DeploymentManifest.read(".").registered_model
    except FileNotFoundError as error:
        raise UserInputError(f"{error}, or pass --model") from error


@app.command()
def promote(
    model: str | None = typer.Option(None, help="registered model name [default: the one this workspace last deployed]"),
    version: str | None = typer.Option(None, help="version to promote [default: the challenger]"),
    params: Path = typer.Option(Path("params.yaml"), help="parameters file"),
) -> None:
    """Promote the challenger to champion if it scores higher than the champion on this workspace's test split."""
    _quiet_services()
    try:
        from components.data.preparation import Splits
        from components.deployment.promotion import promote_if_better
        from components.manifests import PreparationManifest, TaskManifest

        name = _registry_context(params, model)
        task = TaskManifest.read(".")
        splits = Splits.load(PreparationManifest.file(PreparationManifest.read(".").splits_file, "."))
        decision = promote_if_better(
            name, splits.features["test"], splits.targets["test"], task.task_type, task.metric, challenger=version
        )
    except UserInputError as error:
        _fail(str(error))
    except FileNotFoundError as error:
        _fail(f"{error}: run `dlautoml run` first")
    typer.echo(decision.reason)


@app.command()
def rollback(
    model: str | None = typer.Option(None, help="registered model name [default: the one this workspace last deployed]"),
    params: Path = typer.Option(Path("params.yaml"), help="parameters file"),
) -> None:
    """Give the champion alias back to the version it had before the last promotion."""
    _quiet_services()
    try:
        from components.deployment.promotion import rollback as rollback_champion

        name = _registry_context(params, model)
        current, previous = rollback_champion(name)
    except UserInputError as error:
        _fail(str(error))
    typer.echo(f"champion of {name}: version {current} -> version {previous}")


@app.command()
def feedback(
    file: Path = typer.Option(..., "--file", help="CSV with columns request_id, label and optionally row (default 0)"),
    request_log: Path = typer.Option(Path("serving/requests.db"), help="the serving endpoint's request log"),
) -> None:
    """Record true labels for served requests (by the request_id /predict returned); monitoring then reports accuracy."""
    from components.manifests import TaskManifest
    from components.serving.feedback_file import read_feedback_file
    from components.serving.request_log import add_feedback

    try:
        if not file.is_file():
            raise UserInputError(f"labels file {file} does not exist: pass a CSV with columns request_id, label (and row)")
        if not request_log.is_file():
            raise UserInputError(f"{request_log} does not exist: serve the model with `dlautoml serve` first")
        try:
            task = TaskManifest.read(".")
        except FileNotFoundError:
            task = None
        stored, unknown = add_feedback(request_log, read_feedback_file(file, task))
    except UserInputError as error:
        _fail(str(error))
    typer.echo(f"stored {stored} labels" + (f"; unknown request ids: {listing(unknown)}" if unknown else ""))


class Interface(StrEnum):
    mlflow = "mlflow"
    prefect = "prefect"
    nni = "nni"


@app.command()
def ui(
    which: Interface = typer.Argument(..., help="mlflow, prefect or nni"),
    port: int | None = typer.Option(None, help="port to listen on [default: 5000 / 4200 / 8080]"),
    host: str = typer.Option("127.0.0.1", help="address to bind; the default keeps the UI local"),
    params: Path = typer.Option(Path("params.yaml"), help="parameters file"),
) -> None:
    """Open a UI on this machine until Ctrl-C: MLflow (runs and registry), Prefect (flow runs), NNI (the last search)."""
    _quiet_services()
    from components.config import load_params
    from components.networking import check_can_listen

    port = port or {Interface.mlflow: 5000, Interface.prefect: 4200, Interface.nni: 8080}[which]
    try:
        check_can_listen(host, port)
    except UserInputError as error:
        _fail(str(error))
    if which is Interface.nni:
        _view_search(host, port)
        return
    binary = Path(sys.executable).parent
    if which is Interface.mlflow:
        tracking = load_params(params).tracking
        command = [str(binary / "mlflow"), "ui", "--backend-store-uri", tracking.uri(), "--host", host, "--port", str(port)]
        environment = None
    else:
        from flows.deployments import server_environment

        command = [str(binary / "prefect"), "server", "start", "--host", host, "--port", str(port)]
        environment = server_environment(host, port)
    typer.echo(" ".join(command))
    raise typer.Exit(subprocess.call(command, env=environment))


def _view_search(host: str, port: int) -> None:
    from components.manifests import TrainingManifest
    from components.search.nni_search import view_search

    try:
        experiment = TrainingManifest.read(".").nni_experiment_id
    except FileNotFoundError as error:
        _fail(f"{error}: there is no search to show yet")
    typer.echo(f"NNI's UI of search {experiment}: http://{host}:{port} (Ctrl-C stops it)")
    view_search(experiment, Path(".nni").resolve(), host, port)


@app.command()
def dataset(destination: Path = typer.Argument(Path(DEFAULT_DATA), help="where to write the images")) -> None:
    """Write the bundled digits dataset as PNG images (one sub-folder per class) and version it with DVC."""
    from components.data.digits import write_digits_images
    from tasks.versioning import track_data

    written = write_digits_images(destination)
    typer.echo(f"wrote {written} images to {destination}" if written else f"{destination} already exists")
    try:
        typer.echo(f"DVC version {track_data(destination, Path('.'))}")
    except UserInputError as error:
        _fail(str(error))


app.add_typer(knowledge_app, name="knowledge")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
