"""Sequences: an ``.npz`` with ``X`` shaped (samples, time, channels) and ``y``, or a long table with one
row per time step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from components.data.dataset import SEQUENCE_SUFFIXES, RawDataset, long_format_columns, official_splits
from components.data.tables import read_table
from components.errors import DataError


def fit_length(features: np.ndarray, length: int) -> np.ndarray:
    """Sequences padded with NaN (or cut) to the ``length`` steps the model takes."""
    if features.shape[1] >= length:
        return features[:, :length]
    padding = np.full((len(features), length - features.shape[1], features.shape[2]), np.nan, dtype=np.float32)
    return np.concatenate([features, padding], axis=1)


def long_table(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray | None, list[str], list[str]]:
    """Features (samples, time, channels), one target per sequence (or None), ids and channel names."""
    frame = read_table(path)
    columns = long_format_columns(frame)
    if columns is None:
        raise DataError(f"{path} is not in long format: it needs an id column whose values repeat and a time column")
    identifier, time_column = columns
    if target is not None and target not in frame.columns:
        raise DataError(f"target column '{target}' is not in {path}: pass --target with the column of sequence labels")
    ignored = [identifier, time_column, *([target] if target is not None else [])]
    channel_frame = frame.drop(columns=ignored).select_dtypes(include="number")
    if channel_frame.shape[1] == 0:
        raise DataError(f"{path} has no numeric channel columns besides id, time and target")
    channels = [str(column) for column in channel_frame.columns]
    frame = frame.sort_values([identifier, time_column], kind="stable")
    if target is not None:
        labels = frame.groupby(identifier, sort=False)[target].nunique(dropna=True)
        mixed = labels[labels > 1]
        if len(mixed):
            raise DataError(f"sequences {', '.join(map(str, mixed.index[:5]))} have several labels: give each sequence one label")
    groups = list(frame.groupby(identifier, sort=False))
    length = max(len(group) for _, group in groups)
    features = np.full((len(groups), length, len(channels)), np.nan, dtype=np.float32)
    for index, (_, group) in enumerate(groups):
        features[index, : len(group)] = group[channels].to_numpy(dtype=np.float32)
    ids = [str(key) for key, _ in groups]
    if target is None:
        return features, None, ids, channels
    values = [group[target].dropna().iloc[0] if group[target].notna().any() else None for _, group in groups]
    return features, np.array(values, dtype=object), ids, channels


def sequence_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            contents = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error})") from error
    if "X" not in contents:
        raise DataError(f"{path} lacks the array X: save X shaped (samples, time, channels)")
    features = contents["X"].astype(np.float32)
    contents["X"] = features[:, :, None] if features.ndim == 2 else features
    if contents["X"].ndim != 3:
        raise DataError(f"{path}: X must be shaped (samples, time, channels), got {features.shape}")
    return contents


def load_sequences(path: Path, target: str = "label", split_column: str | None = "split") -> RawDataset:
    """Sequences shaped (samples, time, channels), NaN after a shorter sequence's end: an ``.npz``
    with ``X`` and ``y`` (optionally ``ids``, ``channels``, and an array named ``split_column`` with
    train / validation / test per sequence, as the standard time-series archives ship their
    splits), or a long table with one row per time step (id, time, channel columns, label)."""
    path = Path(path)
    official = None
    if path.suffix.lower() in SEQUENCE_SUFFIXES:
        contents = sequence_arrays(path)
        features = contents["X"]
        if "y" not in contents or len(contents["y"]) != len(features):
            raise DataError(f"{path} needs y with one label per sequence of X ({len(features)})")
        count, channels_count = len(features), features.shape[2]
        ids = [str(v) for v in contents["ids"]] if "ids" in contents else [str(i) for i in range(count)]
        channels = (
            [str(v) for v in contents["channels"]] if "channels" in contents else [f"channel_{c}" for c in range(channels_count)]
        )
        target_values = contents["y"]
        if split_column and split_column in contents:
            if len(contents[split_column]) != count:
                raise DataError(
                    f"{path}: {split_column} must name one split per sequence of X ({count}), it has {len(contents[split_column])}"
                )
            official = official_splits(pd.Series(contents[split_column]), path, split_column)
    else:
        features, target_values, ids, channels = long_table(path, target)
    warnings = []
    labelled = ~pd.isna(pd.Series(target_values)).to_numpy()
    if not labelled.all():
        warnings.append(f"dropped {int((~labelled).sum())} sequences without a label")
        features, target_values, ids = features[labelled], np.asarray(target_values)[labelled], list(np.asarray(ids)[labelled])
        official = None if official is None else official[labelled]
    if not len(features):
        raise DataError(f"{path} holds no labelled sequence")
    lengths = (~np.isnan(features).all(axis=2)).sum(axis=1)
    if lengths.min() < lengths.max():
        warnings.append(f"sequences of {lengths.min()} to {lengths.max()} steps: shorter ones are padded at the end")
    return RawDataset(
        modality="sequence",
        features=features,
        target=np.asarray(target_values),
        feature_names=channels,
        sample_ids=ids,
        warnings=warnings,
        official_splits=official,
    )
