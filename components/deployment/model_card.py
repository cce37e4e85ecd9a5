"""A model card for each registered version: what it was trained on, how well it does and where, how
it is served, and where it came from. It becomes the version's description in the MLflow registry (the
version's page shows it) and a markdown artifact of the deployment run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.manifests import PreparationManifest, TaskManifest, TrainingManifest


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *[f"| {name} | {value} |" for name, value in rows]]


def model_card(
    name: str,
    version: str,
    task: TaskManifest,
    preparation: PreparationManifest,
    training: TrainingManifest,
    serving: dict[str, str],
    lineage: dict[str, str],
    class_report: Path | None = None,
) -> str:
    """The card as markdown. ``serving`` holds the quantisation decision, latencies and the promotion
    decision as sentences; ``lineage`` the data version, commit and runs; ``class_report`` the test
    split's per-class figures (classification)."""
    lines = [f"# {name} version {version}", ""]
    lines += ["## Task", ""] + _table(
        [
            ("data", f"{task.data_path} ({task.modality}, {task.sample_count:,} samples)"),
            ("task", f"{task.task_type} of `{task.target}`" + (f", {len(task.class_names)} classes" if task.class_names else "")),
            ("splits", ", ".join(f"{split} {size:,}" for split, size in preparation.split_sizes.items())),
            ("metric", f"{task.metric}; success threshold {task.success_threshold:.4f}"),
        ]
    )
    architecture = ", ".join(f"{key} {value}" for key, value in training.architecture.items())
    lines += ["", "## Model", ""] + _table(
        [
            ("family", training.family + (f", an ensemble of {len(training.ensemble)}" if training.ensemble else "")),
            ("architecture", architecture or "(none searched)"),
            (
                "search",
                f"{training.trial_count} NNI trials (experiment {training.nni_experiment_id}); NNI trial {training.best_trial} chosen",
            ),
            (f"test {training.test_metric}", f"{training.test_score:.4f}"),
        ]
    )
    if class_report is not None and class_report.is_file():
        report = pd.read_csv(class_report)
        lines += ["", "### Per class (test split)", "", "| " + " | ".join(report.columns) + " |"]
        lines.append("|" + "---|" * len(report.columns))
        lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in report.itertuples(index=False)]
    lines += ["", "## Serving", ""] + _table(list(serving.items()))
    lines += ["", "## Lineage", ""] + _table([(key, f"`{value}`") for key, value in lineage.items()])
    return "\n".join(lines) + "\n"
