"""Stage 2, data_preparation: validated, split and normalised data plus the fitted preprocessing."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from components.data.preparation import Preprocessor, check_class_sizes, encode_target, split_dataset
from components.data.sources import load_dataset
from components.manifests import PreparationManifest, TaskManifest
from tasks.stage_runner import RunContext, StageInputs, execute_stage, run_standalone

STAGE = "data_preparation"


def prepare(inputs: StageInputs) -> PreparationManifest:
    params = inputs.params.data_preparation
    task = TaskManifest.read(inputs.workspace)
    dataset = load_dataset(inputs.workspace / task.data_path, task.modality, task.target, params.max_image_size)
    targets = encode_target(dataset.target, task.task_type, task.class_names)
    if task.task_type == "classification":
        check_class_sizes(targets, task.class_names or [])
    splits = split_dataset(
        dataset.features,
        targets,
        dataset.sample_ids,
        task.task_type,
        params.test_fraction,
        params.validation_fraction,
        params.seed,
    )
    regression_target = splits.targets["train"] if task.task_type == "regression" else None
    preprocessor = Preprocessor.fit(splits.features["train"], task.modality, regression_target)
    manifest = PreparationManifest(
        split_sizes=splits.sizes(),
        input_shape=preprocessor.input_shape,
        output_size=len(task.class_names) if task.class_names else 1,
        feature_names=dataset.feature_names,
        warnings=dataset.warnings,
        metrics={f"{split}_samples": float(size) for split, size in splits.sizes().items()},
    )
    splits.save(inputs.output / manifest.splits_file)
    preprocessor.save(inputs.output / manifest.preprocessor_file)
    inputs.say(f"[{STAGE}] split sizes {manifest.split_sizes}, network input shape {manifest.input_shape}")
    return manifest


@task(name=STAGE, task_run_name=STAGE, cache_policy=NONE, log_prints=True)
def data_preparation(context: RunContext) -> PreparationManifest:
    """Loads and validates the data, makes seeded stratified splits and fits the preprocessing."""
    return execute_stage(STAGE, PreparationManifest, context, prepare)


if __name__ == "__main__":
    run_standalone(STAGE, PreparationManifest, prepare)
