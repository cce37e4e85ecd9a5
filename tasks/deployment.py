"""Stage 5, deployment: the ONNX model with its preprocessing, checked against PyTorch, timed,
and registered in MLflow."""

from __future__ import annotations

from pathlib import Path

import torch
from prefect import task
from prefect.cache_policies import NONE

from components.data.preparation import Preprocessor, Splits
from components.deployment.onnx_export import INPUT_NAME, check_parity, export_onnx, inference_session, measure_latency
from components.deployment.registry import register_onnx_model
from components.deployment.wrapper import DeployableModel
from components.manifests import DeploymentManifest, PreparationManifest, TaskManifest, TrainingManifest
from components.models.families import build_network
from tasks.stage_runner import RunContext, StageInputs, execute_stage, run_standalone

STAGE = "deployment"
LATENCY_BATCH_SIZES = (1, 64)


def load_deployable(root) -> DeployableModel:
    """The trained network with the fitted preprocessing in front of it."""
    task = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    training = TrainingManifest.read(root)
    network = build_network(training.family, preparation.input_shape, preparation.output_size, training.architecture)
    network.load_state_dict(torch.load(TrainingManifest.file(training.model_file, root), map_location="cpu", weights_only=True))
    preprocessor = Preprocessor.load(PreparationManifest.file(preparation.preprocessor_file, root))
    return DeployableModel(network.eval(), preprocessor, task.task_type).eval()


def deploy(inputs: StageInputs) -> DeploymentManifest:
    params = inputs.params.deployment
    root = inputs.workspace
    task = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    training = TrainingManifest.read(root)
    model = load_deployable(root)
    test_inputs = Splits.load(PreparationManifest.file(preparation.splits_file, root)).features["test"]

    onnx_path = export_onnx(model, test_inputs, inputs.output / "model.onnx")
    session = inference_session(onnx_path, params.latency_threads)
    parity = check_parity(model, session, test_inputs, params.parity_tolerance)
    agreement = f", class agreement {parity.class_agreement:.4f}" if task.task_type == "classification" else ""
    inputs.say(
        f"[{STAGE}] parity on {parity.samples} test inputs: max |difference| {parity.max_absolute_difference:.2e}{agreement}"
    )
    metrics = {"parity_max_absolute_difference": parity.max_absolute_difference, "parity_class_agreement": parity.class_agreement}
    for batch_size in LATENCY_BATCH_SIZES:
        latency = measure_latency(model, session, test_inputs, batch_size, params.latency_repeats, params.latency_threads)
        metrics.update({f"batch{batch_size}_{name}": value for name, value in latency.items()})
        inputs.say(
            f"[{STAGE}] batch {batch_size}: ONNX Runtime p50 {latency['onnxruntime_p50_ms']:.3f} ms, "
            f"PyTorch p50 {latency['pytorch_p50_ms']:.3f} ms ({latency['speedup_p50']:.1f}x, "
            f"{params.latency_threads} thread(s))"
        )

    name = params.registered_model_name or f"dlautoml-{Path(task.data_path).stem}"
    warnings = []
    meets_threshold = training.test_score >= task.success_threshold
    tags = {
        "data_version": inputs.context.data_version,
        "git_commit": inputs.context.git_commit,
        f"test_{training.test_metric}": f"{training.test_score:.6f}",
        "meets_success_threshold": str(meets_threshold).lower(),
    }
    registration = register_onnx_model(onnx_path, name, test_inputs[:2], tags, set_alias=meets_threshold)
    if not meets_threshold:
        warnings.append(
            f"version {registration.version} is registered without an alias: its test {training.test_metric} "
            f"{training.test_score:.4f} is below the success threshold {task.success_threshold:.4f}"
        )
    inputs.say(f"[{STAGE}] registered {registration.uri} (version {registration.version})")
    return DeploymentManifest(
        input_name=INPUT_NAME,
        output_name=model.output_name,
        registered_model=name,
        registered_version=registration.version,
        alias=registration.alias,
        model_uri=registration.uri,
        metrics=metrics,
        warnings=warnings,
    )


@task(name=STAGE, task_run_name=STAGE, cache_policy=NONE, log_prints=True)
def deployment(context: RunContext) -> DeploymentManifest:
    """Exports to ONNX, checks parity with PyTorch, measures latency and registers the model."""
    return execute_stage(STAGE, DeploymentManifest, context, deploy)


if __name__ == "__main__":
    run_standalone(STAGE, DeploymentManifest, deploy)
