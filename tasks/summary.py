"""The short report printed at the end of a pipeline run."""

from __future__ import annotations

from pathlib import Path

from components.config import load_params
from components.manifests import (
    DeploymentManifest,
    ModelManifest,
    MonitoringManifest,
    PreparationManifest,
    TaskManifest,
    TrainingManifest,
)
from components.models.families import FAMILIES


def architecture_line(family: str, architecture: dict, root: Path) -> str:
    """A model space's cells in words (images, sequences); other families' few choices as they are."""
    space = FAMILIES[family].space
    if space is None:
        return f"architecture {architecture}"
    return space.summary(architecture, PreparationManifest.read(root).input_shape)


def chosen_among(model: ModelManifest) -> str:
    """Where the search chose the family: among which."""
    return f" (chosen among {', '.join(model.families)} on validation)" if model.families else ""


def summary_figures(workspace: str | Path = ".") -> tuple[dict[str, float], dict[str, str]]:
    """The figures that compare pipeline runs in MLflow's runs table, as the parent run's metrics and
    tags: test score, ONNX latency, search size, monitoring calibration; model version and family."""
    root = Path(workspace)
    training = TrainingManifest.read(root)
    deployment = DeploymentManifest.read(root)
    monitoring = MonitoringManifest.read(root)
    metrics = {
        f"test_{training.test_metric}": training.test_score,
        "trials": float(training.trial_count),
        "onnx_latency_batch1_p50_ms": deployment.metrics["batch1_onnxruntime_p50_ms"],
        "onnx_latency_batch64_p50_ms": deployment.metrics["batch64_onnxruntime_p50_ms"],
        "conformal_test_coverage": monitoring.metrics["conformal_test_coverage"],
    }
    tags = {
        "model_family": training.family,
        "registered_model": deployment.registered_model,
        "model_version": str(deployment.registered_version),
        "test_metric": training.test_metric,
    }
    return metrics, tags


def pipeline_summary(workspace: str = ".", params_file: str = "params.yaml") -> str:
    root = Path(workspace)
    params = load_params(root / params_file)
    task = TaskManifest.read(root)
    model = ModelManifest.read(root)
    training = TrainingManifest.read(root)
    deployment = DeploymentManifest.read(root)
    monitoring = MonitoringManifest.read(root)
    latency = deployment.metrics
    lines = [
        "",
        "Pipeline finished",
        f"  task        {task.task_type} on {task.modality} data from {task.data_path} "
        f"({task.sample_count} samples), metric {task.metric}, success threshold {task.success_threshold:.3f}",
        f"  network     {training.family}{chosen_among(model)}, {architecture_line(training.family, training.architecture, root)}"
        + (
            f"; an ensemble of {len(training.ensemble)} ({', '.join(m['label'] for m in training.ensemble)})"
            if training.ensemble
            else ""
        ),
        f"  search      {training.trial_count} NNI trials (experiment {training.nni_experiment_id})",
        f"  test        {training.test_metric} {training.test_score:.4f}",
        f"  ONNX        p50 latency {latency['batch1_onnxruntime_p50_ms']:.3f} ms at batch 1, "
        f"{latency['batch64_onnxruntime_p50_ms']:.3f} ms at batch 64 "
        f"({latency['batch1_speedup_p50']:.1f}x eager PyTorch at batch 1)",
        f"  serving     {deployment.serving_file}: {deployment.quantisation.split(':')[0]}; "
        f"{deployment.serving_threads} thread(s), micro-batches of up to {deployment.max_batch_size}; `dlautoml serve`",
        f"  registry    {deployment.model_uri} (version {deployment.registered_version}) in {params.tracking.uri(root)}",
        f"  monitoring  drift p-value on the test split {monitoring.metrics['test_split_p_value']:.3f}; conformal "
        f"coverage {monitoring.metrics['conformal_test_coverage']:.3f} (nominal {monitoring.conformal_confidence})",
        "  UIs         dlautoml ui mlflow   (experiments, runs, registry)",
        "              dlautoml ui prefect  (flow and task runs)",
        f"              dlautoml ui nni      (the search: experiment {training.nni_experiment_id})",
    ]
    warnings = [warning for manifest in (task, training, deployment) for warning in manifest.warnings]
    lines += [f"  warning     {warning}" for warning in warnings]
    return "\n".join(lines)
