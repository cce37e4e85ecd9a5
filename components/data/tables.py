"""Tables (CSV, Parquet): reading them with errors that say what to do, numeric and categorical
columns, id-like columns, and the split and group columns a table may hold."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from warnings import catch_warnings, simplefilter

import numpy as np
import pandas as pd

from components.data.dataset import RawDataset, image_path_column, long_format_columns, official_splits, source_signature
from components.errors import DataError
from components.errors import listing as listed

ID_NAMES = {"id", "uuid", "guid", "key", "index", "row", "row_id", "record_id", "sample_id"}


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


# The table read last, until the dataset is loaded from it (``forget_table``): telling the modality
# and loading the data both read the whole table (4.5 s each for a million rows of 30 columns).
_READ: dict[tuple, pd.DataFrame] = {}


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a data frame, with errors that say what to do; the same file read
    again is a copy of the frame kept from the last read (until :func:`forget_table`)."""
    key = source_signature(path) if Path(path).is_file() else None
    if key is None or key not in _READ:
        frame = _read(Path(path))
        if key is None:
            return frame
        _READ.clear()
        _READ[key] = frame
    return _READ[key].copy()  # the caller's own columns (strings are shared: they cannot change)


def forget_table() -> None:
    """Lets the last table read go (its dataset is loaded, and kept by ``sources.load_dataset``)."""
    _READ.clear()


def _read(path: Path) -> pd.DataFrame:
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


def few_enough_to_be_categories(distinct: int, rows: int) -> bool:
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


@dataclass
class Table:
    rows: pd.DataFrame  # the labelled rows, every column
    candidates: pd.DataFrame  # the columns that may become features
    target: np.ndarray
    sample_ids: list[str]
    warnings: list[str]
    official: np.ndarray | None
    groups: np.ndarray | None


def labelled_table(
    path: Path,
    target: str,
    split_column: str | None,
    group_column: str | None,
    media_column: str | None = None,
    frame: pd.DataFrame | None = None,
) -> Table:
    """A table's labelled rows, its split and group columns, and its id column (which names the rows);
    ``media_column`` (image paths) is neither a candidate feature nor an id; ``frame``: the table
    when it has been read already."""
    frame = read_table(path) if frame is None else frame
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
    official = official_splits(frame[split_column], path, split_column) if split_column in special else None
    groups = frame[group_column].astype(str).to_numpy() if group_column else None
    candidates = frame.drop(columns=[target, *special, *([media_column] if media_column else [])])
    identifiers = id_columns(candidates)
    sample_ids = [str(index) for index in frame.index]
    if identifiers:
        warnings.append(f"ignored id-like columns (a different value in (nearly) every row): {', '.join(map(str, identifiers))}")
        if candidates[identifiers[0]].is_unique:
            sample_ids = candidates[identifiers[0]].astype(str).tolist()
        candidates = candidates.drop(columns=identifiers)
    return Table(frame, candidates, frame[target].to_numpy(), sample_ids, warnings, official, groups)


def table_subset(table: Table, positions: list[int]) -> Table:
    """The table's rows at ``positions`` (e.g. those whose image could be read)."""
    return Table(
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
    table = labelled_table(path, target, split_column, group_column)
    listed = image_path_column(table.candidates, path.parent)
    if listed is not None:
        raise DataError(
            f"{path} lists images in column '{listed}': pass the folder that holds the table and the images "
            f"(--data {path.parent}) so that the images are versioned with it"
        )
    features, columns, categories = table_features(table.candidates, table.warnings, path, target)
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


def table_features(
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
        if few_enough_to_be_categories(len(distinct), len(candidates)):
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

    texts = [
        column
        for column in frame.columns
        if column != target and not pd.api.types.is_numeric_dtype(frame[column]) and is_text_column(frame[column].tolist())
    ]
    if not texts:
        return None
    return str(max(texts, key=lambda column: frame[column].astype(str).str.len().mean()))


def other_features(frame: pd.DataFrame, text: str, ignored: tuple[str | None, ...] = ()) -> list[str]:
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
    return "multimodal" if other_features(frame, text, (target, *ignored)) else "text"


def table_rows(frame: pd.DataFrame, names: list[str], categories: dict[str, list[str]], source: Path) -> np.ndarray:
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
