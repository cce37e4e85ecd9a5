"""Data preparation: splits, fitted preprocessing, and encoded targets.

The preprocessing is fitted on the training split only and saved as JSON, so that deployment can
apply exactly the same transformation to raw inputs (it is rebuilt as a torch module there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from components.data.formulation import label_strings
from components.data.mapped_npz import load_mapped
from components.errors import DataError, listing

SPLITS = ("train", "validation", "test")


class Preprocessor(BaseModel):
    """Fitted, serialisable preprocessing of raw features (and of a regression target).

    Tables: missing values take the training median, then each column is standardised. Categorical
    columns (codes 1..n of the whole dataset's values, NaN when missing) are not standardised: their
    codes are renumbered to the values seen in the training split, every other value (and a missing
    one) becoming 0, the "unknown" category that the network's embedding also learns.
    Images: pixels are scaled to [0, 1] and standardised per channel.
    Sequences: each channel is standardised over all training steps; padding and missing steps
    (NaN) become 0, the channel's mean.
    Text (token codes of the dataset's vocabulary): renumbered to the training split's words, like
    categorical columns; padding and other words are 0.
    Multimodal rows: the table's columns as a table, then the text's codes (``text_length``) or the
    image's pixels (``image_shape``), each part prepared like data of its own kind (see :meth:`parts`).
    """

    modality: Literal["tabular", "image", "sequence", "text", "multimodal"]
    input_shape: list[int]
    fill_values: list[float]
    means: list[float]
    scales: list[float]
    target_mean: float = 0.0
    target_scale: float = 1.0
    categorical: list[int] = []  # positions of categorical columns
    remaps: list[list[int]] = []  # per categorical column (then the text): dataset code -> training code (0: unknown)
    text_length: int = 0  # multimodal: the row ends with this many token codes
    image_shape: list[int] = []  # multimodal with images: the row ends with the pixels of an image shaped so
    words: list[str] = []  # text: the training split's words, word i at training code i + 1 (a pretrained tokeniser reads them)

    @property
    def second_size(self) -> int:
        """Multimodal: how many values at the end of a row belong to the text or the image."""
        return int(np.prod(self.image_shape)) if self.image_shape else self.text_length

    @property
    def cardinalities(self) -> list[int]:
        """Embedding sizes the network needs: training categories plus the unknown one."""
        return [max(remap) + 1 for remap in self.remaps]

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        modality: str,
        target: np.ndarray | None = None,
        categories: dict[int, int] | None = None,
        text_length: int = 0,
        image_shape: tuple[int, ...] | list[int] = (),
        vocabulary: list[str] | None = None,
    ) -> Preprocessor:
        """``categories``: position of each categorical column -> how many values the dataset has
        (multimodal: the text column is the position after the table's columns); ``vocabulary``: text,
        the dataset's words (word i at code i + 1)."""
        if modality == "multimodal":
            second = int(np.prod(image_shape)) if image_shape else text_length
            width = features.shape[1] - second
            table = cls.fit(features[:, :width], "tabular", target, {p: n for p, n in (categories or {}).items() if p < width})
            if image_shape:
                other = cls.fit(features[:, width:].reshape(len(features), *image_shape), "image")
            else:
                other = cls.fit(features[:, width:], "text", None, {0: (categories or {}).get(width, 0)})
            return table.model_copy(
                update={
                    "modality": "multimodal",
                    "input_shape": list(features.shape[1:]),
                    "fill_values": table.fill_values + other.fill_values,
                    "means": table.means + other.means,
                    "scales": table.scales + other.scales,
                    "remaps": table.remaps + other.remaps,
                    "text_length": text_length,
                    "image_shape": list(image_shape),
                }
            )
        categorical = sorted(categories or {})
        remaps: list[list[int]] = []
        words: list[str] = []
        if modality == "tabular":
            medians = np.nanmedian(features, axis=0) if len(features) else np.zeros(features.shape[1])
            medians = np.where(np.isnan(medians), 0.0, medians)
            filled = np.where(np.isnan(features), medians, features)
            means, scales = filled.mean(axis=0), filled.std(axis=0)
            for position in categorical:
                remaps.append(_training_codes(features[:, position], int(categories[position])))
                medians[position], means[position], scales[position] = 0.0, 0.0, 1.0
        elif modality == "text":
            medians, means, scales = (np.zeros(features.shape[1]), np.zeros(features.shape[1]), np.ones(features.shape[1]))
            remaps.append(_training_codes(features, int((categories or {0: 0})[0])))
            words = _training_words(remaps[0], vocabulary or [])
        elif modality == "sequence":
            steps = features.reshape(-1, features.shape[2]).astype(np.float64)
            medians = np.zeros(features.shape[2])
            means, scales = np.nanmean(steps, axis=0), np.nanstd(steps, axis=0)
            means, scales = np.nan_to_num(means), np.nan_to_num(scales)
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
            categorical=categorical,
            remaps=remaps,
            words=words,
        )

    def parts(self) -> tuple[Preprocessor, Preprocessor]:
        """A multimodal preprocessor as its table part and its text (or image) part."""
        width = self.input_shape[0] - self.second_size
        tables = len(self.categorical)
        table = self.model_copy(
            update={
                "modality": "tabular",
                "input_shape": [width],
                "fill_values": self.fill_values[:width],
                "means": self.means[:width],
                "scales": self.scales[:width],
                "remaps": self.remaps[:tables],
                "text_length": 0,
                "image_shape": [],
            }
        )
        other = self.model_copy(
            update={
                "modality": "image" if self.image_shape else "text",
                "input_shape": list(self.image_shape) or [self.text_length],
                "fill_values": self.fill_values[width:],
                "means": self.means[width:],
                "scales": self.scales[width:],
                "categorical": [],
                "remaps": self.remaps[tables:],
                "text_length": 0,
                "image_shape": [],
            }
        )
        return table, other

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Raw features to the float32 network input."""
        if list(features.shape[1:]) != self.input_shape:
            raise DataError(f"inputs are shaped {list(features.shape[1:])}, the model expects {self.input_shape}")
        if self.modality == "multimodal":
            table, other = self.parts()
            width, rows = table.input_shape[0], len(features)
            second = other.transform(features[:, width:].reshape(rows, *other.input_shape)).reshape(rows, -1)
            return np.concatenate([table.transform(features[:, :width]), second], axis=1)
        if self.modality == "tabular":
            filled = np.where(np.isnan(features), np.asarray(self.fill_values), features)
            encoded = ((filled - np.asarray(self.means)) / np.asarray(self.scales)).astype(np.float32)
            for position, remap in zip(self.categorical, self.remaps):
                encoded[:, position] = _renumber(encoded[:, position], remap)
            return encoded
        if self.modality == "text":
            return _renumber(features, self.remaps[0])
        if self.modality == "sequence":
            standardised = (features - np.asarray(self.means, dtype=np.float32)) / np.asarray(self.scales, dtype=np.float32)
            return np.nan_to_num(standardised, nan=0.0).astype(np.float32)
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


def _training_codes(codes: np.ndarray, dataset_values: int) -> list[int]:
    """Dataset code -> training code: the values seen in the training split become 1..n in order,
    every other code (and a missing one) 0, the unknown category."""
    seen = np.unique(codes[~np.isnan(codes) & (codes > 0)]).astype(int)
    remap = np.zeros(max(dataset_values, int(np.nanmax(np.append(codes, 0)))) + 1, dtype=int)
    remap[seen] = np.arange(1, len(seen) + 1)
    return remap.tolist()


def _training_words(remap: list[int], vocabulary: list[str]) -> list[str]:
    """The dataset's words in the order of their training codes (none without a vocabulary)."""
    words = [""] * max(remap, default=0)
    for code, training_code in enumerate(remap):
        if training_code and 0 < code <= len(vocabulary):
            words[training_code - 1] = vocabulary[code - 1]
    return words if vocabulary else []


def _renumber(codes: np.ndarray, remap: list[int]) -> np.ndarray:
    """Dataset codes as training codes (``remap``); codes outside it become 0."""
    table = np.asarray(remap, dtype=np.float32)
    codes = codes.astype(np.int64)
    known = (codes >= 0) & (codes < len(table))
    return np.where(known, table[np.where(known, codes, 0)], 0.0).astype(np.float32)


@dataclass
class Splits:
    """Raw features and encoded targets per split (class indices, or raw numbers for regression)."""

    features: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    sample_ids: dict[str, np.ndarray]

    def save(self, path: Path) -> None:
        """Writes every split to one uncompressed ``.npz``: deflate kept a third of the bytes of a
        million-row table (and a quarter of 50,000 small images) for 4.6 s of every run, and the later
        stages then inflated it again at each load. The file is written beside ``path`` and moved
        over it, so a process that still maps the previous splits (:meth:`load`) keeps reading them
        instead of a file truncated under it."""
        arrays = {}
        for split in SPLITS:
            arrays[f"x_{split}"] = self.features[split]
            arrays[f"y_{split}"] = self.targets[split]
            arrays[f"ids_{split}"] = self.sample_ids[split]
        path = Path(path)
        written = path.with_name(f".{path.name}.writing")
        with open(written, "wb") as file:
            np.savez(file, **arrays)
        os.replace(written, path)

    @classmethod
    def load(cls, path: Path) -> Splits:
        """The splits as read-only memory maps of the file (:mod:`components.data.mapped_npz`): a
        stage's memory holds what it reads of them, which training reads a batch at a time."""
        arrays = load_mapped(path)
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


def _part(
    indices: np.ndarray, targets: np.ndarray, share: float, seed: int, stratified: bool, groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Splits ``indices`` into (kept, held out) with about ``share`` held out."""
    # Imported here: search trials load this module for the Preprocessor, and scikit-learn adds a
    # second to every trial's start.
    from sklearn.model_selection import train_test_split

    if groups is None:
        return train_test_split(indices, test_size=share, random_state=seed, stratify=targets[indices] if stratified else None)
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    if stratified:
        folds = max(2, round(1.0 / share))
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        kept, held = next(splitter.split(indices, targets[indices], groups[indices]))
    else:
        kept, held = next(
            GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed).split(indices, groups=groups[indices])
        )
    return indices[kept], indices[held]


def check_class_sizes(encoded: np.ndarray, class_names: list[str], minimum: int = 3) -> None:
    """A stratified three-way split needs every class at least ``minimum`` times."""
    counts = np.bincount(encoded, minlength=len(class_names))
    too_small = [f"'{class_names[i]}' ({counts[i]})" for i in range(len(class_names)) if counts[i] < minimum]
    if too_small:
        raise DataError(
            f"{len(too_small):,} of {len(class_names):,} classes have fewer than {minimum} samples and cannot be split "
            f"into train/validation/test: {listing(too_small)}; add samples or remove those classes"
        )


def split_dataset(
    features: np.ndarray,
    targets: np.ndarray,
    sample_ids: list[str],
    task_type: str,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    official: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> Splits:
    """Stratified (for classification) train/validation/test split with a fixed seed.

    ``validation_fraction`` is a share of the whole dataset, like ``test_fraction``. An ``official``
    split (train / validation / test per sample) is kept as it is; when it has no validation rows,
    they are drawn from its training rows. With ``groups``, all samples of a group land in one split
    (stratified by class as far as the groups allow).
    """
    if test_fraction + validation_fraction >= 0.9:
        raise DataError("test_fraction + validation_fraction must leave at least 10% of the data for training")
    indices = np.arange(len(targets))
    stratify = targets if task_type == "classification" else None
    share = validation_fraction / (1.0 - test_fraction)
    try:
        if official is not None:
            test = indices[official == "test"]
            rest = indices[official != "test"]
            validation = indices[official == "validation"]
            if len(validation):
                train = indices[official == "train"]
            else:
                train, validation = _part(rest, targets, share, seed, stratify is not None, groups)
        else:
            rest, test = _part(indices, targets, test_fraction, seed, stratify is not None, groups)
            train, validation = _part(rest, targets, share, seed, stratify is not None, groups)
    except ValueError as error:
        raise DataError(f"cannot split {len(targets)} samples into train/validation/test: {error}") from error
    ids = np.asarray(sample_ids)
    parts = {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}
    return Splits(
        features={name: features[part] for name, part in parts.items()},
        targets={name: targets[part] for name, part in parts.items()},
        sample_ids={name: ids[part].astype(str) for name, part in parts.items()},
    )
