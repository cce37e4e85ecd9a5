"""Stage 2, data_preparation: validated, split and normalised data plus the fitted preprocessing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import mlflow
import numpy as np

from components.data.cleaning import (
    describe_blocks,
    find_duplicates,
    outliers_by_split,
    shared_groups,
    shared_inputs,
)
from components.data.feedback import FeedbackSet, feedback_splits
from components.data.formulation import label_strings
from components.data.label_errors import label_issues
from components.data.meta_features import dataset_blocks
from components.data.preparation import SPLITS, Preprocessor, Splits, check_class_sizes, encode_target, split_dataset
from components.data.quality import (
    constant_columns,
    examples,
    headline_metrics,
    missing_shares,
    write_report,
)
from components.data.sources import load_dataset
from components.errors import DataError
from components.manifests import PreparationManifest, TaskManifest
from components.training.augmentation import choose_augmentation
from tasks.stage_runner import (
    METRICS_FILE,
    RunContext,
    StageInputs,
    artifact_key,
    execute_stage,
    publish_markdown,
    run_standalone,
    stage_task,
)

STAGE = "data_preparation"


def _finding(positions, policy: str, ids: np.ndarray, method: str = "") -> dict:
    return {"count": len(positions), "policy": policy, "method": method, "ids": [str(ids[p]) for p in positions]}


def prepare(inputs: StageInputs) -> PreparationManifest:
    params = inputs.params.data_preparation
    task = TaskManifest.read(inputs.workspace)
    target = inputs.params.task_formulation.target  # as task formulation loaded it (the manifest may say "class folder")
    dataset = load_dataset(
        inputs.workspace / task.data_path, task.modality, target, params.max_image_size, **params.table_columns()
    )
    targets = encode_target(dataset.target, task.task_type, task.class_names)
    features, ids = dataset.features, np.asarray(dataset.sample_ids)
    labels = label_strings(dataset.target) if task.task_type == "classification" else np.asarray(dataset.target).astype(str)
    seed, limit = params.seed, params.report_examples
    decisions: list[str] = []
    warnings = list(dataset.warnings)
    blocks = dataset_blocks(dataset)

    def show(positions, notes: list[str] | None = None) -> list[dict]:
        return examples(
            features,
            list(positions),
            ids,  # arrays: a list of a million ids, made three times, took 2 s
            labels,
            task.modality,
            dataset.feature_names,
            limit,
            dataset.categories,
            dataset.image_shape,
            notes,
        )

    # Duplicates first, on the whole dataset: a copy in two splits would leak test inputs into training.
    inputs.say(f"[{STAGE}] {len(targets):,} samples loaded: looking for duplicates and conflicting labels")
    groups = find_duplicates(features, targets)
    findings = {
        "duplicates": _finding(
            groups.duplicates, params.duplicates, ids, "identical input and label: every copy after the first"
        ),
        "conflicts": _finding(groups.conflicts, params.conflicts, ids, "identical input seen with different labels: every copy"),
    }
    example_sets = {"duplicates": show(groups.duplicates), "conflicts": show(groups.conflicts)}
    dropped: set[int] = set()
    for kind, positions in (("duplicates", groups.duplicates), ("conflicts", groups.conflicts)):
        if getattr(params, kind) == "drop":
            dropped |= set(positions)
        if positions:
            decisions.append(f"{len(positions)} {kind}: {'dropped' if getattr(params, kind) == 'drop' else 'flagged, kept'}")

    if task.task_type == "classification" and params.label_errors != "off":
        remaining = np.array(sorted(set(range(len(targets))) - dropped), dtype=int)
        inputs.say(f"[{STAGE}] looking for label errors: out-of-fold probabilities of {len(remaining):,} samples (cleanlab)")
        issues = label_issues(features[remaining], targets[remaining], seed, params.label_error_filter, blocks)
        found = remaining[issues.positions]  # the likeliest first
        method = (
            f"out-of-fold probabilities of an RBF SVM on {describe_blocks(blocks)}, cleanlab filter '{params.label_error_filter}'"
        )
        findings["label_errors"] = _finding(sorted(found.tolist()), params.label_errors, ids, method)
        names = task.class_names or []
        example_sets["label_errors"] = show(
            found, [f"{names[int(c)]} (p {p:.2f})" for c, p in zip(issues.suggested, issues.probability)]
        )
        if params.label_errors == "drop":
            dropped |= set(found.tolist())
        decisions.append(
            f"{len(found)} likely label errors ({len(found) / max(len(remaining), 1):.1%}): "
            + ("dropped" if params.label_errors == "drop" else "flagged, kept")
        )
    else:
        reason = "off in params.yaml" if params.label_errors == "off" else "not applicable to regression"
        findings["label_errors"] = _finding([], reason, ids)

    kept = np.array(sorted(set(range(len(targets))) - dropped), dtype=int)
    if task.task_type == "classification":
        check_class_sizes(targets[kept], task.class_names or [])
    splits = split_dataset(
        features[kept],
        targets[kept],
        list(ids[kept]),
        task.task_type,
        params.test_fraction,
        params.validation_fraction,
        seed,
        official=None if dataset.official_splits is None else dataset.official_splits[kept],
        groups=None if dataset.groups is None else dataset.groups[kept],
    )
    if dataset.official_splits is not None:
        decisions.append(f"split: the table's '{params.split_column}' column, as given")
    if dataset.groups is not None:
        group_of = dict(zip(ids[kept], dataset.groups[kept]))
        straddling = shared_groups({split: [group_of.get(i) for i in splits.sample_ids[split]] for split in SPLITS})
        decisions.append(f"grouped split on '{params.group_column}': {straddling} groups in more than one split")
    feedback_counts = add_feedback(inputs, task, splits)

    shared = shared_inputs(splits.features)
    if shared:
        warnings.append(f"identical inputs in two splits: {shared}; set data_preparation.duplicates to drop to remove them")

    sizes = ", ".join(f"{name} {size:,}" for name, size in splits.sizes().items())
    inputs.say(f"[{STAGE}] split into {sizes}: fitting the outlier detector on the training split")
    outliers = outliers_by_split(splits.features["train"], splits.features, params.outlier_share, seed, blocks)
    outlier_ids = [str(splits.sample_ids[split][p]) for split in SPLITS for p in outliers[split]]
    findings["outliers"] = {
        "count": len(outlier_ids),
        "policy": params.outliers,
        "method": f"IsolationForest fitted on the training split, {params.outlier_share:.0%} expected",
        "ids": outlier_ids,
    }
    example_sets["outliers"] = examples(
        splits.features["train"],
        list(outliers["train"]),
        list(splits.sample_ids["train"]),
        [(task.class_names or [])[t] if task.task_type == "classification" else str(t) for t in splits.targets["train"]],
        task.modality,
        dataset.feature_names,
        limit,
        dataset.categories,
        dataset.image_shape,
    )
    if params.outliers == "drop" and len(outliers["train"]):
        keep = np.setdiff1d(np.arange(len(splits.targets["train"])), outliers["train"])
        for table in (splits.features, splits.targets, splits.sample_ids):
            table["train"] = table["train"][keep]
        decisions.append(f"{len(outliers['train'])} training outliers dropped (validation and test keep theirs, flagged)")
    elif outlier_ids:
        decisions.append(f"{len(outlier_ids)} outliers flagged, kept")

    imbalance, counts = None, {}
    if task.task_type == "classification":
        train_counts = np.bincount(splits.targets["train"], minlength=len(task.class_names or []))
        counts = {
            name: int(count)
            for name, count in zip(task.class_names or [], np.bincount(targets[kept], minlength=len(train_counts)))
        }
        imbalance = float(train_counts.max() / max(train_counts[train_counts > 0].min(), 1))
        decisions.append(
            f"class balance: largest/smallest training class {imbalance:.1f}x"
            + (
                " (above model_formulation.imbalance_ratio the loss is weighted, or a sampler balances the batches)"
                if imbalance >= 2
                else ""
            )
        )
    if dataset.official_splits is None:
        decisions.append(
            f"{'stratified' if task.task_type == 'classification' else 'random'}{' grouped' if dataset.groups is not None else ''} "
            f"split with seed {seed}: test {params.test_fraction:.0%}, validation {params.validation_fraction:.0%}"
        )

    augmentation = choose_augmentation(
        task.modality,
        params.augmentation,
        params.rotation_degrees,
        params.shift,
        params.horizontal_flip,
        params.jitter,
        params.scaling,
        params.time_warp,
        dataset.image_shape,
    )
    decisions.append(augmentation.describe())
    regression_target = splits.targets["train"] if task.task_type == "regression" else None
    categories = {dataset.feature_names.index(column): len(values) for column, values in dataset.categories.items()}
    words = next(iter(dataset.categories.values()), None) if task.modality == "text" else None
    preprocessor = Preprocessor.fit(
        splits.features["train"], task.modality, regression_target, categories, dataset.text_length, dataset.image_shape, words
    )
    if dataset.image_shape:
        decisions.append(
            f"multimodal: {len(dataset.feature_names) - 1} table columns and the images of column "
            f"'{dataset.feature_names[-1]}' ({'x'.join(map(str, dataset.image_shape))}), one encoder each"
        )
    elif task.modality == "multimodal":
        decisions.append(
            f"multimodal: {len(dataset.feature_names) - 1} table columns and the text column "
            f"'{dataset.feature_names[-1]}' ({dataset.text_length} tokens), one encoder each"
        )
    elif task.modality == "text":
        decisions.append(
            f"text: {len(preprocessor.remaps[0]) - 1} words in the dataset, {preprocessor.cardinalities[0] - 1} in the training split"
        )
    elif categories:
        decisions.append(
            "categorical columns (embedded, vocabulary of the training split): "
            + ", ".join(f"{column} ({len(values)} values)" for column, values in dataset.categories.items())
        )
    report = {
        "data_path": task.data_path,
        "data_version": inputs.context.data_version,
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "modality": task.modality,
        "task_type": task.task_type,
        "samples_loaded": int(len(targets)),
        "samples_used": int(sum(splits.sizes().values())),
        "input_shape": list(features.shape[1:]),
        "class_counts": counts,
        "imbalance_ratio": imbalance,
        "missing_shares": missing_shares(features, dataset.feature_names),
        "constant_columns": constant_columns(features, dataset.feature_names) if task.modality == "tabular" else [],
        **findings,
        "splits": splits.sizes(),
        "feedback": feedback_counts,
        "leakage": {"shared_inputs": shared},
        "decisions": decisions,
        "warnings": warnings,
    }
    if report["constant_columns"]:
        warnings.append(f"constant columns carry no information: {', '.join(report['constant_columns'])}")
    json_path, html_path = write_report(inputs.output, report, example_sets)
    figures = headline_metrics(report)
    (inputs.output / METRICS_FILE).write_text(json.dumps(figures, indent=2) + "\n")
    for path in (json_path, html_path):
        mlflow.log_artifact(str(path), artifact_path=STAGE)
    publish_markdown(
        artifact_key("data-quality", inputs.workspace), quality_markdown(report), f"Data quality of {task.data_path}"
    )

    manifest = PreparationManifest(
        split_sizes=splits.sizes(),
        input_shape=preprocessor.input_shape,
        output_size=len(task.class_names) if task.class_names else 1,
        feature_names=dataset.feature_names,
        categories=dataset.categories,
        text_length=dataset.text_length,
        image_shape=list(dataset.image_shape),
        augmentation=augmentation.model_dump() if augmentation.active else {},
        warnings=warnings,
        metrics={
            **figures,
            **{f"feedback_{split}_samples": float(count) for split, count in feedback_counts.items()},
        },
    )
    splits.save(inputs.output / manifest.splits_file)
    preprocessor.save(inputs.output / manifest.preprocessor_file)
    inputs.say(f"[{STAGE}] " + "; ".join(decisions))
    inputs.say(
        f"[{STAGE}] split sizes {manifest.split_sizes}, network input shape {manifest.input_shape}; report {html_path.name}"
    )
    return manifest


def quality_markdown(report: dict) -> str:
    lines = [f"### Data quality: {report['data_path']}", "", "| figure | value |", "|---|---|"]
    for key in ("samples_loaded", "samples_used", "imbalance_ratio"):
        if report.get(key) is not None:
            lines.append(f"| {key.replace('_', ' ')} | {report[key]:.4g} |")
    for kind in ("duplicates", "conflicts", "outliers", "label_errors"):
        lines.append(f"| {kind.replace('_', ' ')} | {report[kind]['count']} ({report[kind]['policy']}) |")
    lines.append(f"| splits | {', '.join(f'{name} {size:,}' for name, size in report['splits'].items())} |")
    lines += ["", *[f"- {decision}" for decision in report["decisions"]], *[f"- warning: {w}" for w in report["warnings"]]]
    return "\n".join(lines)


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


@stage_task(STAGE, task_run_name=STAGE)
def data_preparation(context: RunContext) -> PreparationManifest:
    """Loads and validates the data, makes seeded stratified splits and fits the preprocessing."""
    return execute_stage(STAGE, PreparationManifest, context, prepare)


if __name__ == "__main__":
    run_standalone(STAGE, PreparationManifest, prepare)
