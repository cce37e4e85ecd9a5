"""Every check that can reject a dataset, run before a pipeline writes anything."""

from __future__ import annotations

from pathlib import Path

from components.config import DataPreparationParams, TaskFormulationParams
from components.data.formulation import TaskFormulation, formulate_task
from components.data.preparation import check_class_sizes, encode_target, split_dataset
from components.data.sources import detect_modality, load_dataset


def validate_dataset(source: Path, formulation: TaskFormulationParams, preparation: DataPreparationParams) -> TaskFormulation:
    """Loads, formulates and dry-runs the split of a dataset.

    Raises:
        DataError: the first problem found, in a message that names it and what to do.
    """
    modality = (
        detect_modality(source, formulation.target, **preparation.table_columns())
        if formulation.modality == "auto"
        else formulation.modality
    )
    dataset = load_dataset(source, modality, formulation.target, preparation.max_image_size, **preparation.table_columns())
    task = formulate_task(dataset, formulation)
    targets = encode_target(dataset.target, task.task_type, task.class_names)
    if task.task_type == "classification":
        check_class_sizes(targets, task.class_names or [])
    split_dataset(
        dataset.features,
        targets,
        dataset.sample_ids,
        task.task_type,
        preparation.test_fraction,
        preparation.validation_fraction,
        preparation.seed,
        official=dataset.official_splits,
        groups=dataset.groups,
    )
    return task
