"""Loading raw data from the user's files, with clear errors for the problems users actually hit.

Understood: tables (CSV, Parquet) of numeric, categorical and free-text columns; sequences (``.npz``
or a long table); folders of images with one sub-folder per class, or with one table that lists the
images (and may hold other columns: images plus table columns are multimodal). Everything is
returned as numpy arrays in a :class:`RawDataset`; nothing is normalised here.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from warnings import catch_warnings, simplefilter

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from components.errors import DataError
from components.errors import listing as listed  # 'listing' names image listings here

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
ID_NAMES = {"id", "uuid", "guid", "key", "index", "row", "row_id", "record_id", "sample_id"}
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
    if path.is_dir():
        listing = _image_listing(path)
        if listing is not None and image_table_columns(listing[1], path, (target, split_column, group_column)):
            return "multimodal"
        return "image"
    if path.suffix.lower() in SEQUENCE_SUFFIXES:
        return "sequence"
    if path.suffix.lower() in TABLE_SUFFIXES:
        return table_modality(_read_table(path), target, (split_column, group_column))
    raise DataError(
        f"cannot read {path}: expected a table (.csv, .parquet), sequences (.npz with X and y) "
        "or a folder of images with one sub-folder per class"
    )


def load_dataset(
    path: Path,
    modality: str,
    target: str,
    max_image_size: int = 64,
    split_column: str | None = "split",
    group_column: str | None = None,
) -> RawDataset:
    """Loads a labelled dataset of the given modality (a table may name its splits and groups)."""
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


def _separator(path: Path) -> str:
    """Semicolons when the header holds them and no comma (a common export), else commas."""
    with open(path, encoding="utf-8-sig", errors="replace") as stream:
        header = stream.readline()
    return ";" if ";" in header and "," not in header else ","


def _columns_named_once(path: Path, separator: str) -> None:
    """Refuses a CSV header that names a column twice: pandas would silently rename the second one
    ("a.1"), and the model would then be served with a column nobody sends."""
    header = pd.read_csv(path, sep=separator, header=None, nrows=1, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    header = header.iloc[0].tolist()
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise DataError(f"{path} names {len(twice)} column(s) more than once: {listed(twice)}; give every column its own name")


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a data frame, with errors that say what to do."""
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path} is empty: it has no header and no rows")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except OSError as error:
            raise DataError(f"cannot open {path}: {error}") from error
        except Exception as error:  # pyarrow raises its own ArrowInvalid and friends
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(f"{path} is not a readable Parquet file ({reason})") from error
        if frame.empty:
            raise DataError(f"{path} has columns but no rows")
        return frame
    try:
        with catch_warnings(record=True) as caught:
            simplefilter("always", pd.errors.ParserWarning)
            separator = _separator(path)
            frame = pd.read_csv(path, sep=separator, on_bad_lines="warn", encoding="utf-8-sig")
    except pd.errors.EmptyDataError as error:
        raise DataError(f"{path} is empty: it has no header and no rows") from error
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path} is not a readable CSV file ({reason}): save it as comma-separated UTF-8 text") from error
    except OSError as error:
        raise DataError(f"cannot open {path}: {error.strerror or error}") from error
    if frame.empty:
        raise DataError(f"{path} has a header but no rows")
    _columns_named_once(path, separator)
    _numbers_read_as_text(frame)
    skipped = [line for record in caught for line in re.findall(r"Skipping line (\d+)", str(record.message))]
    if skipped:
        frame.attrs["warnings"] = [
            f"skipped {len(skipped)} corrupt row(s) of {path.name} with more fields than the header (lines {listed(skipped, 10)})"
        ]
    return frame


MAX_CATEGORIES_FLOOR = 50  # a text column with at most this many values (or 20% of the rows) is categorical
MAX_CATEGORY_SHARE = 0.2


def _few_enough_to_be_categories(distinct: int, rows: int) -> bool:
    return distinct <= max(MAX_CATEGORIES_FLOOR, int(MAX_CATEGORY_SHARE * rows))


def _numbers_read_as_text(frame: pd.DataFrame) -> None:
    """Columns pandas left as text although every value is a number to Python (``1e309``, beyond
    float64, which pandas refuses to parse) become numeric, so that validation sees them as the
    numbers, infinite ones included, they are (they were taken for categories)."""
    for column in frame.select_dtypes(include="object").columns:
        present = frame[column].dropna()
        if present.empty or not all(isinstance(value, str) for value in present):
            continue
        try:
            numbers = [float(value) for value in present]
        except ValueError:
            continue
        frame[column] = pd.Series(numbers, index=present.index, dtype=np.float64).reindex(frame.index)


def category_text(value) -> str:
    """A category as text; 3, 3.0 and "3" are the same category."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def encode_categories(values, vocabulary: list[str]) -> np.ndarray:
    """Codes 1..n of a column's values in ``vocabulary``; 0 for a value outside it, NaN when missing."""
    from components.data.text import vocabulary_index

    index = vocabulary_index(vocabulary)
    return np.array(
        [np.nan if pd.isna(value) else index.get(category_text(value), 0) for value in values],
        dtype=np.float32,
    )


def id_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that identify rows rather than describe them: integer or text columns named like an
    id with (nearly) a different value per row, text columns with a different value in every row,
    and integer row numbers (every value of a consecutive range once). An integer measurement that
    happens to be unique (a price in cents) is kept."""
    from components.data.text import is_text_column

    found = []
    for column in frame.columns:
        values = frame[column]
        kind = values.dtype.kind
        if kind not in "iuOS" and str(values.dtype) not in ("string", "category"):
            continue
        unique_share = values.nunique(dropna=True) / max(len(values), 1)
        name = str(column).strip().lower()
        named = name in ID_NAMES or name.endswith(("_id", " id", "_uuid", "_key"))
        if not named and kind not in "iu" and is_text_column(values.tolist()):
            continue  # free text: every review is different, but it is the data
        all_unique = len(values) >= 20 and unique_share == 1.0
        row_numbers = all_unique and kind in "iu" and int(values.max()) - int(values.min()) == len(values) - 1
        if (named and unique_share > 0.9) or (all_unique and kind not in "iu") or row_numbers:
            found.append(column)
    return found


def _official_splits(values: pd.Series, path: Path, column: str) -> np.ndarray:
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


@dataclass
class _Table:
    rows: pd.DataFrame  # the labelled rows, every column
    candidates: pd.DataFrame  # the columns that may become features
    target: np.ndarray
    sample_ids: list[str]
    warnings: list[str]
    official: np.ndarray | None
    groups: np.ndarray | None


def _labelled_table(
    path: Path,
    target: str,
    split_column: str | None,
    group_column: str | None,
    media_column: str | None = None,
    frame: pd.DataFrame | None = None,
) -> _Table:
    """A table's labelled rows, its split and group columns, and its id column (which names the rows);
    ``media_column`` (image paths) is neither a candidate feature nor an id; ``frame``: the table
    when it has been read already."""
    frame = _read_table(path) if frame is None else frame
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12])) + (", ..." if len(frame.columns) > 12 else "")
        raise DataError(f"target column '{target}' is not in {path} (columns: {shown}): pass --target with one of them")
    if group_column and group_column not in frame.columns:
        raise DataError(f"group column '{group_column}' (data_preparation.group_column) is not in {path}")
    warnings: list[str] = list(frame.attrs.get("warnings", []))
    missing_target = frame[target].isna()
    if missing_target.all():
        raise DataError(f"target column '{target}' in {path} has no values")
    if missing_target.any():
        warnings.append(f"dropped {int(missing_target.sum())} rows whose target '{target}' is missing")
        frame = frame.loc[~missing_target]
    special = [column for column in (split_column, group_column) if column and column in frame.columns]
    official = _official_splits(frame[split_column], path, split_column) if split_column in special else None
    groups = frame[group_column].astype(str).to_numpy() if group_column else None
    candidates = frame.drop(columns=[target, *special, *([media_column] if media_column else [])])
    identifiers = id_columns(candidates)
    sample_ids = [str(index) for index in frame.index]
    if identifiers:
        warnings.append(f"ignored id-like columns (a different value in (nearly) every row): {', '.join(map(str, identifiers))}")
        if candidates[identifiers[0]].is_unique:
            sample_ids = candidates[identifiers[0]].astype(str).tolist()
        candidates = candidates.drop(columns=identifiers)
    return _Table(frame, candidates, frame[target].to_numpy(), sample_ids, warnings, official, groups)


def _table_subset(table: _Table, positions: list[int]) -> _Table:
    """The table's rows at ``positions`` (e.g. those whose image could be read)."""
    return _Table(
        table.rows.iloc[positions],
        table.candidates.iloc[positions],
        table.target[positions],
        [table.sample_ids[position] for position in positions],
        table.warnings,
        None if table.official is None else table.official[positions],
        None if table.groups is None else table.groups[positions],
    )


def load_table(path: Path, target: str, split_column: str | None = "split", group_column: str | None = None) -> RawDataset:
    """Loads a CSV or Parquet table; numeric and categorical columns other than the target become features.

    Rows whose target is missing are dropped (with a warning); free-text columns and id-like columns
    are ignored (with a warning; an id column names the samples instead). A column named
    ``split_column`` (train / validation / test) is honoured as the split; ``group_column`` keeps
    each group within one split.
    """
    path = Path(path)
    table = _labelled_table(path, target, split_column, group_column)
    listed = image_path_column(table.candidates, path.parent)
    if listed is not None:
        raise DataError(
            f"{path} lists images in column '{listed}': pass the folder that holds the table and the images "
            f"(--data {path.parent}) so that the images are versioned with it"
        )
    features, columns, categories = _table_features(table.candidates, table.warnings, path, target)
    return RawDataset(
        modality="tabular",
        features=features,
        target=table.target,
        feature_names=columns,
        categories=categories,
        sample_ids=table.sample_ids,
        warnings=table.warnings,
        official_splits=table.official,
        groups=table.groups,
    )


def _table_features(
    candidates: pd.DataFrame, warnings: list[str], path: Path, target: str
) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """Numeric columns, then categorical ones as codes; text with too many values is left out, and
    so are columns without a single value."""
    empty = [str(column) for column in candidates.columns if candidates[column].isna().all()]
    if empty and len(empty) == candidates.shape[1]:
        raise DataError(f"{path}: every feature column is empty ({listed(empty)} have no values): fill them in")
    if empty:
        warnings.append(f"ignored column(s) without a single value: {listed(empty)}")
        candidates = candidates.drop(columns=empty)
    numeric = candidates.select_dtypes(include=["number", "bool"])
    categories = {}
    ignored = []
    for column in candidates.columns:
        if column in numeric.columns:
            continue
        values = candidates[column].dropna().map(category_text)
        distinct = sorted(values.unique())
        if _few_enough_to_be_categories(len(distinct), len(candidates)):
            categories[str(column)] = distinct
        else:
            ignored.append(str(column))
    if ignored:
        warnings.append(
            f"ignored text columns with too many distinct values to be categories: {', '.join(ignored)} "
            "(a table reads one free-text column)"
        )
    if numeric.shape[1] == 0 and not categories:
        raise DataError(f"{path} has no feature columns besides the target '{target}'")
    columns = [str(column) for column in numeric.columns] + list(categories)
    features = np.empty((len(candidates), len(columns)), dtype=np.float32)
    features[:, : numeric.shape[1]] = numeric.to_numpy(dtype=np.float32)
    for offset, (column, values) in enumerate(categories.items()):
        features[:, numeric.shape[1] + offset] = encode_categories(candidates[column], values)
    return features, columns, categories


def text_column(frame: pd.DataFrame, target: str | None = None) -> str | None:
    """The table's free-text column (long values, most of them different), if it has one; with
    several, the one with the longest values."""
    from components.data.text import is_text_column

    texts = [column for column in frame.columns if column != target and is_text_column(frame[column].tolist())]
    if not texts:
        return None
    return str(max(texts, key=lambda column: frame[column].astype(str).str.len().mean()))


def _other_features(frame: pd.DataFrame, text: str, ignored: tuple[str | None, ...] = ()) -> list[str]:
    """Columns besides the text (or the image paths) that may be features: not the ``ignored``
    target, split and group columns, nor ids or columns named like them."""
    others = frame.drop(columns=[text, *(column for column in ignored if column and column in frame.columns)])
    others = others.drop(columns=id_columns(others))
    names = {"split", "group", "label", "target", "class"}
    return [str(column) for column in others.columns if str(column).strip().lower() not in names]


def table_modality(frame: pd.DataFrame, target: str | None = None, ignored: tuple[str | None, ...] = ()) -> str:
    """sequence (long format), text (a free-text column and nothing else to learn from), multimodal
    (free text next to other feature columns) or tabular."""
    if long_format_columns(frame):
        return "sequence"
    text = text_column(frame, target)
    if text is None:
        return "tabular"
    return "multimodal" if _other_features(frame, text, (target, *ignored)) else "text"


def _text_part(table: _Table, path: Path, target: str) -> tuple[str, list[str], np.ndarray]:
    """The table's free-text column, its vocabulary and the texts' token codes (noted in the warnings)."""
    from components.data.text import build_vocabulary, encode_texts

    column = text_column(table.candidates)
    if column is None:
        raise DataError(f"{path} has no free-text column (long, mostly different values) besides the target '{target}'")
    texts = table.candidates[column].tolist()
    vocabulary, length = build_vocabulary(texts)
    table.warnings.append(f"text column '{column}': {len(vocabulary)} words, {length} tokens per text (longer texts are cut)")
    return column, vocabulary, encode_texts(texts, vocabulary, length)


def load_multimodal(path: Path, target: str, split_column: str | None = "split", group_column: str | None = None) -> RawDataset:
    """A table with a free-text column next to numeric and categorical ones: the table's features,
    then the text's token codes, in one row (``text_length`` codes at the end)."""
    table = _labelled_table(Path(path), target, split_column, group_column)
    column, vocabulary, codes = _text_part(table, Path(path), target)
    features, columns, categories = _table_features(table.candidates.drop(columns=[column]), table.warnings, Path(path), target)
    return RawDataset(
        modality="multimodal",
        features=np.concatenate([features, codes], axis=1),
        target=table.target,
        feature_names=[*columns, column],
        sample_ids=table.sample_ids,
        warnings=table.warnings,
        categories={**categories, column: vocabulary},
        official_splits=table.official,
        groups=table.groups,
        text_length=codes.shape[1],
    )


def load_text(path: Path, target: str, split_column: str | None = "split", group_column: str | None = None) -> RawDataset:
    """A table with one free-text column and a target: texts become rows of token codes."""
    table = _labelled_table(Path(path), target, split_column, group_column)
    column, vocabulary, codes = _text_part(table, Path(path), target)
    return RawDataset(
        modality="text",
        features=codes,
        target=table.target,
        feature_names=[column],
        sample_ids=table.sample_ids,
        warnings=table.warnings,
        categories={column: vocabulary},
        official_splits=table.official,
        groups=table.groups,
    )


def fit_length(features: np.ndarray, length: int) -> np.ndarray:
    """Sequences padded with NaN (or cut) to the ``length`` steps the model takes."""
    if features.shape[1] >= length:
        return features[:, :length]
    padding = np.full((len(features), length - features.shape[1], features.shape[2]), np.nan, dtype=np.float32)
    return np.concatenate([features, padding], axis=1)


def long_format_columns(frame: pd.DataFrame) -> tuple[str, str] | None:
    """(id column, time column) when a table holds sequences in long format: one row per time step,
    an id column whose values repeat, and a time column."""
    names = {str(column).strip().lower(): column for column in frame.columns}
    identifier = next((names[name] for name in names if name in SEQUENCE_ID_NAMES), None)
    time_column = next((names[name] for name in names if name in TIME_NAMES), None)
    if identifier is None or time_column is None or frame[identifier].nunique() >= len(frame):
        return None
    return identifier, time_column


def _long_table(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray | None, list[str], list[str]]:
    """Features (samples, time, channels), one target per sequence (or None), ids and channel names."""
    frame = _read_table(path)
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


def _sequence_arrays(path: Path) -> dict[str, np.ndarray]:
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
        contents = _sequence_arrays(path)
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
            official = _official_splits(pd.Series(contents[split_column]), path, split_column)
    else:
        features, target_values, ids, channels = _long_table(path, target)
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


def _image_files(folder: Path) -> list[Path]:
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


def _open_image(path: Path) -> Image.Image:
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
            images.append(_open_image(file))
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


def image_path_column(frame: pd.DataFrame, folder: Path) -> str | None:
    """The column whose values are paths (relative to ``folder``) of image files, if any."""
    for column in frame.columns:
        values = frame[column].dropna().astype(str).head(20).tolist()
        if values and all(Path(value).suffix.lower() in IMAGE_SUFFIXES for value in values):
            if sum((folder / value).is_file() for value in values) >= len(values) / 2:
                return str(column)
    return None


def _image_listing(folder: Path) -> tuple[Path, pd.DataFrame, str] | None:
    """The one table in an image folder that lists the images, read, and its column of image paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    tables = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if len(tables) != 1:
        return None
    try:
        frame = _read_table(tables[0])
    except DataError:
        return None
    column = image_path_column(frame, folder)
    return None if column is None else (tables[0], frame, column)


def image_table(folder: Path) -> Path | None:
    """The one table in an image folder that lists the images (a column of their paths), if any;
    without it, the folder's sub-folders are the classes."""
    listing = _image_listing(folder)
    return None if listing is None else listing[0]


def image_table_columns(frame: pd.DataFrame, folder: Path, ignored: tuple[str | None, ...] = ()) -> list[str]:
    """The columns of an image table, besides the image paths, that a network can learn from:
    numbers, and text with few enough values to be categories (not ids, labels, splits or groups)."""
    column = image_path_column(frame, folder)
    if column is None:
        return []
    return [
        name
        for name in _other_features(frame, column, ignored)
        if frame[name].dtype.kind in "biuf" or _few_enough_to_be_categories(frame[name].dropna().nunique(), len(frame))
    ]


def _listed_images(folder: Path, paths: pd.Series, table_file: Path) -> list[Path]:
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
    listing = _image_listing(folder)
    if listing is None:
        raise DataError(f"{folder} holds no table with a column of image paths (relative to the folder) that exist")
    table_file, frame, column = listing
    table = _labelled_table(table_file, target, split_column, group_column, media_column=column, frame=frame)
    files = _listed_images(folder, table.rows[column], table_file)
    if not with_columns and len(table.candidates.columns):
        table.warnings.append(
            f"read the images only (modality image): ignored the table's other columns "
            f"({', '.join(map(str, table.candidates.columns[:5]))}); set the modality to multimodal (or auto) to learn from them too"
        )
    images, kept, skipped = open_readable_images(files, folder)
    if skipped:
        table = _table_subset(table, kept)
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
    features, columns, categories = _table_features(candidates, table.warnings, table_file, target)
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
        found = _image_files(folder)
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


def _table_rows(frame: pd.DataFrame, names: list[str], categories: dict[str, list[str]], source: Path) -> np.ndarray:
    """The ``names`` columns of new rows as the model's raw input (categories as their training codes).

    Raises:
        DataError: a column is missing or holds values that are not numbers.
    """
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(f"{source} lacks the feature columns the model was trained on: {listed(missing)}")
    for column, vocabulary in categories.items():
        frame[column] = encode_categories(frame[column], vocabulary)
    try:
        return frame[names].to_numpy(dtype=np.float32)
    except ValueError as error:
        raise DataError(f"{source} has non-numeric values in feature columns: {error}") from error


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
    path = Path(path)
    if not path.exists():
        raise DataError(f"input path {path} does not exist")
    if modality == "tabular":
        if path.is_dir():
            raise DataError(f"{path} is a folder, but this model takes a CSV table")
        return _table_rows(_read_table(path), feature_names, categories or {}, path)
    if modality == "multimodal":
        from components.data.text import encode_texts

        with_images = len(image_shape) == 3
        if with_images != path.is_dir():
            kind = "a folder with a table of image paths" if with_images else "a table (CSV or Parquet)"
            raise DataError(f"{path} is {'not ' if with_images else ''}a folder, but this model takes {kind}")
        found = _image_listing(path) if with_images else (path, _read_table(path), None)
        if found is None:
            raise DataError(f"{path} holds no table with a column of image paths (relative to the folder) that exist")
        listing, frame, _ = found
        last = feature_names[-1]
        missing = [name for name in feature_names if name not in frame.columns]
        if missing:
            raise DataError(f"{listing} lacks the columns the model was trained on: {listed(missing)}")
        table_categories = {column: values for column, values in (categories or {}).items() if column != last}
        table = _table_rows(frame, feature_names[:-1], table_categories, listing)
        if with_images:
            files = _listed_images(path, frame[last], listing)
            pixels = images_to_array([_open_image(file) for file in files], *image_shape)
            return np.concatenate([table, pixels.reshape(len(pixels), -1).astype(np.float32)], axis=1)
        codes = encode_texts(frame[last].tolist(), (categories or {})[last], image_shape[0])
        return np.concatenate([table, codes], axis=1)
    if modality == "text":
        from components.data.text import encode_texts

        frame = _read_table(path)
        column = feature_names[0]
        if column not in frame.columns:
            raise DataError(f"{path} lacks the text column '{column}' the model was trained on")
        return encode_texts(frame[column].tolist(), (categories or {})[column], image_shape[0])
    if modality == "sequence":
        if path.is_dir():
            raise DataError(f"{path} is a folder, but this model takes sequences (.npz with X, or a long table)")
        features = _sequence_arrays(path)["X"] if path.suffix.lower() in SEQUENCE_SUFFIXES else _long_table(path, None)[0]
        if features.shape[2] != len(feature_names):
            raise DataError(f"{path} has {features.shape[2]} channels, the model takes {len(feature_names)}")
        return fit_length(features, image_shape[0])
    if not path.is_dir():
        raise DataError(f"{path} is not a folder, but this model takes a folder of images")
    files = _image_files(path)
    if not files:
        raise DataError(f"{path} holds no images")
    return images_to_array([_open_image(file) for file in files], *image_shape)
