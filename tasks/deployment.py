"""Stage 5, deployment: the ONNX model with its preprocessing, checked against PyTorch, timed,
and registered in MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.tracking import MlflowClient

from components.data.preparation import Preprocessor, Splits
from components.deployment.model_card import model_card
from components.deployment.onnx_export import INPUT_NAME, check_parity, export_onnx, inference_session, measure_latency
from components.deployment.optimisation import (
    choose_serving_settings,
    gate_quantisation,
    plot_sweep,
    quantise_int8,
    safe_quantisation_settings,
    save_optimised_graph,
    sweep,
)
from components.deployment.promotion import promote_if_better
from components.deployment.registry import CHALLENGER, CHAMPION, register_onnx_model
from components.deployment.wrapper import DeployableModel
from components.manifests import DeploymentManifest, PreparationManifest, TaskManifest, TrainingManifest
from components.models.families import build_network, network_for
from components.search.constraints import Constraints, violations_of
from components.search.ensemble import Ensemble
from components.training.fit import evaluation_metrics
from components.training.init_from import log_network, network_record
from tasks.stage_runner import RunContext, StageInputs, execute_stage, run_standalone, stage_task

STAGE = "deployment"
LATENCY_BATCH_SIZES = (1, 64)


def load_deployable(root) -> DeployableModel:
    """The trained network with the fitted preprocessing in front of it."""
    task = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    training = TrainingManifest.read(root)
    preprocessor = Preprocessor.load(PreparationManifest.file(preparation.preprocessor_file, root))

    shape, outputs = preparation.input_shape, preparation.output_size
    network = build_network(training.family, shape, outputs, training.architecture, preprocessor)
    if training.ensemble:  # members of a joint search may be of other families than the chosen one
        members = [
            network_for(member["configuration"], training.family, shape, outputs, preprocessor) for member in training.ensemble
        ]
        network = Ensemble(members, [member["weight"] for member in training.ensemble], task.task_type)
    network.load_state_dict(torch.load(TrainingManifest.file(training.model_file, root), map_location="cpu", weights_only=True))
    return DeployableModel(network.eval(), preprocessor, task.task_type).eval()


def metric_scorer(task_type: str, targets: np.ndarray):
    """The task's test metric computed from ONNX outputs (probabilities or predictions)."""
    metric = "accuracy" if task_type == "classification" else "r2"
    return lambda outputs: evaluation_metrics(task_type, outputs, targets)[metric]


def serving_metadata(task: TaskManifest, preparation: PreparationManifest, threads: int, max_batch: int) -> dict:
    """What a server needs besides the graph: how to read inputs and name outputs."""
    return {
        "modality": task.modality,
        "task_type": task.task_type,
        "class_names": task.class_names or [],
        "feature_names": preparation.feature_names,
        "categories": preparation.categories,
        "text_length": preparation.text_length,
        "image_shape": preparation.image_shape,
        "input_shape": preparation.input_shape,
        "serving_threads": threads,
        "max_batch_size": max_batch,
    }


def deploy(inputs: StageInputs) -> DeploymentManifest:
    params = inputs.params.deployment
    root = inputs.workspace
    out = inputs.output
    task = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    training = TrainingManifest.read(root)
    model = load_deployable(root)
    splits = Splits.load(PreparationManifest.file(preparation.splits_file, root))
    test_inputs = splits.features["test"]

    def say(message: str) -> None:
        inputs.say(f"[{STAGE}] {message}")

    onnx_path = export_onnx(model, test_inputs, out / "model.onnx")
    session = inference_session(onnx_path, params.latency_threads)
    parity = check_parity(model, session, test_inputs, params.parity_tolerance)
    agreement = f", class agreement {parity.class_agreement:.4f}" if task.task_type == "classification" else ""
    say(f"parity on {parity.samples} test inputs: max |difference| {parity.max_absolute_difference:.2e}{agreement}")
    metrics = {"parity_max_absolute_difference": parity.max_absolute_difference, "parity_class_agreement": parity.class_agreement}
    for batch_size in LATENCY_BATCH_SIZES:
        latency = measure_latency(model, session, test_inputs, batch_size, params.latency_repeats, params.latency_threads)
        metrics.update({f"batch{batch_size}_{name}": value for name, value in latency.items()})
        say(
            f"batch {batch_size}: ONNX Runtime p50 {latency['onnxruntime_p50_ms']:.3f} ms, "
            f"PyTorch p50 {latency['pytorch_p50_ms']:.3f} ms ({latency['speedup_p50']:.1f}x, {params.latency_threads} thread(s))"
        )

    save_optimised_graph(onnx_path, out / "model.optimised.onnx")
    quantisation = safe_quantisation_settings()
    method = quantise_int8(onnx_path, out / "model.int8.onnx", training.family, splits.features["train"][:256], quantisation)
    decision = gate_quantisation(
        session,
        inference_session(out / "model.int8.onnx", params.latency_threads),
        test_inputs,
        metric_scorer(task.task_type, splits.targets["test"]),
        params.quantisation_tolerance,
        method,
    )
    say(f"{decision.reason}; quantisation {method}; processor {quantisation.processor.description()}")
    metrics.update(
        {"float32_test_score": decision.float_score, "int8_test_score": decision.int8_score, "int8_kept": float(decision.kept)}
    )
    serving_file = "model.int8.onnx" if decision.kept else "model.onnx"

    rows = sweep(out / serving_file, test_inputs, params.sweep_batch_sizes, params.sweep_threads, params.sweep_seconds)
    pd.DataFrame([vars(row) for row in rows]).to_csv(out / "sweep.csv", index=False)
    plot_sweep(rows, out / "sweep.png")
    chosen = choose_serving_settings(rows)
    say(
        f"serving {serving_file} with {chosen['threads']} thread(s), micro-batches of up to {chosen['max_batch_size']} "
        f"({chosen['best_throughput']:.0f} samples/s at best)"
    )
    for name in ("sweep.csv", "sweep.png"):
        mlflow.log_artifact(str(out / name), artifact_path=STAGE)

    name = params.registered_model_name or f"dlautoml-{Path(task.data_path).stem}"
    warnings = []
    preprocessor = Preprocessor.load(PreparationManifest.file(preparation.preprocessor_file, root))
    limits = Constraints(**inputs.params.training.constraints())
    over_limits = violations_of(model.network, preprocessor, task.task_type, test_inputs, limits)
    if over_limits:
        warnings.append(
            f"the model breaks the hardware limits in params.yaml ({'; '.join(over_limits)}): registered without an alias"
        )
        say(warnings[-1])
    meets_threshold = training.test_score >= task.success_threshold
    tags = {
        "data_version": inputs.context.data_version,
        "git_commit": inputs.context.git_commit,
        f"test_{training.test_metric}": f"{training.test_score:.6f}",
        "meets_success_threshold": str(meets_threshold).lower(),
        "meets_hardware_limits": str(not over_limits).lower(),
        "quantisation": decision.reason,
        **quantisation.tags(),
        **training.lineage,
    }
    # The PyTorch network the ONNX graph came from, next to it: what training.init_from starts from.
    log_network(
        TrainingManifest.file(training.model_file, root),
        network_record(training.family, training.architecture, task.modality, preparation.input_shape, bool(training.ensemble)),
    )
    registration = register_onnx_model(
        out / serving_file,
        name,
        np.nan_to_num(test_inputs[:2]),  # an example without missing values: MLflow validates it as JSON
        tags,
        metadata=serving_metadata(task, preparation, int(chosen["threads"]), int(chosen["max_batch_size"])),
        set_alias=meets_threshold and not over_limits,
    )
    if not meets_threshold:
        warnings.append(
            f"version {registration.version} is registered without an alias: its test {training.test_metric} "
            f"{training.test_score:.4f} is below the success threshold {task.success_threshold:.4f}"
        )
    say(f"registered {registration.uri} (version {registration.version})")
    promotion = ""
    if registration.alias == CHALLENGER and params.auto_promote:
        held_back = int(np.char.startswith(splits.sample_ids["test"].astype(str), "feedback/").sum())
        holdout = (
            f"the same holdout: {len(test_inputs) - held_back} test inputs of the dataset"
            f" + {held_back} held-back labelled production inputs"
        )
        gate = promote_if_better(
            name,
            test_inputs,
            splits.targets["test"],
            task.task_type,
            task.metric,
            challenger=registration.version,
            holdout=holdout,
        )
        promotion = gate.reason
        say(promotion)
        if gate.promoted:
            registration.alias, registration.uri = CHAMPION, f"models:/{name}@{CHAMPION}"
    serving = {
        "file": f"{serving_file}: {decision.reason}",
        "latency": f"p50 {metrics['batch1_onnxruntime_p50_ms']:.3f} ms at batch 1, {metrics['batch64_onnxruntime_p50_ms']:.3f} ms at batch 64",
        "threads and batches": f"{int(chosen['threads'])} thread(s), micro-batches of up to {int(chosen['max_batch_size'])}",
        "alias": registration.alias or "none",
        "promotion": promotion or ("first version: champion" if registration.alias == CHAMPION else "not offered"),
        "warnings": "; ".join(warnings) or "none",
    }
    lineage = {
        "data version": inputs.context.data_version,
        "git commit": inputs.context.git_commit,
        "pipeline run": inputs.context.parent_run_id or "(dvc repro)",
        "deployment run": inputs.run_id,
    }
    card = model_card(
        name,
        registration.version,
        task,
        preparation,
        training,
        serving,
        lineage,
        root / "outputs" / "training" / "class_report.csv",
    )
    (out / "model_card.md").write_text(card)
    mlflow.log_text(card, f"{STAGE}/model_card.md")
    MlflowClient().update_model_version(name, registration.version, description=card)  # the registry page shows it
    return DeploymentManifest(
        promotion=promotion,
        serving_file=serving_file,
        quantisation=decision.reason,
        quantisation_settings=quantisation.tags(),
        serving_threads=int(chosen["threads"]),
        max_batch_size=int(chosen["max_batch_size"]),
        input_name=INPUT_NAME,
        output_name=model.output_name,
        registered_model=name,
        registered_version=registration.version,
        alias=registration.alias,
        model_uri=registration.uri,
        metrics=metrics,
        warnings=warnings,
    )


@stage_task(STAGE, task_run_name=STAGE)
def deployment(context: RunContext) -> DeploymentManifest:
    """Exports to ONNX, checks parity with PyTorch, measures latency and registers the model."""
    return execute_stage(STAGE, DeploymentManifest, context, deploy)


if __name__ == "__main__":
    run_standalone(STAGE, DeploymentManifest, deploy)
