"""Stage 1, task_formulation: what kind of problem this is, how it is scored, what counts as success."""

from __future__ import annotations

from components.data.formulation import formulate_task
from components.data.images import image_table
from components.data.meta_features import meta_features
from components.data.preparation import encode_target
from components.data.sources import detect_modality, load_dataset
from components.manifests import TaskManifest
from tasks.stage_runner import RunContext, StageInputs, execute_stage, run_standalone, stage_task

STAGE = "task_formulation"


def formulate(inputs: StageInputs) -> TaskManifest:
    params = inputs.params.task_formulation
    path = inputs.workspace / params.data_path
    modality = (
        detect_modality(path, params.target, **inputs.params.data_preparation.table_columns())
        if params.modality == "auto"
        else params.modality
    )
    preparation = inputs.params.data_preparation
    dataset = load_dataset(path, modality, params.target, preparation.max_image_size, **preparation.table_columns())
    formulation = formulate_task(dataset, params)
    listed = image_table(path) is not None
    kinds = {
        "image": "a folder with a table of image paths and labels" if listed else "a folder of class sub-folders",
        "sequence": "sequences of time steps",
        "text": "a table with one free-text column",
        "multimodal": "a table of image paths with other feature columns"
        if dataset.image_shape
        else "a table with a free-text column next to other columns",
        "tabular": "a table",
    }
    reasons = [f"modality {modality}: {kinds[modality]}"]
    reasons += formulation.reasons
    for reason in reasons:
        inputs.say(f"[{STAGE}] {reason}")
    targets = encode_target(dataset.target, formulation.task_type, formulation.class_names)
    meta = meta_features(dataset, targets, formulation.task_type, inputs.params.data_preparation.seed)
    inputs.say(f"[{STAGE}] meta-features: " + ", ".join(f"{key} {value:.4g}" for key, value in meta.items()))
    return TaskManifest(
        data_path=params.data_path,
        modality=modality,
        task_type=formulation.task_type,
        target="class folder" if modality == "image" and not listed else params.target,
        metric=formulation.metric,
        success_threshold=formulation.success_threshold,
        class_names=formulation.class_names,
        sample_count=len(dataset),
        reasons=reasons,
        warnings=dataset.warnings,
        meta_features=meta,
        metrics={
            "samples": float(len(dataset)),
            "classes": float(len(formulation.class_names or [])),
            **{f"meta_{key}": value for key, value in meta.items()},
        },
    )


@stage_task(STAGE, task_run_name=STAGE)
def task_formulation(context: RunContext) -> TaskManifest:
    """Infers classification or regression, the modality and the metric; records the success threshold."""
    return execute_stage(STAGE, TaskManifest, context, formulate)


if __name__ == "__main__":
    run_standalone(STAGE, TaskManifest, formulate)
