"""Data preparation: splits, fitted preprocessing, and encoded targets.

The preprocessing is fitted on the training split only and saved as JSON, so that deployment can
apply exactly the same transformation to raw inputs (it is rebuilt as a torch module there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel
from sklearn.model_selection import train_test_split

from components.data.formulation import label_strings
from components.errors import DataError

SPLITS = ("train", "validation", "test")


class Preprocessor(BaseModel):
    """Fitted, serialisable preprocessing of raw features (and of a regression target).

    Tables: missing values take the training median, then each column is standardised.
    Images: pixels are scaled to [0, 1] and standardised per channel.
    """

    modality: Literal["tabular", "image"]
    input_shape: list[int]
    fill_values: list[float]
    means: list[float]
    scales: list[float]
    target_mean: float = 0.0
    target_scale: float = 1.0

    @classmethod
    def fit(cls, features: np.ndarray, modality: str, target: np.ndarray | None = None) -> Preprocessor:
        if modality == "tabular":
            medians = np.nanmedian(features, axis=0)
            medians = np.where(np.isnan(medians), 0.0, medians)
            filled = np.where(np.isnan(features), medians, features)
            means, scales = filled.mean(axis=0), filled.std(axis=0)
        else:
            pixels = features.astype(np.float64) / 255.0
            medians = np.zeros(features.shape[1])
            means, scales = pixels.mean(axis=(0, 2, 3)), pixels.std(axis=(0, 2, 3))
        scales = np.where(scales < 1e-8, 1.0, scales)
        target_mean, target_scale = 0.0, 1.0
        if target is not None:
            target_mean, target_scale = float(np.mean(target)), float(np.std(target)) or 1.0
        return cls(
            modality=modality,
            input_shape=list(features.shape[1:]),
            fill_values=medians.tolist(),
            means=means.tolist(),
            scales=scales.tolist(),
            target_mean=target_mean,
            target_scale=target_scale,
        )

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Raw features to the float32 network input."""
        if list(features.shape[1:]) != self.input_shape:
            raise DataError(f"inputs are shaped {list(features.shape[1:])}, the model expects {self.input_shape}")
        if self.modality == "tabular":
            filled = np.where(np.isnan(features), np.asarray(self.fill_values), features)
            return ((filled - np.asarray(self.means)) / np.asarray(self.scales)).astype(np.float32)
        pixels = features.astype(np.float32) / 255.0
        channel = (slice(None), None, None)
        means = np.asarray(self.means, dtype=np.float32)[channel]
        scales = np.asarray(self.scales, dtype=np.float32)[channel]
        return ((pixels - means) / scales).astype(np.float32)

    def encode_target(self, target: np.ndarray) -> np.ndarray:
        return ((target - self.target_mean) / self.target_scale).astype(np.float32)

    def training_target(self, task_type: str, target: np.ndarray) -> np.ndarray:
        """What the network learns: class indices as they are, regression targets standardised."""
        return target if task_type == "classification" else self.encode_target(target)

    def decode_target(self, encoded: np.ndarray) -> np.ndarray:
        return encoded * self.target_scale + self.target_mean

    def save(self, path: Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Preprocessor:
        return cls.model_validate_json(Path(path).read_text())


@dataclass
class Splits:
    """Raw features and encoded targets per split (class indices, or raw numbers for regression)."""

    features: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    sample_ids: dict[str, np.ndarray]

    def save(self, path: Path) -> None:
        arrays = {}
        for split in SPLITS:
            arrays[f"x_{split}"] = self.features[split]
            arrays[f"y_{split}"] = self.targets[split]
            arrays[f"ids_{split}"] = self.sample_ids[split]
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> Splits:
        with np.load(path, allow_pickle=False) as arrays:
            return cls(
                features={split: arrays[f"x_{split}"] for split in SPLITS},
                targets={split: arrays[f"y_{split}"] for split in SPLITS},
                sample_ids={split: arrays[f"ids_{split}"] for split in SPLITS},
            )

    def sizes(self) -> dict[str, int]:
        return {split: int(len(self.targets[split])) for split in SPLITS}


def encode_target(target: np.ndarray, task_type: str, class_names: list[str] | None) -> np.ndarray:
    """Class labels become indices into ``class_names``; regression targets become float32."""
    if task_type == "classification":
        index = {name: position for position, name in enumerate(class_names or [])}
        return np.array([index[label] for label in label_strings(target)], dtype=np.int64)
    return target.astype(np.float32)


def check_class_sizes(encoded: np.ndarray, class_names: list[str], minimum: int = 3) -> None:
    """A stratified three-way split needs every class at least ``minimum`` times."""
    counts = np.bincount(encoded, minlength=len(class_names))
    too_small = [f"'{class_names[i]}' ({counts[i]})" for i in range(len(class_names)) if counts[i] < minimum]
    if too_small:
        raise DataError(
            f"classes with fewer than {minimum} samples cannot be split into train/validation/test: "
            f"{', '.join(too_small)}; add samples or remove those classes"
        )


def split_dataset(
    features: np.ndarray,
    targets: np.ndarray,
    sample_ids: list[str],
    task_type: str,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
) -> Splits:
    """Stratified (for classification) train/validation/test split with a fixed seed.

    ``validation_fraction`` is a share of the whole dataset, like ``test_fraction``.
    """
    if test_fraction + validation_fraction >= 0.9:
        raise DataError("test_fraction + validation_fraction must leave at least 10% of the data for training")
    indices = np.arange(len(targets))
    stratify = targets if task_type == "classification" else None
    try:
        rest, test = train_test_split(indices, test_size=test_fraction, random_state=seed, stratify=stratify)
        share = validation_fraction / (1.0 - test_fraction)
        train, validation = train_test_split(
            rest, test_size=share, random_state=seed, stratify=None if stratify is None else targets[rest]
        )
    except ValueError as error:
        raise DataError(f"cannot split {len(targets)} samples into train/validation/test: {error}") from error
    ids = np.asarray(sample_ids)
    parts = {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}
    return Splits(
        features={name: features[part] for name, part in parts.items()},
        targets={name: targets[part] for name, part in parts.items()},
        sample_ids={name: ids[part].astype(str) for name, part in parts.items()},
    )
