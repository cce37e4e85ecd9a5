"""Loading raw data from the user's files, with clear errors for the problems users actually hit.

Two kinds of source are understood: a CSV table (one row per sample, a target column) and a folder
of images with one sub-folder per class. Everything is returned as numpy arrays in a
:class:`RawDataset`; nothing is normalised here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from components.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TABLE_SUFFIXES = {".csv"}


@dataclass
class RawDataset:
    """Samples as loaded: features (float32 table columns or uint8 images NCHW) and raw targets."""

    modality: str
    features: np.ndarray
    target: np.ndarray | None
    feature_names: list[str]
    sample_ids: list[str]
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.features)


def detect_modality(path: Path) -> str:
    """Tells the modality from the path: a folder is images, a ``.csv`` file is a table.

    Raises:
        DataError: the path does not exist or is of a kind the platform does not read.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data path {path} does not exist: pass an existing CSV file or image folder with --data")
    if path.is_dir():
        return "image"
    if path.suffix.lower() in TABLE_SUFFIXES:
        return "tabular"
    raise DataError(f"cannot read {path}: expected a .csv table or a folder of images with one sub-folder per class")


def load_dataset(path: Path, modality: str, target: str, max_image_size: int = 64) -> RawDataset:
    """Loads a labelled dataset of the given modality."""
    if modality == "tabular":
        return load_table(path, target)
    if modality == "image":
        return load_image_folder(path, max_image_size)
    raise DataError(f"modality '{modality}' is not supported: use tabular or image")


def _read_csv(path: Path) -> pd.DataFrame:
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path} is empty: it has no header and no rows")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as error:
        raise DataError(f"{path} is empty: it has no header and no rows") from error
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path} is not a readable CSV file ({reason}): save it as comma-separated UTF-8 text") from error
    except OSError as error:
        raise DataError(f"cannot open {path}: {error.strerror or error}") from error
    if frame.empty:
        raise DataError(f"{path} has a header but no rows")
    return frame


def load_table(path: Path, target: str) -> RawDataset:
    """Loads a CSV table; numeric columns other than the target become features.

    Rows whose target is missing are dropped (with a warning); non-numeric feature columns are
    ignored (with a warning).
    """
    path = Path(path)
    frame = _read_csv(path)
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12])) + (", ..." if len(frame.columns) > 12 else "")
        raise DataError(f"target column '{target}' is not in {path} (columns: {shown}): pass --target with one of them")
    warnings: list[str] = []
    missing_target = frame[target].isna()
    if missing_target.all():
        raise DataError(f"target column '{target}' in {path} has no values")
    if missing_target.any():
        warnings.append(f"dropped {int(missing_target.sum())} rows whose target '{target}' is missing")
        frame = frame.loc[~missing_target]
    candidates = frame.drop(columns=[target])
    numeric = candidates.select_dtypes(include="number")
    ignored = [str(column) for column in candidates.columns if column not in numeric.columns]
    if ignored:
        warnings.append(f"ignored non-numeric columns: {', '.join(ignored)}")
    if numeric.shape[1] == 0:
        raise DataError(f"{path} has no numeric feature columns besides the target '{target}'")
    target_values = frame[target].to_numpy()
    return RawDataset(
        modality="tabular",
        features=numeric.to_numpy(dtype=np.float32),
        target=target_values,
        feature_names=[str(column) for column in numeric.columns],
        sample_ids=[str(index) for index in frame.index],
        warnings=warnings,
    )


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DataError(f"image {path} cannot be read ({type(error).__name__}): remove or replace the file") from error


def common_image_geometry(images: list[Image.Image], max_size: int) -> tuple[int, int, int]:
    """Channels, height and width that every image is converted to.

    Colour wins over grey; the most frequent size wins, scaled down to fit ``max_size``.
    """
    channels = 3 if any(image.mode not in ("L", "1", "I", "I;16", "F", "LA") for image in images) else 1
    width, height = Counter(image.size for image in images).most_common(1)[0][0]
    scale = min(1.0, max_size / max(width, height))
    return channels, max(1, round(height * scale)), max(1, round(width * scale))


def images_to_array(images: list[Image.Image], channels: int, height: int, width: int) -> np.ndarray:
    """Converts PIL images into a uint8 array shaped (samples, channels, height, width)."""
    mode = "RGB" if channels == 3 else "L"
    array = np.empty((len(images), channels, height, width), dtype=np.uint8)
    for index, image in enumerate(images):
        converted = image.convert(mode)
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(converted, dtype=np.uint8)
        array[index] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return array


def load_image_folder(path: Path, max_image_size: int = 64) -> RawDataset:
    """Loads a folder with one sub-folder per class, each holding that class's images."""
    path = Path(path)
    class_folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_folders:
        raise DataError(f"{path} has no class sub-folders: put each class's images in a sub-folder named after the class")
    files: list[Path] = []
    labels: list[str] = []
    for folder in class_folders:
        found = _image_files(folder)
        files.extend(found)
        labels.extend([folder.name] * len(found))
    if not files:
        raise DataError(f"{path} has class sub-folders but no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = [_open_image(file) for file in files]
    channels, height, width = common_image_geometry(images, max_image_size)
    return RawDataset(
        modality="image",
        features=images_to_array(images, channels, height, width),
        target=np.asarray(labels, dtype=object),
        feature_names=[f"pixel_{channel}" for channel in range(channels)],
        sample_ids=[str(file.relative_to(path)) for file in files],
    )


def load_unlabelled_inputs(path: Path, modality: str, feature_names: list[str], image_shape: tuple[int, int, int]) -> np.ndarray:
    """Loads a batch of new inputs (a CSV with the training feature columns, or a folder of images).

    Used by monitoring: the batch is shaped exactly like the training features.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"input path {path} does not exist")
    if modality == "tabular":
        if path.is_dir():
            raise DataError(f"{path} is a folder, but this model takes a CSV table")
        frame = _read_csv(path)
        missing = [name for name in feature_names if name not in frame.columns]
        if missing:
            raise DataError(f"{path} lacks the feature columns the model was trained on: {', '.join(missing)}")
        try:
            return frame[feature_names].to_numpy(dtype=np.float32)
        except ValueError as error:
            raise DataError(f"{path} has non-numeric values in feature columns: {error}") from error
    if not path.is_dir():
        raise DataError(f"{path} is not a folder, but this model takes a folder of images")
    files = _image_files(path)
    if not files:
        raise DataError(f"{path} holds no images")
    return images_to_array([_open_image(file) for file in files], *image_shape)
