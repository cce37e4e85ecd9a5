"""Loading raw data from the user's files, with clear errors for the problems users actually hit: which
loader reads a path, labelled (``load_dataset``) or new inputs for a trained model (``load_unlabelled_inputs``).
The loaders are one module per kind: ``tables``, ``text_tables``, ``sequences`` and ``images``.

Understood: tables (CSV, Parquet) of numeric, categorical and free-text columns; sequences (``.npz``
or a long table); folders of images with one sub-folder per class, or with one table that lists the
images (and may hold other columns: images plus table columns are multimodal). Everything is
returned as numpy arrays in a :class:`RawDataset`; nothing is normalised here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.data.dataset import SEQUENCE_SUFFIXES, TABLE_SUFFIXES, RawDataset, read_only, source_signature
from components.data.images import (
    image_files,
    image_listing,
    image_table,
    image_table_columns,
    images_to_array,
    listed_images,
    load_image_folder,
    load_image_table,
    open_image,
)
from components.data.sequences import fit_length, load_sequences, long_table, sequence_arrays
from components.data.tables import forget_table, load_table, read_table, table_modality, table_rows
from components.data.text_tables import load_multimodal, load_text
from components.errors import DataError
from components.errors import listing as listed  # 'listing' names image listings here


def detect_modality(
    path: Path, target: str | None = None, split_column: str | None = None, group_column: str | None = None
) -> str:
    """Tells the modality from the path: a folder is images (multimodal when its table of image paths
    has feature columns too), a table is tabular, text, multimodal or long-format sequences. The
    target, split and group columns are not features.

    Raises:
        DataError: the path does not exist or is of a kind the platform does not read.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data path {path} does not exist: pass an existing CSV file or image folder with --data")
    key = (source_signature(path), target, split_column, group_column)
    if key not in _DETECTED:
        _DETECTED.clear()  # one dataset's, as for the loaded dataset
        _DETECTED[key] = _detect(path, target, split_column, group_column)
    return _DETECTED[key]


def _detect(path: Path, target: str | None, split_column: str | None, group_column: str | None) -> str:
    if path.is_dir():
        listing = image_listing(path)
        if listing is not None and image_table_columns(listing[1], path, (target, split_column, group_column)):
            return "multimodal"
        return "image"
    if path.suffix.lower() in SEQUENCE_SUFFIXES:
        return "sequence"
    if path.suffix.lower() in TABLE_SUFFIXES:
        return table_modality(read_table(path), target, (split_column, group_column))
    raise DataError(
        f"cannot read {path}: expected a table (.csv, .parquet), sequences (.npz with X and y) "
        "or a folder of images with one sub-folder per class"
    )


# The dataset this process loaded last: a run reads the user's data once, though the command line's
# check, the task formulation and the data preparation all ask for it (a million rows: 4.5 s each time,
# 50,000 images: 10 s). One entry, so a long-lived process holds at most one dataset.
_LOADED: dict[tuple, RawDataset] = {}
_DETECTED: dict[tuple, str] = {}  # the modality told last (a table's: one more read of the whole table)


def load_dataset(
    path: Path,
    modality: str,
    target: str,
    max_image_size: int = 64,
    split_column: str | None = "split",
    group_column: str | None = None,
) -> RawDataset:
    """Loads a labelled dataset of the given modality (a table may name its splits and groups).

    The same data (:func:`~components.data.dataset.source_signature`, or a copy made known with
    :func:`keep_loaded`) loaded with the same options again in this process is not read again: each
    caller gets the loaded arrays, read-only."""
    key = (source_signature(path), modality, target, max_image_size, split_column, group_column) if Path(path).exists() else None
    if key is not None and key in _LOADED:
        return read_only(_LOADED[key])
    dataset = _load(path, modality, target, max_image_size, split_column, group_column)
    forget_table()
    if key is not None:
        _LOADED.clear()
        _LOADED[key] = dataset
        return read_only(dataset)
    return dataset


def keep_loaded(signature: tuple, path: Path) -> None:
    """``path`` holds the data this process loaded under ``signature`` (a
    :func:`~components.data.dataset.source_signature` taken before the run copied the data into its
    workspace and DVC linked it to its cache, which gives the file a new inode): it is not read again."""
    new = source_signature(path)
    for kept in (_LOADED, _DETECTED):
        for key in [key for key in kept if key[0] == signature]:
            kept[(new, *key[1:])] = kept.pop(key)


def _load(
    path: Path, modality: str, target: str, max_image_size: int, split_column: str | None, group_column: str | None
) -> RawDataset:
    if modality == "tabular":
        return load_table(path, target, split_column, group_column)
    if modality == "sequence":
        return load_sequences(path, target, split_column)
    if modality == "text":
        return load_text(path, target, split_column, group_column)
    if modality == "multimodal":
        if Path(path).is_dir():
            return load_image_table(path, target, max_image_size, split_column, group_column, with_columns=True)
        return load_multimodal(path, target, split_column, group_column)
    if modality == "image":
        if image_table(path) is not None:
            return load_image_table(path, target, max_image_size, split_column, group_column)
        return load_image_folder(path, max_image_size)
    raise DataError(f"modality '{modality}' is not supported: use tabular, image, sequence, text or multimodal")


def load_unlabelled_inputs(
    path: Path,
    modality: str,
    feature_names: list[str],
    image_shape: tuple[int, int, int],
    categories: dict[str, list[str]] | None = None,
) -> np.ndarray:
    """Loads a batch of new inputs (a CSV with the training feature columns, or a folder of images).

    Used by monitoring: the batch is shaped exactly like the training features. ``image_shape`` is
    the shape of one input (images, sequences, texts), or of the row's last part (multimodal: the
    text's length, or the image's channels, height and width).
    """
    try:
        return _unlabelled(Path(path), modality, feature_names, image_shape, categories)
    finally:
        forget_table()  # a monitoring process keeps no batch's table


def _unlabelled(
    path: Path,
    modality: str,
    feature_names: list[str],
    image_shape: tuple[int, int, int],
    categories: dict[str, list[str]] | None,
) -> np.ndarray:
    if not path.exists():
        raise DataError(f"input path {path} does not exist")
    if modality == "tabular":
        if path.is_dir():
            raise DataError(f"{path} is a folder, but this model takes a CSV table")
        return table_rows(read_table(path), feature_names, categories or {}, path)
    if modality == "multimodal":
        from components.data.text import encode_texts

        with_images = len(image_shape) == 3
        if with_images != path.is_dir():
            kind = "a folder with a table of image paths" if with_images else "a table (CSV or Parquet)"
            raise DataError(f"{path} is {'not ' if with_images else ''}a folder, but this model takes {kind}")
        found = image_listing(path) if with_images else (path, read_table(path), None)
        if found is None:
            raise DataError(f"{path} holds no table with a column of image paths (relative to the folder) that exist")
        listing, frame, _ = found
        last = feature_names[-1]
        missing = [name for name in feature_names if name not in frame.columns]
        if missing:
            raise DataError(f"{listing} lacks the columns the model was trained on: {listed(missing)}")
        table_categories = {column: values for column, values in (categories or {}).items() if column != last}
        table = table_rows(frame, feature_names[:-1], table_categories, listing)
        if with_images:
            files = listed_images(path, frame[last], listing)
            pixels = images_to_array([open_image(file) for file in files], *image_shape)
            return np.concatenate([table, pixels.reshape(len(pixels), -1).astype(np.float32)], axis=1)
        codes = encode_texts(frame[last].tolist(), (categories or {})[last], image_shape[0])
        return np.concatenate([table, codes], axis=1)
    if modality == "text":
        from components.data.text import encode_texts

        frame = read_table(path)
        column = feature_names[0]
        if column not in frame.columns:
            raise DataError(f"{path} lacks the text column '{column}' the model was trained on")
        return encode_texts(frame[column].tolist(), (categories or {})[column], image_shape[0])
    if modality == "sequence":
        if path.is_dir():
            raise DataError(f"{path} is a folder, but this model takes sequences (.npz with X, or a long table)")
        features = sequence_arrays(path)["X"] if path.suffix.lower() in SEQUENCE_SUFFIXES else long_table(path, None)[0]
        if features.shape[2] != len(feature_names):
            raise DataError(f"{path} has {features.shape[2]} channels, the model takes {len(feature_names)}")
        return fit_length(features, image_shape[0])
    if not path.is_dir():
        raise DataError(f"{path} is not a folder, but this model takes a folder of images")
    files = image_files(path)
    if not files:
        raise DataError(f"{path} holds no images")
    return images_to_array([open_image(file) for file in files], *image_shape)
