"""The command line: help, and bad input that fails in one line without touching the workspace."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_workspace

CLI = [sys.executable, "-m", "dlautoml.cli"]


def test_help_lists_every_command():
    done = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True)
    for command in ("run", "monitor", "ui", "dataset"):
        assert command in done.stdout
    run_help = subprocess.run([*CLI, "run", "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--data", "--target", "--max-trials", "--max-minutes", "--strategy"):
        assert option in run_help


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    single = tmp_path / "single.csv"
    single.write_text("x,label\n1,a\n2,a\n3,a\n")
    table = tmp_path / "table.csv"
    table.write_text("x,label\n1,a\n2,b\n")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe\x00\x81\xd9\x10garbage")
    tiny_class = tmp_path / "tiny_class.csv"
    tiny_class.write_text("x,label\n1,a\n2,a\n3,a\n4,a\n5,b\n6,b\n")
    images = tmp_path / "images" / "cat"
    images.mkdir(parents=True)
    (images / "1.png").write_text("not a png")
    return {
        "missing path": (["--data", str(tmp_path / "nope.csv")], "does not exist"),
        "missing target": (["--data", str(table), "--target", "price"], "target column 'price' is not in"),
        "single class": (["--data", str(single)], "single class"),
        "class too small to split": (["--data", str(tiny_class)], "'b' (2)"),
        "empty file": (["--data", str(empty)], "is empty"),
        "unreadable file": (["--data", str(broken)], "not a readable CSV"),
        "unreadable image": (["--data", str(images.parent)], "cannot be read"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing path",
        "missing target",
        "single class",
        "class too small to split",
        "empty file",
        "unreadable file",
        "unreadable image",
    ],
)
def test_bad_input_fails_in_one_line_and_writes_nothing(tmp_path: Path, case: str):
    root = make_workspace(tmp_path / "workspace", "data/digits")
    params_before = (root / "params.yaml").read_text()
    arguments, message = _bad_inputs(tmp_path)[case]
    done = subprocess.run([*CLI, "run", *arguments], cwd=root, capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert (root / "params.yaml").read_text() == params_before
    assert not (root / "outputs").exists() and not (root / "data").exists()


def test_invalid_parameter_is_named(tmp_path: Path):
    root = make_workspace(tmp_path / "workspace", "data/digits", overrides={"training": {"max_trials": 0}})
    done = subprocess.run([*CLI, "run"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 2 and "training.max_trials" in done.stderr
