"""Stage 6, monitoring: fit and save the drift detector; and the monitor flow's check of new data."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from prefect import task
from prefect.cache_policies import NONE

from components.config import load_params
from components.data.preparation import Preprocessor, Splits
from components.data.sources import load_unlabelled_inputs
from components.errors import DataError
from components.manifests import MonitoringManifest, PreparationManifest, TaskManifest
from components.monitoring.drift import check_drift, fit_drift_detector, load_drift_detector, save_drift_detector
from components.tracking import configure_tracking
from tasks.stage_runner import RunContext, StageInputs, execute_stage, run_standalone

STAGE = "monitoring"
NOISE_SCALE = 0.5


def fit_monitor(inputs: StageInputs) -> MonitoringManifest:
    params = inputs.params.monitoring
    root = inputs.workspace
    preparation = PreparationManifest.read(root)
    splits = Splits.load(PreparationManifest.file(preparation.splits_file, root))
    preprocessor = Preprocessor.load(PreparationManifest.file(preparation.preprocessor_file, root))
    detector = fit_drift_detector(
        preprocessor.transform(splits.features["train"]),
        params.p_value,
        params.permutations,
        params.reference_size,
        inputs.params.data_preparation.seed,
    )
    manifest = MonitoringManifest(detector="mmd", p_value_threshold=params.p_value)
    save_drift_detector(detector, inputs.output / manifest.detector_folder)
    test = preprocessor.transform(splits.features["test"])
    unshifted = check_drift(detector, test)
    noise = np.random.default_rng(inputs.params.data_preparation.seed).normal(scale=NOISE_SCALE, size=test.shape)
    shifted = check_drift(detector, (test + noise).astype(np.float32))
    inputs.say(
        f"[{STAGE}] MMD drift detector fitted; p-value on the test split {unshifted.p_value:.3f} "
        f"(drift: {unshifted.is_drift}), with Gaussian noise {shifted.p_value:.3f} (drift: {shifted.is_drift})"
    )
    manifest.metrics = {
        "test_split_p_value": unshifted.p_value,
        "test_split_drift": float(unshifted.is_drift),
        "noisy_test_p_value": shifted.p_value,
        "noisy_test_drift": float(shifted.is_drift),
    }
    return manifest


@task(name=STAGE, task_run_name=STAGE, cache_policy=NONE, log_prints=True)
def monitoring(context: RunContext) -> MonitoringManifest:
    """Fits an alibi-detect MMD drift detector on the training inputs and saves it."""
    return execute_stage(STAGE, MonitoringManifest, context, fit_monitor)


def load_new_inputs(data_path: Path, root: Path) -> np.ndarray:
    """New raw inputs shaped like the training features of the deployed pipeline.

    Raises:
        FileNotFoundError: the pipeline has not run in this workspace yet.
        DataError: the inputs are missing, unreadable or do not match the training features.
    """
    task_manifest = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    shape = tuple(preparation.input_shape) if task_manifest.modality == "image" else ()
    raw = load_unlabelled_inputs(Path(data_path), task_manifest.modality, preparation.feature_names, shape)
    if len(raw) < 2:
        raise DataError(f"{data_path} holds {len(raw)} input(s): a drift test needs at least two")
    return raw


@task(name="drift_check", cache_policy=NONE, log_prints=True)
def drift_check(data_path: str, workspace: str = ".", params_file: str = "params.yaml") -> dict:
    """Tests a batch of new raw inputs for drift and records the result in the monitoring experiment."""
    root = Path(workspace)
    params = load_params(root / params_file)
    monitor = MonitoringManifest.read(root)
    preparation = PreparationManifest.read(root)
    preprocessor = Preprocessor.load(PreparationManifest.file(preparation.preprocessor_file, root))
    raw = load_new_inputs(Path(data_path), root)
    detector = load_drift_detector(MonitoringManifest.file(monitor.detector_folder, root))
    result = check_drift(detector, preprocessor.transform(raw))
    tracking = params.tracking
    experiment_id = configure_tracking(tracking.uri(root), f"{tracking.experiment}-monitoring", root / tracking.artifact_folder)
    with mlflow.start_run(run_name="drift_check", experiment_id=experiment_id, tags={"data_path": str(data_path)}):
        mlflow.log_metrics(
            {
                "p_value": result.p_value,
                "drift": float(result.is_drift),
                "distance": result.distance,
                "batch_size": result.batch_size,
            }
        )
    print(
        f"[monitor] {result.batch_size} inputs from {data_path}: MMD p-value {result.p_value:.4f} "
        f"(threshold {result.threshold}) -> {'DRIFT' if result.is_drift else 'no drift'}"
    )
    return {"p_value": result.p_value, "is_drift": result.is_drift, "distance": result.distance, "batch_size": result.batch_size}


if __name__ == "__main__":
    run_standalone(STAGE, MonitoringManifest, fit_monitor)
