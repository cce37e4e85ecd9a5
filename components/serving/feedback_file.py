"""The CSV of true labels a user gives `dlautoml feedback`: read and checked whole before anything is
stored, so a bad line stores nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.errors import UserInputError, listing


def read_feedback_file(file: Path, task=None) -> list[tuple[str, int, str]]:
    """(request id, row, label) per line of ``file`` (columns request_id, label and optionally row,
    default 0); ``task``: the deployed task's manifest, whose classes the labels must be.

    Raises:
        UserInputError: unreadable file, missing columns, labels missing or outside the task's
            classes (or not numbers, for regression), rows that are not whole numbers from 0.
    """
    try:
        frame = pd.read_csv(file, dtype={"request_id": str, "label": str, "row": str})
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise UserInputError(f"cannot read {file}: {error}") from error
    missing = [column for column in ("request_id", "label") if column not in frame.columns]
    if missing:
        raise UserInputError(f"{file} lacks the columns {listing(missing)}")
    if task is not None:
        check_labels(frame["label"], task)
    rows = row_numbers(frame["row"]) if "row" in frame.columns else [0] * len(frame)
    return list(zip(frame["request_id"], rows, frame["label"]))


def row_numbers(column: pd.Series) -> list[int]:
    """The ``row`` column as whole numbers from 0 (a request's rows are numbered so)."""
    numbers = pd.to_numeric(column, errors="coerce")
    bad = [
        f"line {index + 2}: {value!r}"
        for index, (value, number) in enumerate(zip(column, numbers))
        if pd.isna(number) or number < 0 or not float(number).is_integer()
    ]
    if bad:
        raise UserInputError(f"the row column must hold whole numbers from 0: {listing(bad)}")
    return [int(number) for number in numbers]


def check_labels(labels: pd.Series, task) -> None:
    """Labels must be classes of the deployed task (or numbers for regression): retraining learns from them."""
    if labels.isna().any():
        raise UserInputError("some rows have no label: every row needs one")
    if task.task_type == "classification":
        unknown = sorted(set(labels) - set(task.class_names or []))
        if unknown:
            raise UserInputError(
                f"labels {listing(map(repr, unknown))} are not classes of this task ({listing(task.class_names or [], 10)})"
            )
    else:
        try:
            labels.astype(float)
        except ValueError as error:
            raise UserInputError(f"regression labels must be numbers: {error}") from error
