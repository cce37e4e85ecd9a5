"""What every loader shares: the loaded dataset, the split names a file may give, and how one kind of
file is told from another (image, table and sequence suffixes; a long-format sequence table; a column
of image paths)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from components.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
SEQUENCE_SUFFIXES = {".npz"}
SEQUENCE_ID_NAMES = {"id", "series", "series_id", "sequence", "sequence_id", "sample", "sample_id", "recording", "session"}
TIME_NAMES = {"time", "timestamp", "step", "t", "time_step", "timestep", "tick", "frame"}
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}


@dataclass
class RawDataset:
    """Samples as loaded: features (float32 table columns or uint8 images NCHW) and raw targets."""

    modality: str
    features: np.ndarray
    target: np.ndarray | None
    feature_names: list[str]
    sample_ids: list[str]
    warnings: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)  # categorical column -> its values (code i+1)
    text_length: int = 0  # multimodal: how many token codes end each row
    image_shape: tuple[int, ...] = ()  # multimodal with images: each row ends with the image's pixels (C, H, W)
    official_splits: np.ndarray | None = None  # train / validation / test per sample, from a split column
    groups: np.ndarray | None = None  # samples of one group never straddle two splits

    def __len__(self) -> int:
        return len(self.features)


def official_splits(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """Train, validation or test per sample, from a split column's values (``SPLIT_NAMES`` spellings)."""
    labels = values.astype(str).str.strip().str.lower()
    unknown = sorted(set(labels) - set(SPLIT_NAMES))
    if unknown:
        raise DataError(
            f"split column '{column}' of {path} holds {', '.join(map(repr, unknown[:5]))}: "
            f"use train, validation or test (or rename the column if it is not a split)"
        )
    splits = labels.map(SPLIT_NAMES).to_numpy(dtype=object)
    missing = [name for name in ("train", "test") if name not in set(splits)]
    if missing:
        raise DataError(f"split column '{column}' of {path} has no {' and no '.join(missing)} rows: the split needs both")
    return splits


def long_format_columns(frame: pd.DataFrame) -> tuple[str, str] | None:
    """(id column, time column) when a table holds sequences in long format: one row per time step,
    an id column whose values repeat, and a time column."""
    names = {str(column).strip().lower(): column for column in frame.columns}
    identifier = next((names[name] for name in names if name in SEQUENCE_ID_NAMES), None)
    time_column = next((names[name] for name in names if name in TIME_NAMES), None)
    if identifier is None or time_column is None or frame[identifier].nunique() >= len(frame):
        return None
    return identifier, time_column


def image_path_column(frame: pd.DataFrame, folder: Path) -> str | None:
    """The column whose values are paths (relative to ``folder``) of image files, if any."""
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            continue  # numbers are not paths (and converting a million of them to text took seconds)
        values = frame[column].dropna().head(20).astype(str).tolist()
        if values and all(Path(value).suffix.lower() in IMAGE_SUFFIXES for value in values):
            if sum((folder / value).is_file() for value in values) >= len(values) / 2:
                return str(column)
    return None


def source_signature(source: Path) -> tuple:
    """Changes when the file, or any file under the folder, is changed, added or removed (or moved)."""
    source = Path(source)
    if not source.is_dir():
        status = source.stat()
        return (str(source.resolve()), status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)
    entries = []
    for directory, _, names in os.walk(source):
        for name in names:
            try:
                status = os.stat(os.path.join(directory, name))
            except OSError:
                continue
            entries.append((os.path.join(directory, name), status.st_size, status.st_mtime_ns, status.st_ctime_ns))
    return (str(source.resolve()), hash(tuple(sorted(entries))))


def read_only(dataset: RawDataset) -> RawDataset:
    """A view of ``dataset`` whose arrays refuse writes and whose lists and dicts are the caller's own:
    what a loaded dataset shared by several readers hands each of them."""
    for array in (dataset.features, dataset.target, dataset.official_splits, dataset.groups):
        if isinstance(array, np.ndarray):
            array.flags.writeable = False
    return replace(
        dataset, sample_ids=list(dataset.sample_ids), warnings=list(dataset.warnings), categories=dict(dataset.categories)
    )
