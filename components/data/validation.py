"""Every check that can reject a dataset, run before a pipeline writes anything."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from components.config import DataPreparationParams, TaskFormulationParams
from components.data.cleaning import find_duplicates
from components.data.dataset import RawDataset, source_signature
from components.data.formulation import TaskFormulation, formulate_task
from components.data.preparation import check_class_sizes, encode_target, split_dataset
from components.data.sources import detect_modality, load_dataset
from components.errors import DataError, listing

# What this process has validated already: the command line's pre-flight and the run it starts check
# the same data, which on millions of rows takes minutes each time.
_VALIDATED: dict[tuple, TaskFormulation] = {}


def validate_dataset(source: Path, formulation: TaskFormulationParams, preparation: DataPreparationParams) -> TaskFormulation:
    """Loads, formulates and dry-runs the split of a dataset; the same data with the same parameters is
    validated once per process.

    Raises:
        DataError: the first problem found, in a message that names it and what to do.
    """
    key = (source_signature(source), formulation.model_dump_json(), preparation.model_dump_json()) if source.exists() else None
    if key in _VALIDATED:
        return _VALIDATED[key]
    task = _validate(source, formulation, preparation)
    if key is not None:
        _VALIDATED[key] = task
    return task


def _validate(source: Path, formulation: TaskFormulationParams, preparation: DataPreparationParams) -> TaskFormulation:
    if source.is_dir():
        check_links(source)
    modality = (
        detect_modality(source, formulation.target, **preparation.table_columns())
        if formulation.modality == "auto"
        else formulation.modality
    )
    dataset = load_dataset(source, modality, formulation.target, preparation.max_image_size, **preparation.table_columns())
    task = formulate_task(dataset, formulation)
    check_finite(dataset)
    targets = encode_target(dataset.target, task.task_type, task.class_names)
    if task.task_type == "regression" and not np.isfinite(targets).all():
        bad = np.flatnonzero(~np.isfinite(targets))
        raise DataError(
            f"the target holds {len(bad):,} value(s) that are not finite numbers (samples "
            f"{listing(dataset.sample_ids[i] for i in bad)}): give each sample a finite target or remove it"
        )
    if task.task_type == "classification":
        check_class_sizes(targets, task.class_names or [])
        check_classes_after_dropping_copies(dataset.features, targets, task.class_names or [], preparation)
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


def check_classes_after_dropping_copies(
    features: np.ndarray, targets: np.ndarray, class_names: list[str], preparation: DataPreparationParams
) -> None:
    """The class sizes once data preparation drops duplicated and conflicting rows (as configured):
    a dataset whose copies are all it has would otherwise fail inside the pipeline, after writing."""
    groups = find_duplicates(features, targets)
    dropped = sorted(
        {
            *(groups.duplicates if preparation.duplicates == "drop" else []),
            *(groups.conflicts if preparation.conflicts == "drop" else []),
        }
    )
    if not dropped:
        return
    try:
        check_class_sizes(np.delete(targets, dropped), class_names)
    except DataError as error:
        raise DataError(
            f"after dropping {len(dropped):,} duplicated or conflicting row(s) (identical inputs; "
            f"data_preparation.duplicates and .conflicts are 'drop'), {error}"
        ) from error


def check_links(folder: Path) -> None:
    """Refuses symbolic links that would make copying the folder endless or take in other files: a
    link to a folder (it can loop back: copying a link to a parent fills the disk), a link that leaves
    the folder, or one that points nowhere. Links to files inside the folder are kept.

    Raises:
        DataError: the first such links, named, with what to do.
    """
    root = folder.resolve()
    bad: list[str] = []
    for directory, folders, files in os.walk(folder, followlinks=False):
        for name in [*folders, *files]:
            path = Path(directory) / name
            if not path.is_symlink():
                continue
            target = path.resolve()
            if not target.exists():
                bad.append(f"{path.relative_to(folder)} (points nowhere)")
            elif target.is_dir():
                bad.append(
                    f"{path.relative_to(folder)} (a link to a folder{', which loops' if path.parent.resolve().is_relative_to(target) else ''})"
                )
            elif not target.is_relative_to(root):
                bad.append(f"{path.relative_to(folder)} (leaves the folder for {target})")
    if bad:
        raise DataError(
            f"{folder} holds {len(bad):,} symbolic link(s) that cannot be copied safely: {listing(bad)}; "
            "replace each with the files themselves, or remove it"
        )


def check_finite(dataset: RawDataset) -> None:
    """Infinite feature values (``inf``, ``1e309``) are refused here: they would pass as numbers and
    break the standardisation later, after the run has written its outputs. Missing values (empty
    cells, NaN) are allowed: the preprocessing fills them."""
    if not np.issubdtype(dataset.features.dtype, np.floating):
        return
    channels = dataset.features.shape[-1] if dataset.modality == "sequence" else None
    flat = dataset.features.reshape(len(dataset), -1)
    infinite = np.isinf(flat)
    if not infinite.any():
        return
    columns = np.flatnonzero(infinite.any(axis=0))
    if channels:
        columns = sorted({int(column) % channels for column in columns})
    names = [dataset.feature_names[c] if c < len(dataset.feature_names) else f"value {c}" for c in columns]
    samples = [dataset.sample_ids[i] for i in np.flatnonzero(infinite.any(axis=1))]
    raise DataError(
        f"{int(infinite.sum()):,} feature value(s) are infinite, in {listing(map(repr, names))} (samples "
        f"{listing(samples)}): replace them with finite numbers, or leave the cells empty for missing values"
    )
