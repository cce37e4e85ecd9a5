"""Stage 2, data_preparation: validated, split and normalised data plus the fitted preprocessing."""

from __future__ import annotations

import hashlib

import numpy as np
from prefect import task
from prefect.cache_policies import NONE

from components.data.feedback import FeedbackSet, feedback_splits
from components.data.preparation import SPLITS, Preprocessor, Splits, check_class_sizes, encode_target, split_dataset
from components.data.sources import load_dataset
from components.errors import DataError
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
    feedback_counts = add_feedback(inputs, task, splits)
    regression_target = splits.targets["train"] if task.task_type == "regression" else None
    preprocessor = Preprocessor.fit(splits.features["train"], task.modality, regression_target)
    manifest = PreparationManifest(
        split_sizes=splits.sizes(),
        input_shape=preprocessor.input_shape,
        output_size=len(task.class_names) if task.class_names else 1,
        feature_names=dataset.feature_names,
        warnings=dataset.warnings,
        metrics={
            **{f"{split}_samples": float(size) for split, size in splits.sizes().items()},
            **{f"feedback_{split}_samples": float(count) for split, count in feedback_counts.items()},
        },
    )
    splits.save(inputs.output / manifest.splits_file)
    preprocessor.save(inputs.output / manifest.preprocessor_file)
    inputs.say(f"[{STAGE}] split sizes {manifest.split_sizes}, network input shape {manifest.input_shape}")
    return manifest


def add_feedback(inputs: StageInputs, task, splits: Splits) -> dict[str, int]:
    """Appends the labelled production samples to the splits their ids assign them to; returns the
    counts per split. The test share is the held-back part: the promotion holdout is the dataset's
    test split plus it."""
    params = inputs.params.data_preparation
    if not params.feedback_version:
        return {}
    path = inputs.workspace / params.feedback_path
    if not path.is_file():
        raise DataError(
            f"params.yaml names feedback version {params.feedback_version} but {params.feedback_path} is missing: "
            f"run `dvc checkout {params.feedback_path}.dvc` (or `dvc pull`), or set data_preparation.feedback_version to null"
        )
    found = hashlib.md5(path.read_bytes()).hexdigest()
    if found != params.feedback_version:
        raise DataError(
            f"{params.feedback_path} has hash {found}, params.yaml expects {params.feedback_version}: it changed outside "
            f"dlautoml; run `dvc checkout {params.feedback_path}.dvc` to restore it, or `dlautoml run` to record the new version"
        )
    feedback = FeedbackSet.load(path)
    expected = list(splits.features["train"].shape[1:])
    if feedback.dataset != task.data_path or list(feedback.inputs.shape[1:]) != expected:
        inputs.say(f"[{STAGE}] {len(feedback)} feedback samples belong to {feedback.dataset or 'other data'}: not used")
        return {}
    parts, dropped = feedback_splits(feedback, task.task_type, task.class_names, params.test_fraction, params.validation_fraction)
    if dropped:
        inputs.say(
            f"[{STAGE}] warning: {len(dropped)} feedback labels are not classes of this task, e.g. {dropped[0]!r}: left out"
        )
    for split in SPLITS:
        features, targets, ids = parts[split]
        splits.features[split] = np.concatenate([splits.features[split], features.astype(splits.features[split].dtype)])
        splits.targets[split] = np.concatenate([splits.targets[split], targets.astype(splits.targets[split].dtype)])
        splits.sample_ids[split] = np.concatenate([splits.sample_ids[split], ids])
    counts = {split: len(parts[split][2]) for split in SPLITS}
    inputs.say(
        f"[{STAGE}] added {sum(counts.values())} labelled production samples: {counts['train']} train, "
        f"{counts['validation']} validation, {counts['test']} held back for the test split"
    )
    return counts


@task(name=STAGE, task_run_name=STAGE, cache_policy=NONE, log_prints=True)
def data_preparation(context: RunContext) -> PreparationManifest:
    """Loads and validates the data, makes seeded stratified splits and fits the preprocessing."""
    return execute_stage(STAGE, PreparationManifest, context, prepare)


if __name__ == "__main__":
    run_standalone(STAGE, PreparationManifest, prepare)
