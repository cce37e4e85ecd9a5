"""Images: a folder with one sub-folder per class, or a folder with one table that lists the images
(and may hold other columns: images plus table columns are multimodal)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from components.data.dataset import IMAGE_SUFFIXES, TABLE_SUFFIXES, RawDataset, image_path_column
from components.data.tables import (
    few_enough_to_be_categories,
    labelled_table,
    other_features,
    read_table,
    table_features,
    table_subset,
)
from components.errors import DataError
from components.errors import listing as listed  # 'listing' names image listings here


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder``. A sub-folder that cannot be listed is an error that names it:
    skipped, as a glob skips it, its class would be missing without a word."""

    def refuse(error: OSError) -> None:
        raise DataError(
            f"cannot read the folder {error.filename} ({error.strerror or error}): make it readable "
            f"(chmod -R a+rX) or move it out of {folder.parent}"
        ) from error

    found = []
    for directory, _, names in os.walk(folder, onerror=refuse):
        found.extend(Path(directory) / name for name in names if Path(name).suffix.lower() in IMAGE_SUFFIXES)
    return sorted(path for path in found if path.is_file())


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except Image.DecompressionBombError as error:  # gigapixels that would take gigabytes to decode
        raise DataError(f"image {path} cannot be read (too large to decode: {error}): resize it") from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DataError(f"image {path} cannot be read ({type(error).__name__}): remove or replace the file") from error


def open_readable_images(files: list[Path], root: Path) -> tuple[list[Image.Image], list[int], list[str]]:
    """The images that can be read, their positions in ``files``, and a warning naming the others.

    Raises:
        DataError: not one of the files can be read.
    """
    images, kept, unreadable, first_problem = [], [], [], ""
    for position, file in enumerate(files):
        try:
            images.append(open_image(file))
            kept.append(position)
        except DataError as error:
            unreadable.append(str(file.relative_to(root)))
            first_problem = first_problem or str(error)
    if not images:
        raise DataError(
            f"no image under {root} can be read: {first_problem}"
            + (f" (nor can {len(files) - 1} others)" if len(files) > 1 else "")
            + "; pass PNG, JPEG, BMP, GIF, TIFF or WebP files"
        )
    warnings = []
    if unreadable:
        warnings.append(f"skipped {len(unreadable)} unreadable image file(s) (corrupt or not an image): {listed(unreadable, 10)}")
    return images, kept, warnings


def common_image_geometry(images: list[Image.Image], max_size: int) -> tuple[int, int, int]:
    """Channels, height and width that every image is converted to.

    Colour wins over grey; the most frequent size wins, scaled down to fit ``max_size``.
    """
    channels = 3 if any(image.mode not in ("L", "1", "I", "I;16", "F", "LA") for image in images) else 1
    width, height = Counter(image.size for image in images).most_common(1)[0][0]
    scale = min(1.0, max_size / max(width, height))
    return channels, max(1, round(height * scale)), max(1, round(width * scale))


def _eight_bit(image: Image.Image) -> Image.Image:
    """Grey images deeper than 8 bits scaled to 0-255: PIL's conversion clips them instead (a 16-bit
    image became half white). 16-bit modes scale from 65,535; 32-bit integers and floats from 65,535
    when they exceed 255 (16-bit data read as 32-bit), from 1.0 for floats that stay within it."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    values = np.asarray(image, dtype=np.float64)
    top = float(values.max(initial=0.0))
    if image.mode.startswith("I;16") or 255 < top <= 65535:
        scale = 65535.0
    elif top > 65535:
        scale = top
    else:
        scale = 1.0 if image.mode == "F" and top <= 1.0 else 255.0
    return Image.fromarray(np.clip(np.rint(values / scale * 255), 0, 255).astype(np.uint8), mode="L")


def images_to_array(images: list[Image.Image], channels: int, height: int, width: int) -> np.ndarray:
    """Converts PIL images into a uint8 array shaped (samples, channels, height, width)."""
    mode = "RGB" if channels == 3 else "L"
    array = np.empty((len(images), channels, height, width), dtype=np.uint8)
    for index, image in enumerate(images):
        converted = _eight_bit(image).convert(mode)
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(converted, dtype=np.uint8)
        array[index] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
    return array


def image_listing(folder: Path) -> tuple[Path, pd.DataFrame, str] | None:
    """The one table in an image folder that lists the images, read, and its column of image paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    tables = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if len(tables) != 1:
        return None
    try:
        frame = read_table(tables[0])
    except DataError:
        return None
    column = image_path_column(frame, folder)
    return None if column is None else (tables[0], frame, column)


def image_table(folder: Path) -> Path | None:
    """The one table in an image folder that lists the images (a column of their paths), if any;
    without it, the folder's sub-folders are the classes."""
    listing = image_listing(folder)
    return None if listing is None else listing[0]


def image_table_columns(frame: pd.DataFrame, folder: Path, ignored: tuple[str | None, ...] = ()) -> list[str]:
    """The columns of an image table, besides the image paths, that a network can learn from:
    numbers, and text with few enough values to be categories (not ids, labels, splits or groups)."""
    column = image_path_column(frame, folder)
    if column is None:
        return []
    return [
        name
        for name in other_features(frame, column, ignored)
        if frame[name].dtype.kind in "biuf" or few_enough_to_be_categories(frame[name].dropna().nunique(), len(frame))
    ]


def listed_images(folder: Path, paths: pd.Series, table_file: Path) -> list[Path]:
    """The image files a table lists (paths relative to its folder).

    Raises:
        DataError: some of them do not exist.
    """
    files = [folder / str(value) for value in paths]
    absent = [str(file.relative_to(folder)) for file in files if not file.is_file()]
    if absent:
        raise DataError(
            f"{len(absent)} images listed in {table_file.name} do not exist, e.g. {', '.join(absent[:3])}: "
            "fix the paths (relative to the table's folder) or remove those rows"
        )
    return files


def load_image_table(
    folder: Path,
    target: str,
    max_image_size: int = 64,
    split_column: str | None = "split",
    group_column: str | None = None,
    with_columns: bool = False,
) -> RawDataset:
    """A folder holding a table (an image-path column, relative to the folder, and a label column)
    and the images it lists. With ``with_columns`` the table's other columns are features too
    (multimodal): each row holds those columns, then the image's pixels flattened (``image_shape``)."""
    folder = Path(folder)
    listing = image_listing(folder)
    if listing is None:
        raise DataError(f"{folder} holds no table with a column of image paths (relative to the folder) that exist")
    table_file, frame, column = listing
    table = labelled_table(table_file, target, split_column, group_column, media_column=column, frame=frame)
    files = listed_images(folder, table.rows[column], table_file)
    if not with_columns and len(table.candidates.columns):
        table.warnings.append(
            f"read the images only (modality image): ignored the table's other columns "
            f"({', '.join(map(str, table.candidates.columns[:5]))}); set the modality to multimodal (or auto) to learn from them too"
        )
    images, kept, skipped = open_readable_images(files, folder)
    if skipped:
        table = table_subset(table, kept)
        table.warnings.extend(skipped)
    candidates = table.candidates
    channels, height, width = common_image_geometry(images, max_image_size)
    pixels = images_to_array(images, channels, height, width)
    paths = table.rows[column].astype(str)
    sample_ids = paths.tolist() if paths.is_unique else table.sample_ids
    if not with_columns:
        return RawDataset(
            modality="image",
            features=pixels,
            target=table.target,
            feature_names=[f"pixel_{channel}" for channel in range(channels)],
            sample_ids=sample_ids,
            warnings=table.warnings,
            official_splits=table.official,
            groups=table.groups,
        )
    if not len(candidates.columns):
        raise DataError(f"{table_file} lists images and labels but no other feature columns: set the modality to image (or auto)")
    features, columns, categories = table_features(candidates, table.warnings, table_file, target)
    return RawDataset(
        modality="multimodal",
        features=np.concatenate([features, pixels.reshape(len(pixels), -1).astype(np.float32)], axis=1),
        target=table.target,
        feature_names=[*columns, column],
        sample_ids=sample_ids,
        warnings=table.warnings,
        categories=categories,
        official_splits=table.official,
        groups=table.groups,
        image_shape=(channels, height, width),
    )


def load_image_folder(path: Path, max_image_size: int = 64) -> RawDataset:
    """Loads a folder with one sub-folder per class, each holding that class's images."""
    path = Path(path)
    class_folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_folders:
        raise DataError(
            f"{path} has no class sub-folders: put each class's images in a sub-folder named after the class, "
            "or put one table with an image-path column and a label column next to the images"
        )
    files: list[Path] = []
    labels: list[str] = []
    for folder in class_folders:
        found = image_files(folder)
        files.extend(found)
        labels.extend([folder.name] * len(found))
    if not files:
        raise DataError(f"{path} has class sub-folders but no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    images, kept, skipped = open_readable_images(files, path)
    channels, height, width = common_image_geometry(images, max_image_size)
    return RawDataset(
        modality="image",
        features=images_to_array(images, channels, height, width),
        target=np.asarray(labels, dtype=object)[kept],
        feature_names=[f"pixel_{channel}" for channel in range(channels)],
        sample_ids=[str(files[position].relative_to(path)) for position in kept],
        warnings=skipped,
    )
