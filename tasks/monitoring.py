"""Stage 6, monitoring: fit what watches the model in production; and the `monitor` flow's checks of
new inputs (a file, or the serving endpoint's request log since the last check)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.tracking import MlflowClient

from components.config import PipelineParams, load_params
from components.data.preparation import Splits
from components.data.sources import load_unlabelled_inputs
from components.errors import DataError, UserInputError
from components.leftovers import MONITOR_LEDGER, close_leftovers, record_servers
from components.manifests import MANIFEST_FILE, DeploymentManifest, MonitoringManifest, PreparationManifest, TaskManifest
from components.monitoring.drift import (
    check_drift,
    fit_drift_detector,
    load_drift_detector,
    save_drift_detector,
)
from components.monitoring.feature_drift import fit_feature_detector
from components.monitoring.history import record_check
from components.monitoring.log_window import LogWindow
from components.monitoring.production import labelled_accuracy, scrape_server, server_utilisation, utilisation
from components.monitoring.reference import fetch_reference, publish_reference
from components.monitoring.report import MonitorReference, check_batch, drift_table
from components.monitoring.retraining import RETRAINING_FILE, quiet_seconds_left, record_started
from components.monitoring.uncertainty import ConformalCalibration, interval_coverage, set_coverage
from components.serving.request_log import ENDPOINT_FILE, read_requests, read_window
from components.tracking import configure_tracking
from components.transient import is_transient
from tasks.deployment import load_deployable
from tasks.stage_runner import RunContext, StageInputs, artifact_key, execute_stage, run_standalone, stage_task

STAGE = "monitoring"
NOISE_SCALE = 0.5
STATE_FILE = "monitor_state.json"
MINIMUM_LABELS = 10


def model_outputs(model, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and outputs (probabilities or predictions) of the trained model for raw inputs."""
    tensor = torch.from_numpy(raw.astype(np.float32))
    with torch.no_grad():
        return model.embed(tensor).numpy(), model(tensor).numpy()


def fit_monitor(inputs: StageInputs) -> MonitoringManifest:
    params = inputs.params.monitoring
    root = inputs.workspace
    task = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    splits = Splits.load(PreparationManifest.file(preparation.splits_file, root))
    model = load_deployable(root)
    seed = inputs.params.data_preparation.seed
    embeddings = {split: model_outputs(model, splits.features[split]) for split in ("validation", "test")}

    manifest = MonitoringManifest(
        detector="mmd on penultimate-layer embeddings",
        conformal_confidence=params.conformal_confidence,
        p_value_threshold=params.p_value,
    )
    # The reference is the validation split: the network's embeddings of its own training inputs are
    # tighter than of any new input, so a training-split reference flags unshifted data as drift.
    detector = fit_drift_detector(embeddings["validation"][0], params.p_value, params.permutations, params.reference_size, seed)
    manifest.detector_checksums[manifest.detector_folder] = save_drift_detector(
        detector, inputs.output / manifest.detector_folder
    )
    if task.modality == "tabular":
        manifest.feature_detector_folder = "feature_detector"
        features = fit_feature_detector(splits.features["train"], params.p_value, preparation.categorical_positions)
        manifest.detector_checksums["feature_detector"] = save_drift_detector(features, inputs.output / "feature_detector")

    conformal = ConformalCalibration.from_validation(task.task_type, embeddings["validation"][1], splits.targets["validation"])
    conformal.save(inputs.output / manifest.conformal_file)
    test_embeddings, test_outputs = embeddings["test"]
    if task.task_type == "classification":
        coverage = set_coverage(conformal.prediction_sets(test_outputs, params.conformal_confidence), splits.targets["test"])
        shares = np.bincount(test_outputs.argmax(axis=1), minlength=test_outputs.shape[1]) / len(test_outputs)
        manifest.reference_shares = shares.tolist()
    else:
        coverage = interval_coverage(conformal.intervals(test_outputs, params.conformal_confidence), splits.targets["test"])

    unshifted = check_drift(detector, test_embeddings)
    noisy = splits.features["test"].astype(np.float32)
    spread = np.nanstd(noisy, axis=0, keepdims=True)
    noisy = noisy + np.random.default_rng(seed).normal(size=noisy.shape).astype(np.float32) * NOISE_SCALE * spread
    shifted = check_drift(detector, model_outputs(model, noisy)[0])
    inputs.say(
        f"[{STAGE}] MMD drift detector on embeddings: test split p-value {unshifted.p_value:.3f} "
        f"(drift: {unshifted.is_drift}); test split with noise p-value {shifted.p_value:.3f} (drift: {shifted.is_drift})"
    )
    inputs.say(f"[{STAGE}] conformal coverage on the test split {coverage:.3f} (nominal {params.conformal_confidence})")
    manifest.metrics = {
        "test_split_p_value": unshifted.p_value,
        "test_split_drift": float(unshifted.is_drift),
        "noisy_test_p_value": shifted.p_value,
        "noisy_test_drift": float(shifted.is_drift),
        "conformal_test_coverage": coverage,
    }
    deployment = DeploymentManifest.read(root)
    version = MlflowClient().get_model_version(deployment.registered_model, deployment.registered_version)
    publish_reference(root, inputs.output, manifest, version.run_id)  # checks of this version read it
    return manifest


@stage_task(STAGE, task_run_name=STAGE)
def monitoring(context: RunContext) -> MonitoringManifest:
    """Fits drift detectors (embeddings; per-feature for tables) and the conformal calibration."""
    return execute_stage(STAGE, MonitoringManifest, context, fit_monitor)


def load_new_inputs(data_path: Path, root: Path) -> np.ndarray:
    """New raw inputs shaped like the training features of the deployed pipeline.

    Raises:
        FileNotFoundError: the pipeline has not run in this workspace yet.
        DataError: the inputs are missing, unreadable or do not match the training features.
    """
    task_manifest = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    shape = tuple(preparation.input_shape) if task_manifest.modality in ("image", "sequence", "text") else ()
    if task_manifest.modality == "multimodal":
        shape = tuple(preparation.image_shape) or (preparation.text_length,)
    raw = load_unlabelled_inputs(
        Path(data_path), task_manifest.modality, preparation.feature_names, shape, preparation.categories
    )
    if len(raw) < 2:
        raise DataError(f"{data_path} holds {len(raw)} input(s): a drift test needs at least two")
    return raw


def load_reference(root: Path, params: PipelineParams) -> MonitorReference:
    task_manifest = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    monitor = MonitoringManifest.read(root)
    feature_detector = None
    if monitor.feature_detector_folder:
        feature_detector = load_drift_detector(
            MonitoringManifest.file(monitor.feature_detector_folder, root),
            monitor.detector_checksums.get(monitor.feature_detector_folder),
        )
    return MonitorReference(
        task_type=task_manifest.task_type,
        embedding_detector=load_drift_detector(
            MonitoringManifest.file(monitor.detector_folder, root), monitor.detector_checksums.get(monitor.detector_folder)
        ),
        feature_detector=feature_detector,
        feature_names=preparation.feature_names,
        conformal=ConformalCalibration.load(task_manifest.task_type, MonitoringManifest.file(monitor.conformal_file, root)),
        confidence=monitor.conformal_confidence,
        reference_shares=monitor.reference_shares,
        categorical=preparation.categorical_positions,
    )


def _read_window(
    request_log: Path, state: dict, now: float, task_type: str, max_rows: int
) -> tuple[np.ndarray, np.ndarray, dict]:
    """A uniform sample of at most ``max_rows`` inputs logged since the last check (``state``) and their
    outputs, and utilisation and labelled-accuracy figures of the whole window."""
    since = float(state.get("last_check", 0.0))
    if not request_log.is_file():
        return np.empty((0,)), np.empty((0,)), utilisation(0, 0, np.array([]), 0.0)
    window = read_window(request_log, since, max_rows, until=now)
    seconds = now - since if since else (now - window.first_received if window.requests else 0.0)
    figures = utilisation(window.requests, window.total_rows, window.latency_ms, seconds)
    figures.update(labelled_accuracy(read_requests(request_log, since, labelled_only=True), task_type))
    if window.total_rows > len(window.inputs):
        figures["window_rows"] = float(window.total_rows)
        print(f"[monitor] {window.total_rows:,} logged inputs since the last check: testing a uniform sample of {max_rows:,}")
    return window.inputs, window.outputs, figures


def _server_figures(endpoint_file: Path, state: dict) -> tuple[dict, dict | None]:
    """Error rate, CPU share and memory of the running server since the last check (from its
    /metrics), and the scrape to compare the next check with; nothing when no server is running."""
    if not endpoint_file.is_file():
        return {}, None
    url = json.loads(endpoint_file.read_text())["url"]
    try:
        current = scrape_server(url)
    except Exception as error:  # a server that stopped without removing its endpoint file
        print(f"[monitor] the server at {url} did not answer /metrics ({error}): no server figures")
        return {"server_reachable": False}, None
    figures = server_utilisation(current, state.get("server"))
    print(
        f"[monitor] server {url}: error rate {figures['server_error_rate']:.3f} over {int(figures['server_requests'])} requests, "
        f"CPU {figures.get('server_cpu_share', 0.0):.2f} of a core, memory {figures.get('server_memory_mb', 0.0):.0f} MiB"
    )
    return {"server_reachable": True, **figures}, current


def _record(params: PipelineParams, root: Path, report: dict, source: str) -> None:
    """Adds the check to the monitoring experiment (a run per check, and a point of each figure's
    series on the model version's run) and to a Prefect table artifact."""
    tracking = params.tracking
    experiment_id = configure_tracking(tracking.uri(root), f"{tracking.experiment}-monitoring", root / tracking.artifact_folder)
    numbers = {key: float(value) for key, value in report.items() if isinstance(value, (int, float, bool))}
    model, version = DeploymentManifest.read(root).registered_model, str(report.get("judged_version", ""))
    outcome = "skipped" if report.get("skipped") else "drift" if report.get("drift") else "no drift"
    tags = {"source": source, "judged_version": version, "registered_model": model, "outcome": outcome}
    record_check(experiment_id, model, version, outcome, numbers, report, tags)
    try:
        from prefect.artifacts import create_table_artifact

        create_table_artifact(
            table=drift_table(report, params.monitoring.p_value),
            key=artifact_key("drift-report", root),
            description=f"Monitoring check of {source}: {model} version {version}, {outcome}",
        )
    except Exception as error:  # outside a flow run there is nowhere to attach the artifact
        print(f"[monitor] no Prefect artifact: {error}")


def _emit(report: dict, model_name: str) -> None:
    from prefect.events import emit_event

    emit_event(
        event="dlautoml.drift.detected",
        resource={"prefect.resource.id": f"dlautoml.model.{model_name}"},
        payload={key: value for key, value in report.items() if not isinstance(value, dict)},
    )


def served_reference(root: Path, params: PipelineParams) -> tuple[Path, str]:
    """The folder whose outputs judge the served version (the champion), and that version.

    The workspace's own outputs when the champion is the version this workspace deployed last;
    otherwise (a rejected challenger, a rollback) the champion's reference, fetched from MLflow.
    """
    from components.serving.model_store import alias_version

    deployment = DeploymentManifest.read(root)
    mlflow.set_tracking_uri(params.tracking.uri(root))
    try:
        version = alias_version(deployment.registered_model, "champion")
    except UserInputError:  # no champion (the first version missed its threshold): judge the newest
        return root, deployment.registered_version
    if version == deployment.registered_version:
        return root, version
    run_id = MlflowClient().get_model_version(deployment.registered_model, version).run_id
    print(
        f"[monitor] the champion is version {version}, not the newest ({deployment.registered_version}): judged by its own reference"
    )
    return fetch_reference(root, version, run_id), version


@stage_task("drift_check")
def drift_check(data_path: str | None = None, workspace: str = ".", params_file: str = "params.yaml") -> dict:
    """Checks new inputs: the file at ``data_path``, or else every request logged since the last check.

    The window is used up even when its check fails, so that it cannot fail every later check; but not
    when a server did not answer, so that the retry (or the next check) judges the same requests.
    """
    if not DeploymentManifest.file(MANIFEST_FILE, workspace).is_file():
        if data_path:
            raise UserInputError(f"nothing is deployed in {Path(workspace).resolve()} yet: run `dlautoml run` there first")
        print(f"[monitor] nothing is deployed in {Path(workspace).resolve()} yet: no check until a run deploys a model")
        return {"inputs": 0, "drift": False, "skipped": True}
    stopped = close_leftovers(workspace, MONITOR_LEDGER)
    if stopped:
        print(f"[monitor] stopped {len(stopped)} server(s) that a killed check left running")
    record_servers(workspace, MONITOR_LEDGER)
    window = LogWindow(Path(workspace) / "serving" / STATE_FILE)
    try:
        report = _check(data_path, Path(workspace), load_params(Path(workspace) / params_file), window)
    except BaseException as error:
        if not is_transient(error):
            window.use_up()
        raise
    window.use_up()
    return report


def _check(data_path: str | None, root: Path, params: PipelineParams, window: LogWindow) -> dict:
    judged, version = served_reference(root, params)
    reference = load_reference(judged, params)
    model = load_deployable(judged)
    if data_path:
        raw = load_new_inputs(Path(data_path), judged)
        if len(raw) > params.monitoring.max_window:
            print(f"[monitor] {len(raw):,} inputs in {data_path}: testing a uniform sample of {params.monitoring.max_window:,}")
            raw = raw[np.sort(np.random.default_rng(0).choice(len(raw), params.monitoring.max_window, replace=False))]
        embeddings, outputs = model_outputs(model, raw)
        report, source = check_batch(reference, raw, embeddings, outputs), str(data_path)
    else:
        window.read = True
        raw, logged_outputs, figures = _read_window(
            root / "serving" / "requests.db", window.state, window.now, reference.task_type, params.monitoring.max_window
        )
        server, window.scraped = _server_figures(root / "serving" / ENDPOINT_FILE, window.state)
        figures.update(server)
        source = "serving log"
        if len(raw) < params.monitoring.minimum_window:
            report = {**figures, "inputs": len(raw), "drift": False, "skipped": True}
            print(
                f"[monitor] {len(raw)} logged inputs since the last check (< {params.monitoring.minimum_window}): no drift test"
            )
        else:
            shape = tuple(PreparationManifest.read(judged).input_shape)
            if raw.shape[1:] != shape:
                raise DataError(
                    f"the requests logged since the last check hold inputs shaped {raw.shape[1:]}, but the model "
                    f"takes {shape}: the log holds another model's requests; this window is skipped"
                )
            embeddings, _ = model_outputs(model, raw)
            report = {**figures, **check_batch(reference, raw, embeddings, logged_outputs)}
        threshold = TaskManifest.read(root).success_threshold
        if "accuracy" in report and report["labelled_inputs"] >= MINIMUM_LABELS:
            report["accuracy_drop"] = report["accuracy"] < threshold
            print(
                f"[monitor] accuracy {report['accuracy']:.4f} on {int(report['labelled_inputs'])} labelled inputs (threshold {threshold:.4f})"
            )
    report["judged_version"] = version
    verdict = "DRIFT" if report["drift"] else "no drift"
    p_value = report.get("embedding_mmd_p_value")
    shown = f"MMD p-value {p_value:.4f}, " if p_value is not None else ""
    print(f"[monitor] {report['inputs']} inputs from {source}, judged by version {version}: {shown}{verdict}")
    if report["drift"] or report.get("accuracy_drop"):
        _emit(report, DeploymentManifest.read(root).registered_model)
        if params.monitoring.retrain_on_drift:
            report["retraining"] = _start_retraining(root / "serving" / RETRAINING_FILE, params.monitoring.retrain_quiet_minutes)
    _record(params, root, report, source)  # after the retraining decision, which the run records too
    return report


def _start_retraining(state_file: Path, quiet_minutes: float) -> str:
    """Starts the served `automl` deployment, as a click in the Prefect UI would, unless a retraining
    is in flight or started within the quiet period; says why not otherwise."""
    left = quiet_seconds_left(state_file, quiet_minutes)
    if left > 0:
        outcome = (
            f"not started: the last retraining started less than {quiet_minutes:g} min ago ({left / 60:.0f} min of quiet left)"
        )
        print(f"[monitor] drift: {outcome}")
        return outcome
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:  # Prefect's own resolution: environment, profile, .env
        print("[monitor] drift: no Prefect server is configured, so no retraining was started (see dlautoml monitor --serve)")
        return "not started: no Prefect server"
    from prefect.deployments import run_deployment

    try:
        running = _retraining_in_flight()
        if running:
            print(f"[monitor] drift: retraining {running} is still in flight, so no other is started")
            return f"not started: retraining {running} is in flight"
        flow_run = run_deployment("automl/automl", timeout=0)
    except Exception as error:
        print(f"[monitor] drift: could not start the automl deployment: {error}")
        return f"not started: {error}"
    record_started(state_file, str(flow_run.id))
    print(f"[monitor] drift: started retraining, flow run {flow_run.name} ({flow_run.id})")
    return str(flow_run.id)


def _retraining_in_flight() -> str | None:
    """The name of an `automl` deployment run that is pending or running, if any."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING]))
            ),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["automl"])),
            limit=1,
        )
    return runs[0].name if runs else None


if __name__ == "__main__":
    run_standalone(STAGE, MonitoringManifest, fit_monitor)
