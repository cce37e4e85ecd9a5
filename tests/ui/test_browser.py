"""The three UIs of a tiny real run, opened in headless Chromium as a user would: what the rendered pages
show must agree with what the run reported. Screenshots of every page checked are kept under
test-artifacts/browser/ (DLAUTOML_TEST_ARTIFACTS moves them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import pytest

from components.manifests import TrainingManifest
from components.networking import free_port
from tests.conftest import make_workspace, write_images
from tests.ui.browser import Browser, servers, shown_value


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, venv_environment) -> Path:
    """`dlautoml run` on tiny images: two trials, a registered champion, a monitoring baseline."""
    root = make_workspace(tmp_path_factory.mktemp("ui") / "workspace", "data/images")
    write_images(root / "data" / "images")
    done = subprocess.run(
        [sys.executable, "-m", "dlautoml.cli", "run"], cwd=root, env=venv_environment, capture_output=True, text=True
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return root


def test_the_uis_show_what_the_run_reported(finished_run: Path, venv_environment, tmp_path: Path):
    root = finished_run
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    experiment = mlflow.get_experiment_by_name("dlautoml").experiment_id
    training = mlflow.search_runs([experiment], filter_string="tags.`dlautoml.stage` = 'training'", output_format="list")
    training = next(run for run in training if "chosen_trial" in run.data.tags)
    chosen = mlflow.search_runs([experiment], filter_string="tags.`dlautoml.chosen` = 'true'", output_format="list")
    assert len(chosen) == 1 and chosen[0].info.run_name == f"trial-{training.data.tags['chosen_trial']}"
    search = TrainingManifest.read(root).nni_experiment_id

    ports = {name: free_port() for name in ("mlflow", "prefect", "nni")}
    cli = [sys.executable, "-m", "dlautoml.cli"]
    environment = {**venv_environment, "PYTHONUNBUFFERED": "1", "PREFECT_HOME": str(tmp_path / "prefect-home")}
    environment.pop("PREFECT_API_URL", None)
    commands = {
        "mlflow": ([*cli, "ui", "mlflow", "--port", str(ports["mlflow"])], f"http://127.0.0.1:{ports['mlflow']}/health"),
        "nni": ([*cli, "ui", "nni", "--port", str(ports["nni"])], f"http://127.0.0.1:{ports['nni']}/oview"),
        "prefect": (
            [*cli, "monitor", "--serve", "--prefect-port", str(ports["prefect"])],
            f"http://127.0.0.1:{ports['prefect']}/api/health",
        ),
    }
    with servers(commands, root, environment):
        prefect = f"http://127.0.0.1:{ports['prefect']}"
        automl = []
        while not automl:  # the deployments appear once `monitor --serve` has registered them
            automl = httpx.post(f"{prefect}/api/deployments/filter", json={"deployments": {"name": {"any_": ["automl"]}}}).json()
        browser = Browser()
        try:
            mlflow_ui = f"http://127.0.0.1:{ports['mlflow']}/#"
            # The chosen trial's page shows the score the training run reports as the best.
            reported = browser.page(
                f"{mlflow_ui}/experiments/{experiment}/runs/{training.info.run_id}",
                "mlflow-training-run",
                "chosen_validation_score",
            )
            trial = browser.page(
                f"{mlflow_ui}/experiments/{experiment}/runs/{chosen[0].info.run_id}", "mlflow-chosen-trial", "best_val_score"
            )
            assert shown_value(trial, "val_score") == shown_value(reported, "chosen_validation_score")
            assert shown_value(trial, "val_score") == shown_value(reported, "best_validation_score")
            assert "dlautoml.chosen" in trial
            # The registry's version page: a schema with inputs and outputs, and the champion alias.
            version = browser.page(f"{mlflow_ui}/models/dlautoml-images/versions/1", "mlflow-model-version", "Inputs (")
            assert "Inputs (1)" in version and "Outputs (1)" in version and "@ champion" in version
            assert "### " not in version and "Per class (test split)" in version  # the model card, rendered
            # The Prefect run form: descriptions, and what each empty field falls back to.
            form = browser.page(f"{prefect}/deployments/deployment/{automl[0]['id']}/run", "prefect-automl-form", "max_trials")
            assert "NNI search trials; empty: params.yaml's training.max_trials (now 2)." in form
            assert "the training stage's budget" in form and "workspace" not in form
            deployment = browser.page(
                f"{prefect}/deployments/deployment/{automl[0]['id']}", "prefect-automl", "Concurrency Limit"
            )
            assert shown_value(deployment, "Concurrency Limit") == 1
            # NNI's overview of the search: both trials succeeded, the best metric as reported.
            overview = browser.page(f"http://127.0.0.1:{ports['nni']}/oview", "nni-overview", search)
            assert "Succeeded\n2" in overview
            best = re.search(r"^([0-9.]+)\nBest metric$", overview, re.MULTILINE)
            assert best and float(best[1]) == training.data.metrics["best_validation_score"], overview[:2000]
        finally:
            browser.close()
