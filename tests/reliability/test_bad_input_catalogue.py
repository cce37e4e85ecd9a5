"""A catalogue of bad input across `run`, `monitor`, `feedback` and `serve` (issue 15): each ends
with one line that names the problem, a non-zero exit, and nothing written to the workspace."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_workspace, run_cli


def _text(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return make


def _rows(header: str, rows: int, row: Callable[[int], str]) -> str:
    return header + "\n" + "".join(row(index) + "\n" for index in range(rows))


def _images(folder: Path, build: Callable[[Path], None]) -> Path:
    images = folder / "images"
    build(images)
    return images


def _corrupt_only(images: Path) -> None:
    for label in "ab":
        (images / label).mkdir(parents=True)
        for index in range(3):
            (images / label / f"{index}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


def test_run_refuses_images_too_large_to_decode(tmp_path: Path, monkeypatch):
    """PIL's decompression-bomb limit, lowered so that the test's images pass it (a 15000 x 15000 PNG
    of a few kilobytes is what a user sends): the error names the image, not a traceback."""
    images = tmp_path / "images"
    for label in "ab":
        (images / label).mkdir(parents=True)
        for index in range(3):
            Image.new("L", (60, 60)).save(images / label / f"{index}.png")
    root = make_workspace(tmp_path / "workspace", "data/digits")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    code, stderr = run_cli(root, monkeypatch, "run", "--data", str(images))
    assert code == 2 and "too large to decode" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (root / "data").exists()


def _npz(name: str, **arrays: np.ndarray) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        np.savez(folder / name, **arrays)
        return folder / name

    return make


# (how to make the data, extra options, what the one-line error must say)
RUN_CASES: dict[str, tuple[Callable[[Path], Path], list[str], str]] = {
    "header only": (_text("header.csv", "x,label\n"), [], "has a header but no rows"),
    "one row": (_text("one.csv", "x,label\n1,a\n"), [], "single class"),
    "every target missing": (_text("empty_target.csv", _rows("x,label", 30, lambda i: f"{i % 7},")), [], "has no values"),
    "an infinite target": (
        _text("inf.csv", _rows("x,y", 40, lambda i: f"{i % 7},{'inf' if i == 3 else i * 0.5}")),
        ["--target", "y"],
        "not finite",
    ),
    "id-like classes": (
        _text("ids.csv", _rows("x,label", 3000, lambda i: f"{i % 7},{i}")),
        ["--task-type", "classification"],
        "and 2,995 more",
    ),
    "latin-1 bytes": (_text("latin.csv", "x,label\n1,caf\xe9\n2,th\xe9\n".encode("latin-1")), [], "not a readable CSV"),
    "a column named twice": (
        _text("twice.csv", _rows("x,x,label", 40, lambda i: f"{i},{i},{'ab'[i % 2]}")),
        [],
        "more than once",
    ),
    "only an empty feature column": (
        _text("blank.csv", _rows("x,label", 40, lambda i: f",{'ab'[i % 2]}")),
        [],
        "x have no values",
    ),
    "rows that are all copies": (
        _text("copies.csv", _rows("x,label", 40, lambda i: f"{i % 2},{'ab'[i % 4 // 2]}")),
        [],
        "after dropping 40 duplicated or conflicting row(s)",
    ),
    "a Parquet that is a CSV": (
        _text("table.parquet", _rows("x,label", 40, lambda i: f"{i},{'ab'[i % 2]}")),
        [],
        "not a readable Parquet",
    ),
    "class folders without images": (
        lambda f: _images(f, lambda p: [(p / c).mkdir(parents=True) for c in "ab"]),
        [],
        "no images",
    ),
    "corrupt images only": (lambda f: _images(f, _corrupt_only), [], "can be read"),
    "sequences of the wrong rank": (
        _npz("deep.npz", X=np.random.default_rng(0).normal(size=(20, 5, 2, 2)), y=np.arange(20) % 2),
        [],
        "X",
    ),
    "labels that do not match the sequences": (
        _npz("short.npz", X=np.random.default_rng(0).normal(size=(20, 5, 2)), y=np.arange(7) % 2),
        [],
        "y",
    ),
    "a target column that does not exist": (
        _text("t.csv", _rows("x,label", 40, lambda i: f"{i},{'ab'[i % 2]}")),
        ["--target", "nope"],
        "'nope'",
    ),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_run_refuses_bad_data(tmp_path: Path, case: str, monkeypatch):
    make, options, message = RUN_CASES[case]
    data = make(tmp_path)
    root = make_workspace(tmp_path / "workspace", "data/digits")
    params_before = (root / "params.yaml").read_text()
    code, stderr = run_cli(root, monkeypatch, "run", "--data", str(data), *options)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr[-2000:]
    assert (root / "params.yaml").read_text() == params_before
    assert not (root / "data").exists() and not (root / "outputs").exists()


PARAMS_CASES = {
    "a negative budget": ({"training": {"max_minutes": -1}}, "training.max_minutes"),
    "an unknown strategy": ({"training": {"strategy": "genetic"}}, "training.strategy"),
    "a test share of one": ({"data_preparation": {"test_fraction": 1.0}}, "data_preparation.test_fraction"),
    "an unknown key": ({"training": {"max_trial": 3}}, "training.max_trial"),
}


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_run_refuses_bad_parameters(tmp_path: Path, case: str, monkeypatch):
    overrides, message = PARAMS_CASES[case]
    root = make_workspace(tmp_path / "workspace", "data/digits", overrides=overrides)
    code, stderr = run_cli(root, monkeypatch, "run")
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], stderr[-2000:]
    assert not (root / "data").exists() and not (root / "outputs").exists()


def test_run_refuses_a_parameters_file_that_is_not_yaml(tmp_path: Path, monkeypatch):
    root = make_workspace(tmp_path / "workspace", "data/digits")
    (root / "params.yaml").write_text("training: [unclosed\n")
    code, stderr = run_cli(root, monkeypatch, "run")
    assert code == 2 and "params.yaml" in stderr and len(stderr.strip().splitlines()) == 1, stderr


OTHER_CASES = {
    "monitor before any run": (["monitor"], "run"),
    "monitor with a parameters file that does not exist": (["monitor", "--params", "nowhere.yaml"], "nowhere.yaml"),
    "feedback from a missing file": (["feedback", "--file", "labels.csv"], "labels.csv"),
    "serve before any model is registered": (["serve", "--model", "nothing"], "nothing"),
    "serve on a port out of range": (["serve", "--port", "70000"], "--port"),
}


@pytest.mark.parametrize("case", sorted(OTHER_CASES))
def test_other_commands_refuse_bad_input(tmp_path: Path, case: str, monkeypatch):
    arguments, message = OTHER_CASES[case]
    root = make_workspace(tmp_path / "workspace", "data/digits")
    code, stderr = run_cli(root, monkeypatch, *arguments)
    assert code != 0 and message in stderr, stderr[-2000:]
    # one line, or the command line's own usage error (a box naming the option)
    assert len(stderr.strip().splitlines()) == 1 or "Invalid value for" in stderr, stderr[-2000:]
    assert not (root / "outputs").exists() and not (root / "serving").exists()


def test_semicolons_and_a_byte_order_mark_are_read(tmp_path: Path):
    """Not bad input: exports from spreadsheets often look like this."""
    from components.data.sources import load_dataset

    semicolons = _text("semi.csv", _rows("x;label", 40, lambda i: f"{i % 7};{'ab'[i % 2]}"))(tmp_path)
    marked = _text("bom.csv", "\ufeff" + _rows("label,x", 40, lambda i: f"{'ab'[i % 2]},{i % 7}"))(tmp_path)
    for path in (semicolons, marked):
        dataset = load_dataset(path, "tabular", "label", 64)
        assert dataset.feature_names == ["x"] and len(dataset) == 40 and set(dataset.target) == {"a", "b"}
