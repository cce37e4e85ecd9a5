"""`dvc repro` runs the same six stages without Prefect, and agrees with `dvc status` afterwards."""

import json
import subprocess
from pathlib import Path

from components.config import STAGES
from tests.conftest import make_workspace, write_table


def test_dvc_repro_runs_the_pipeline_on_a_table(tmp_path: Path, venv_environment):
    root = make_workspace(tmp_path / "workspace", "data/table.csv")
    (root / "data").mkdir()
    write_table(root / "data" / "table.csv", rows=150, messy=True)
    subprocess.run(["dvc", "add", "data/table.csv"], cwd=root, env=venv_environment, check=True, capture_output=True)

    repro = subprocess.run(["dvc", "repro"], cwd=root, env=venv_environment, capture_output=True, text=True)
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    for stage in STAGES:
        assert f"Running stage '{stage}'" in repro.stdout
        assert json.loads((root / "outputs" / stage / "manifest.json").read_text())
    status = subprocess.run(["dvc", "status"], cwd=root, env=venv_environment, capture_output=True, text=True, check=True)
    assert "up to date" in status.stdout
    metrics = subprocess.run(
        ["dvc", "metrics", "show"], cwd=root, env=venv_environment, capture_output=True, text=True, check=True
    )
    assert "samples_used" in metrics.stdout and "label_errors" in metrics.stdout
    for stage, figure in (
        ("training", "test_accuracy"),
        ("deployment", "batch1_onnxruntime_p50_ms"),
        ("monitoring", "conformal_test_coverage"),
    ):
        assert f"metrics/{stage}.json" in metrics.stdout and figure in metrics.stdout, metrics.stdout
    plots = subprocess.run(
        ["dvc", "plots", "show", "--json"], cwd=root, env=venv_environment, capture_output=True, text=True, check=True
    )
    shown = json.loads(plots.stdout)
    assert not shown.get("errors"), shown.get("errors")
    for path in ("outputs/training/learning_curve.csv", "outputs/training/trials.csv", "outputs/deployment/sweep.csv"):
        assert shown["data"][path][0]["type"] == "vega" and shown["data"][path][0]["content"]["data"]["values"], path
    quality = json.loads((root / "outputs" / "data_preparation" / "quality.json").read_text())
    assert quality["samples_loaded"] == 150 and quality["leakage"] == {"shared_inputs": {}}
    assert "<h2>Label errors</h2>" in (root / "outputs" / "data_preparation" / "quality.html").read_text()
    training = json.loads((root / "outputs" / "training" / "manifest.json").read_text())
    assert training["family"] == "mlp" and training["test_metric"] == "accuracy"
    preparation = json.loads((root / "outputs" / "data_preparation" / "manifest.json").read_text())
    assert preparation["feature_names"] == ["a", "b", "c", "region"]  # the id column is not a feature
    assert preparation["categories"] == {"region": ["east", "north", "south"]}
    assert training["test_score"] > 0.7
