"""Task formulation: from a loaded dataset and the user's hints to a precise task statement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.config import TaskFormulationParams
from components.data.dataset import RawDataset
from components.errors import DataError

MAX_CLASSES_FOR_INTEGER_TARGET = 30


@dataclass
class TaskFormulation:
    task_type: str
    metric: str
    success_threshold: float
    class_names: list[str] | None
    reasons: list[str]


def _is_numeric(values: np.ndarray) -> bool:
    try:
        values.astype(np.float64)
    except (TypeError, ValueError):
        return False
    return True


def infer_task_type(target: np.ndarray) -> tuple[str, str]:
    """Classification for labels and small sets of integers; regression for other numbers."""
    if not _is_numeric(target):
        return "classification", "the target holds text labels"
    numbers = target.astype(np.float64)
    unique = np.unique(numbers)
    if np.all(np.mod(numbers, 1) == 0):
        if len(unique) <= MAX_CLASSES_FOR_INTEGER_TARGET:
            return "classification", f"the target holds {len(unique)} distinct whole numbers"
        return "regression", (
            f"the target holds {len(unique):,} distinct whole numbers, more than the {MAX_CLASSES_FOR_INTEGER_TARGET} "
            "taken for classes (if they are class labels or ids, pass --task-type classification)"
        )
    return "regression", f"the target holds {len(unique):,} distinct numeric values"


def class_labels(target: np.ndarray) -> list[str]:
    """Sorted class names, numerically when every label is a number."""
    if _is_numeric(target):
        numbers = np.unique(target.astype(np.float64))
        return [str(int(value)) if float(value).is_integer() else str(value) for value in numbers]
    return sorted({str(value) for value in target})


def label_strings(target: np.ndarray) -> np.ndarray:
    """The target as the same strings that :func:`class_labels` returns."""
    if _is_numeric(target):
        numbers = target.astype(np.float64)
        if np.all(np.isfinite(numbers) & (numbers == np.round(numbers))):
            return numbers.astype(np.int64).astype(str)  # whole numbers without a loop over the rows
        return np.array([str(int(value)) if float(value).is_integer() else str(value) for value in numbers])
    return np.asarray(target).astype(str)


def formulate_task(dataset: RawDataset, params: TaskFormulationParams) -> TaskFormulation:
    """Decides task type, metric and success threshold; every choice can be overridden in params.

    Raises:
        DataError: the target cannot support the task (a single class, or text for regression).
    """
    if dataset.target is None or len(dataset) == 0:
        raise DataError("the dataset has no labelled samples")
    reasons: list[str] = []
    if params.task_type == "auto":
        task_type, why = infer_task_type(dataset.target)
        reasons.append(f"task type {task_type}: {why}")
    else:
        task_type = params.task_type
        reasons.append(f"task type {task_type}: set in params.yaml")

    class_names: list[str] | None = None
    if task_type == "classification":
        class_names = class_labels(dataset.target)
        if len(class_names) < 2:
            raise DataError(
                f"the target '{params.target}' has a single class ({class_names[0]}): classification needs at least two classes"
            )
    elif not _is_numeric(dataset.target):
        raise DataError(f"the target '{params.target}' is not numeric, so it cannot be a regression target")

    if params.metric == "auto":
        metric = "accuracy" if task_type == "classification" else "r2"
        reasons.append(f"metric {metric}: the default for {task_type}")
    else:
        metric = params.metric
        reasons.append(f"metric {metric}: set in params.yaml")
    if (metric == "r2") != (task_type == "regression"):
        raise DataError(f"metric '{metric}' does not fit a {task_type} task")

    if params.success_threshold is not None:
        threshold = params.success_threshold
        reasons.append(f"success threshold {threshold:.3f}: set in params.yaml")
    elif task_type == "classification":
        majority = max(np.unique(label_strings(dataset.target), return_counts=True)[1]) / len(dataset)
        threshold = float(majority + 0.5 * (1 - majority))
        reasons.append(f"success threshold {threshold:.3f}: halfway from the majority-class rate ({majority:.3f}) to perfect")
    else:
        threshold = 0.5
        reasons.append("success threshold 0.500: explains at least half of the target's variance")
    return TaskFormulation(task_type, metric, threshold, class_names, reasons)
