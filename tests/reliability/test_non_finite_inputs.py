"""Infinite numbers are refused where they enter: in a training table before a run writes anything,
and in a served request with a 400 that names the value (they were answered 200 with no probabilities)."""

import json
from pathlib import Path

import numpy as np
import pytest

from components.serving.inputs import RequestError, rows_to_array, sequences_to_array
from components.serving.model_store import ServingMetadata
from tests.conftest import make_workspace, run_cli


def _table(path: Path, bad_cell: str, column: str = "x") -> Path:
    lines = ["x,y,label"] + [f"{i},{i % 3},{'ab'[i % 2]}" for i in range(30)]
    if column == "x":
        lines[5] = f"{bad_cell},1,a"
    else:
        lines[5] = f"4,1,{bad_cell}"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "cell, column, message",
    [
        ("inf", "x", "1 feature value(s) are infinite, in 'x' (samples 4)"),
        ("-Infinity", "x", "1 feature value(s) are infinite, in 'x'"),
        ("1e309", "x", "1 feature value(s) are infinite, in 'x'"),
        ("inf", "label", "the target holds 1 value(s) that are not finite numbers"),
    ],
)
def test_a_table_with_infinite_values_fails_in_one_line_and_writes_nothing(tmp_path: Path, cell, column, message, monkeypatch):
    root = make_workspace(tmp_path / "workspace", "data/digits")
    params_before = (root / "params.yaml").read_text()
    table = _table(tmp_path / "table.csv", cell, column)
    arguments = ["--data", str(table)] + (["--task-type", "regression"] if column == "label" else [])
    if column == "label":  # a numeric target: regression
        table.write_text(table.read_text().replace(",a\n", ",1.5\n").replace(",b\n", ",2.5\n"))
    code, stderr = run_cli(root, monkeypatch, "run", *arguments)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], stderr
    assert (root / "params.yaml").read_text() == params_before
    assert not (root / "outputs").exists() and not (root / "data").exists()


def _metadata(modality: str, names: list[str], shape: list[int]) -> ServingMetadata:
    return ServingMetadata(modality, "classification", ["no", "yes"], names, shape)


@pytest.mark.parametrize("value", [float("inf"), -float("inf"), "inf", "1e309", 1e39])
def test_a_request_with_an_infinite_value_is_refused_naming_it(value):
    metadata = _metadata("tabular", ["a", "b"], [2])
    with pytest.raises(RequestError, match=r"row 1, 'b' is infinite \(1 such value\(s\)\)"):
        rows_to_array([[1.0, 2.0], [3.0, value]], metadata)
    assert rows_to_array([[1.0, None], [3.0, 4.0]], metadata).shape == (2, 2)  # null stays a missing value


def test_a_sequence_with_an_infinite_or_text_value_is_refused():
    metadata = _metadata("sequence", ["accel", "gyro"], [4, 2])
    with pytest.raises(RequestError, match="'gyro' is infinite"):
        sequences_to_array([[[0.0, 1.0], [0.5, float("inf")]]], metadata)
    with pytest.raises(RequestError, match="sequence 0, step 1 holds a value that is not a number"):
        sequences_to_array([[[0.0, 1.0], [0.5, "fast"]]], metadata)
    assert np.isnan(sequences_to_array([[[0.0, None]]], metadata)[0, 0, 1])


def test_json_infinity_reaches_the_check():
    """Python's JSON reader (the server's) turns the literal Infinity into a float: the check sees it."""
    assert json.loads('{"rows": [[1, Infinity]]}')["rows"][0][1] == float("inf")
