"""The command line: help, and bad input that fails in one line without touching the workspace."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_workspace, run_cli

CLI = [sys.executable, "-m", "dlautoml.cli"]


def test_help_lists_every_command():
    done = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True)
    for command in ("run", "monitor", "ui", "dataset"):
        assert command in done.stdout
    run_help = subprocess.run([*CLI, "run", "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--data", "--target", "--max-trials", "--max-minutes", "--strategy"):
        assert option in run_help
    assert "[default: params.yaml, then" in run_help  # not taken for markup and dropped


def test_the_command_line_starts_without_the_heavy_libraries():
    """`dlautoml --help` in well under a second (benchmarks/cli_start.py measures it): its module
    imports neither scikit-learn, PyTorch, Prefect nor MLflow until a command needs them."""
    code = "import sys, dlautoml.cli; print(sorted(m for m in ('sklearn', 'torch', 'prefect', 'mlflow') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


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
    bad_split = tmp_path / "bad_split.csv"
    bad_split.write_text("x,split,label\n" + "".join(f"{i},{'train' if i < 8 else 'holdout'},{'ab'[i % 2]}\n" for i in range(12)))
    no_labels = tmp_path / "walks.npz"
    np.savez(no_labels, X=np.zeros((10, 5, 2)))
    mixed = tmp_path / "sensors.csv"
    mixed.write_text("series_id,time,accel,label\na,0,1,up\na,1,2,down\nb,0,1,up\nb,1,1,up\n")
    return {
        "missing path": (["--data", str(tmp_path / "nope.csv")], "does not exist"),
        "missing target": (["--data", str(table), "--target", "price"], "target column 'price' is not in"),
        "single class": (["--data", str(single)], "single class"),
        "class too small to split": (["--data", str(tiny_class)], "'b' (2)"),
        "empty file": (["--data", str(empty)], "is empty"),
        "unreadable file": (["--data", str(broken)], "not a readable CSV"),
        "unreadable image": (["--data", str(images.parent)], "cannot be read"),
        "unknown split name": (["--data", str(bad_split)], "holds 'holdout': use train, validation or test"),
        "sequences without labels": (["--data", str(no_labels)], "needs y with one label per sequence"),
        "a sequence with two labels": (["--data", str(mixed)], "sequences a have several labels"),
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
        "unknown split name",
        "sequences without labels",
        "a sequence with two labels",
    ],
)
def test_bad_input_fails_in_one_line_and_writes_nothing(tmp_path: Path, case: str, monkeypatch):
    root = make_workspace(tmp_path / "workspace", "data/digits")
    params_before = (root / "params.yaml").read_text()
    arguments, message = _bad_inputs(tmp_path)[case]
    code, stderr = run_cli(root, monkeypatch, "run", *arguments)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert (root / "params.yaml").read_text() == params_before
    assert not (root / "outputs").exists() and not (root / "data").exists()


def test_invalid_parameter_is_named(tmp_path: Path, monkeypatch):
    root = make_workspace(tmp_path / "workspace", "data/digits", overrides={"training": {"max_trials": 0}})
    code, stderr = run_cli(root, monkeypatch, "run")
    assert code == 2 and "training.max_trials" in stderr


def test_feedback_refuses_labels_that_are_not_classes_of_the_task(tmp_path: Path):
    from components.manifests import TaskManifest
    from components.serving.request_log import RequestLog, read_requests

    folder = tmp_path / "outputs" / "task_formulation"
    folder.mkdir(parents=True)
    TaskManifest(
        data_path="data/t.csv",
        modality="tabular",
        task_type="classification",
        target="label",
        metric="accuracy",
        success_threshold=0.75,
        class_names=["no", "yes"],
        sample_count=10,
        reasons=[],
    ).write(folder)
    log = RequestLog(tmp_path / "serving" / "requests.db")
    log.record("m", "1", np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32), [{"label": "no"}], 1.0, "r1")
    log.close()
    (tmp_path / "labels.csv").write_text("request_id,label\nr1,maybe\n")
    done = subprocess.run([*CLI, "feedback", "--file", "labels.csv"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "'maybe' are not classes of this task (no, yes)" in done.stderr
    assert read_requests(tmp_path / "serving" / "requests.db")[0]["labels"] == {}
    (tmp_path / "labels.csv").write_text("request_id,label\nr1,yes\n")
    done = subprocess.run([*CLI, "feedback", "--file", "labels.csv"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and "stored 1 labels" in done.stdout
    assert read_requests(tmp_path / "serving" / "requests.db")[0]["labels"] == {0: "yes"}


def test_nnictl_starts():
    """NNI's own command line (nnictl) starts: it imports pkg_resources, which setuptools 81 dropped."""
    done = subprocess.run([str(Path(sys.executable).parent / "nnictl"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_prefect_run_forms_describe_every_field():
    """The Prefect UI builds its run forms from the flows' parameter schemas (descriptions from the docstrings)."""
    from flows.automl import automl
    from flows.monitor import monitor

    for flow in (automl, monitor):
        fields = flow.parameters.model_dump()["properties"]
        assert all(field.get("description") for field in fields.values()), [
            name for name, field in fields.items() if not field.get("description")
        ]
