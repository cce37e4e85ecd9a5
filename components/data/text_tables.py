"""Tables with a free-text column: the text alone (text modality), or the text beside other columns
(multimodal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.data.dataset import RawDataset
from components.data.tables import Table, labelled_table, table_features, text_column
from components.errors import DataError


def _text_part(table: Table, path: Path, target: str) -> tuple[str, list[str], np.ndarray]:
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
    table = labelled_table(Path(path), target, split_column, group_column)
    column, vocabulary, codes = _text_part(table, Path(path), target)
    features, columns, categories = table_features(table.candidates.drop(columns=[column]), table.warnings, Path(path), target)
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
    table = labelled_table(Path(path), target, split_column, group_column)
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
