"""The whole pipeline as a Prefect flow on tiny images, then what DVC, MLflow and Prefect say about it."""

import json
import subprocess
from collections import Counter
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from components.config import STAGES
from components.data.preparation import Splits
from components.errors import DataError
from components.manifests import DeploymentManifest, ModelManifest, TaskManifest, TrainingManifest
from components.monitoring.history import SERIES_TAG
from components.search.knowledge import CONFIGURATION_TAG, KNOWLEDGE_TAG, consult
from components.serving.request_log import RequestLog
from flows.automl import automl
from flows.monitor import monitor
from tasks.deployment import load_deployable
from tasks.stage_runner import SKIPPED_TAG, artifact_key
from tasks.versioning import track_data
from tests.conftest import PROJECT, make_workspace, write_images


def stage_run_counts(experiment_id: str) -> Counter:
    """How many times each stage really ran (skipped stages get a run tagged as skipped)."""
    runs = mlflow.search_runs([experiment_id], filter_string="tags.`dlautoml.stage` != 'pipeline'", output_format="list")
    return Counter(run.info.run_name for run in runs if run.info.run_name in STAGES and SKIPPED_TAG not in run.data.tags)


def dvc(workspace: Path, environment: dict, *arguments: str) -> str:
    done = subprocess.run(["dvc", *arguments], cwd=workspace, env=environment, capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_pipeline_flow_end_to_end(tmp_path: Path, monkeypatch, harness, venv_environment):
    root = make_workspace(tmp_path / "workspace", "data/images")
    write_images(root / "data" / "images")
    monkeypatch.chdir(root)
    version = track_data(root / "data" / "images", root)

    summary = automl(workspace=".", params_file="params.yaml")
    assert "Pipeline finished" in summary and "cnn" in summary

    with get_client(sync_client=True) as client:
        flow_runs = client.read_flow_runs()
        task_runs = client.read_task_runs()
        artifacts = client.read_artifacts()
    assert [run.state_name for run in flow_runs] == ["Completed"]
    assert sorted(run.name for run in task_runs) == sorted(STAGES)
    # The data-quality report under this workspace's own key, its splits in words (not a Python dict).
    quality = [artifact for artifact in artifacts if artifact.key and artifact.key.startswith("data-quality-")]
    assert [artifact.key for artifact in quality] == [artifact_key("data-quality", root)]
    assert "| splits | train " in quality[0].data and "{" not in quality[0].data

    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    experiment_id = mlflow.get_experiment_by_name("dlautoml").experiment_id
    parents = mlflow.search_runs([experiment_id], filter_string="tags.`dlautoml.stage` = 'pipeline'", output_format="list")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["data_version"] == version and parent.data.tags["git_commit"]
    stages = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    assert sorted(run.info.run_name for run in stages) == sorted(STAGES)
    training_run = next(run for run in stages if run.info.run_name == "training")
    formulation_run = next(run for run in stages if run.info.run_name == "task_formulation")
    assert formulation_run.data.metrics["meta_height"] == 8 and "meta_linear_landmark" in formulation_run.data.metrics
    assert "training.max_trials" in training_run.data.params
    trials = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{training_run.info.run_id}'", output_format="list"
    )
    assert len(trials) == 2 and all("val_score" in trial.data.metrics for trial in trials)
    chosen = [trial for trial in trials if trial.data.tags.get("dlautoml.chosen") == "true"]
    assert [trial.info.run_name for trial in chosen] == [f"trial-{training_run.data.tags['chosen_trial']}"]
    assert all(trial.data.tags["data_version"] == version for trial in trials)
    # The machine's use while each trial trained, on the run's "System metrics" tab.
    assert all(trial.data.metrics["system/cpu_utilization_percentage"] > 0 for trial in trials)
    # One duration per trial: the MLflow run's, trials.csv's and the log's are the trial's own measure.
    listed = pd.read_csv(root / "outputs" / "training" / "trials.csv").set_index("trial")["seconds"]
    assert {
        int(trial.info.run_name.removeprefix("trial-")): round(trial.data.metrics["trial_seconds"], 2) for trial in trials
    } == {int(number): seconds for number, seconds in listed.items()}
    assert 0.0 <= training_run.data.metrics["test_accuracy"] <= 1.0
    # The finished search is knowledge: a later search of similar data (here: the same) starts with its best.
    assert training_run.data.tags[KNOWLEDGE_TAG] == "search" and training_run.data.metrics["meta_height"] == 8
    task_manifest = TaskManifest.read(root)
    space = ModelManifest.read(root).search_space
    learned, neighbours, _ = consult(True, task_manifest.meta_features, "image", "classification", "cnn", space, 2)
    top = max(trial.data.metrics.get("best_val_score", -1.0) for trial in trials)
    best = [json.loads(t.data.tags[CONFIGURATION_TAG]) for t in trials if t.data.metrics.get("best_val_score") == top]
    assert [n.run_id for n in neighbours] == [training_run.info.run_id] and neighbours[0].distance == pytest.approx(0.0, abs=1e-6)
    assert learned[0] in best
    first_weights = (root / "outputs" / "training" / "model.pt").read_bytes()
    drawn = MlflowClient().list_artifacts(training_run.info.run_id, "training")
    assert "training/network.png" in [artifact.path for artifact in drawn]  # the chosen network, drawn
    champion = MlflowClient().get_model_version_by_alias("dlautoml-images", "champion")
    assert champion.tags["data_version"] == version
    card = champion.description  # the model card, on the version's registry page
    assert card.startswith("# dlautoml-images version 1") and f"| data version | `{version}` |" in card
    assert "### Per class (test split)" in card and "| alias | champion |" in card
    # The parent run carries the figures that compare pipelines in the runs table.
    assert parent.data.metrics["test_accuracy"] == training_run.data.metrics["test_accuracy"]
    assert parent.data.metrics["onnx_latency_batch1_p50_ms"] > 0 and parent.data.metrics["trials"] == 2
    assert parent.data.tags["model_version"] == str(champion.version) and parent.data.tags["model_family"] == "cnn"

    assert "up to date" in dvc(root, venv_environment, "status")
    assert stage_run_counts(experiment_id) == Counter(STAGES)

    # Nothing changed: every stage is skipped, and the new pipeline run still lists all six.
    automl(workspace=".", params_file="params.yaml")
    assert stage_run_counts(experiment_id) == Counter(STAGES)
    latest = mlflow.search_runs([experiment_id], filter_string="tags.`dlautoml.stage` = 'pipeline'", output_format="list")[0]
    skipped = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{latest.info.run_id}'", output_format="list"
    )
    assert sorted(run.info.run_name for run in skipped) == sorted(STAGES)
    assert all(run.data.tags[SKIPPED_TAG] == "true" for run in skipped)

    # Only training parameters changed: training and what depends on it run again, now with the
    # one-shot strategy (DARTS over the image model space, then TPE) and a size limit.
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["training"].update({"trial_max_epochs": 2, "strategy": "darts", "max_parameters": 200_000})
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    automl(workspace=".", params_file="params.yaml")
    counts = stage_run_counts(experiment_id)
    assert counts == Counter({**{stage: 1 for stage in STAGES}, "training": 2, "deployment": 2, "monitoring": 2})
    assert "up to date" in dvc(root, venv_environment, "status")
    repro = dvc(root, venv_environment, "repro")
    assert all(f"Stage '{stage}' didn't change, skipping" in repro for stage in STAGES)
    training = TrainingManifest.read(".")
    assert training.trial_count == 2 and training.metrics["oneshot_epochs"] >= 1
    cells = (root / "outputs" / "training" / "architecture.csv").read_text().splitlines()
    assert cells[0].startswith("stage,cell,operation,skip,channels,operation_weight") and len(cells) >= 3
    trials_table = pd.read_csv(root / "outputs" / "training" / "trials.csv")
    assert trials_table["param_stage1_cell1_op"].nunique() == 1  # the operations DARTS chose, tuned by TPE
    assert trials_table["param_stage1_cell1_op"].iloc[0] == training.architecture["stage1_cell1_op"]
    assert training.metrics["final_from_trial_weights"] == 1.0  # the final training went on from the chosen trial
    assert training.metrics["training_seconds"] <= 1.1 * training.metrics["budget_seconds"]
    assert (root / ".nni" / "checkpoints").is_dir() and not (PROJECT / ".nni" / "checkpoints").exists()
    retrained = DeploymentManifest.read(".")
    assert retrained.registered_version == "2" and retrained.promotion
    assert MlflowClient().get_model_version("dlautoml-images", "2").tags["meets_hardware_limits"] == "true"
    decision = MlflowClient().get_model_version("dlautoml-images", "2").tags["promotion_decision"]
    assert decision == retrained.promotion
    expected = "2" if decision.startswith("promoted") else "1"
    assert str(MlflowClient().get_model_version_by_alias("dlautoml-images", "champion").version) == expected

    # The monitor flow: an inverted copy of the images drifts; the flow reports it to MLflow.
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    for index, path in enumerate(sorted((root / "data" / "images").rglob("*.png"))):
        Image.fromarray(255 - np.asarray(Image.open(path))).save(shifted / f"{index}.png")
    result = monitor(data_path=str(shifted), workspace=".", params_file="params.yaml")
    assert result["drift"] and result["embedding_mmd_p_value"] <= 0.05 and result["inputs"] == 60
    assert result["judged_version"] == expected

    # The monitor judges the served version by its own network and reference: after a rollback to
    # version 1, version 1's reference comes from MLflow (the workspace's outputs are version 2's).
    MlflowClient().set_registered_model_alias("dlautoml-images", "champion", "1")
    assert monitor(data_path=str(shifted), workspace=".", params_file="params.yaml")["judged_version"] == "1"
    reference = root / "serving" / "references" / "1" / "outputs"
    assert (
        (reference / "training" / "model.pt").read_bytes()
        == first_weights
        != (root / "outputs" / "training" / "model.pt").read_bytes()
    )
    MlflowClient().set_registered_model_alias("dlautoml-images", "champion", "2")
    assert 0.0 <= result["uncertain_share"] <= 1.0 and 0.0 <= result["prediction_shift_p_value"] <= 1.0
    monitoring = mlflow.get_experiment_by_name("dlautoml-monitoring")
    logged = mlflow.search_runs([monitoring.experiment_id], output_format="list")
    checks = [run for run in logged if SERIES_TAG not in run.data.tags]
    assert checks[0].data.metrics["drift"] == 1.0
    assert [run.info.run_name for run in checks[:2]] == ["dlautoml-images v1: drift", f"dlautoml-images v{expected}: drift"]
    # Each version's checks over time: a series run per version, each check nested under it.
    series = {run.data.tags[SERIES_TAG]: run for run in logged if SERIES_TAG in run.data.tags}
    assert sorted(series) == sorted({"dlautoml-images v1", f"dlautoml-images v{expected}"})
    drift_over_time = MlflowClient().get_metric_history(series[f"dlautoml-images v{expected}"].info.run_id, "drift")
    assert [point.step for point in drift_over_time] == list(range(len(drift_over_time))) and drift_over_time[-1].value == 1.0
    assert checks[0].data.tags["mlflow.parentRunId"] == series["dlautoml-images v1"].info.run_id

    # The monitor flow without a file reads the serving endpoint's request log since its last check.
    model = load_deployable(root)
    train = Splits.load(root / "outputs" / "data_preparation" / "splits.npz").features["train"].astype(np.float32)
    request_log = RequestLog(root / "serving" / "requests.db")
    for row in train:
        outputs = model(torch.from_numpy(row[None])).detach().numpy()
        request_log.record("dlautoml-images", "1", row[None], outputs, [], latency_ms=3.0)
    request_log.close()
    window = monitor(workspace=".", params_file="params.yaml")
    assert window["inputs"] == len(train) and window["requests"] == len(train) and "skipped" not in window
    assert not window["embedding_drift"] and window["latency_p50_ms"] == 3.0
    assert monitor(workspace=".", params_file="params.yaml")["skipped"]

    # One request of 100,000 rows is tested as a sample of monitoring.max_window rows (the whole window
    # once asked the MMD test for 160 GB), and a window whose check fails does not fail the next check.
    request_log = RequestLog(root / "serving" / "requests.db")
    many = np.resize(train, (100_000, *train.shape[1:]))
    request_log.record(
        "dlautoml-images", "1", many, np.resize(model(torch.from_numpy(train)).detach().numpy(), (100_000, 3)), [], 9.0
    )
    request_log.close()
    large = monitor(workspace=".", params_file="params.yaml")
    assert large["inputs"] == 2000 and large["window_rows"] == 100_000 and large["requests"] == 1.0
    request_log = RequestLog(root / "serving" / "requests.db")
    for _ in range(30):
        request_log.record("dlautoml-images", "1", np.zeros((1, 5), np.float32), np.zeros((1, 3), np.float32), [], 1.0)
    request_log.close()
    with pytest.raises(DataError, match="inputs shaped"):
        monitor(workspace=".", params_file="params.yaml")
    assert monitor(workspace=".", params_file="params.yaml")["skipped"]


def test_sequence_pipeline_from_a_long_table(tmp_path: Path, monkeypatch, caplog, harness):
    """Sequences in long format: detected, searched by both sequence families in one search (blocks of
    dilated convolutions or GRUs, and MiniRocket's fixed kernels with a trained head), the chosen one
    exported with its standardisation (and the kernels), registered, and monitored from an .npz of new
    sequences. (The sequence family alone runs end to end in tests/reliability/test_kill_and_rerun.py.)"""
    from tests.components.test_sequences import sequences, write_long

    root = make_workspace(tmp_path / "workspace", "data/walks.csv")
    (root / "data").mkdir()
    features, labels = sequences(count=60, length=12)
    write_long(root / "data" / "walks.csv", features, labels)
    monkeypatch.chdir(root)

    summary = automl(workspace=".", params_file="params.yaml")
    assert "sequence" in summary
    task = yaml.safe_load((root / "outputs" / "task_formulation" / "manifest.json").read_text())
    assert task["modality"] == "sequence" and task["class_names"] == ["down", "up"]
    assert ModelManifest.read(root).families == ["sequence", "rocket"]
    race = next(line for line in caplog.text.splitlines() if "families on validation: " in line)
    assert "sequence " in race and "rocket " in race  # the log names each family's best
    training = TrainingManifest.read(root)
    if training.family == "rocket":
        assert training.architecture["features"] in (840, 2016, 4200)
    else:
        assert training.family == "sequence" and training.architecture["block1_op"] in ("conv3", "conv5", "gru")
    assert training.test_score >= 0.8
    preparation = yaml.safe_load((root / "outputs" / "data_preparation" / "manifest.json").read_text())
    assert preparation["input_shape"] == [12, 2] and preparation["augmentation"]["kind"] == "sequence"
    deployment = DeploymentManifest.read(root)
    assert deployment.metrics["parity_class_agreement"] == 1.0

    np.savez(tmp_path / "new.npz", X=features * 2 + 3)  # scaled and offset sensors: drift
    report = monitor(data_path=str(tmp_path / "new.npz"), workspace=".")
    assert report["inputs"] == 60 and report["drift"]


def test_text_pipeline(tmp_path: Path, monkeypatch, harness):
    """A table of reviews: detected as text, searched over CNN / GRU / transformer encoders, exported
    with its tokenised input, and served text in, class out."""
    from fastapi.testclient import TestClient

    from components.serving.app import ServingConfig, create_app
    from tests.components.test_text import write_reviews

    root = make_workspace(tmp_path / "workspace", "data/reviews.csv", target="sentiment")
    (root / "data").mkdir()
    write_reviews(root / "data" / "reviews.csv", count=120)
    monkeypatch.chdir(root)
    automl(workspace=".", params_file="params.yaml")
    training = TrainingManifest.read(root)
    assert training.family == "text" and training.architecture["block1_op"] in ("conv3", "gru", "attention")
    assert training.test_score >= 0.8
    deployment = DeploymentManifest.read(root)
    config = ServingConfig(model_name=deployment.registered_model, request_log=root / "serving" / "requests.db")
    with TestClient(create_app(config)) as client:
        answer = client.post("/predict", json={"texts": ["What a wonderful, superb film", "Awful and dreadful acting"]})
        assert answer.status_code == 200, answer.text
        assert [p["label"] for p in answer.json()["predictions"]] == ["positive", "negative"]
        assert client.post("/predict", json={"rows": [[1.0]]}).status_code == 400


def test_multimodal_pipeline(tmp_path: Path, monkeypatch, harness):
    """A table with numbers, a category and a comment: detected as multimodal, one encoder per
    modality with a fusion head, exported, registered and served from JSON rows."""
    from fastapi.testclient import TestClient

    from components.serving.app import ServingConfig, create_app
    from tests.components.test_multimodal import write_tickets

    root = make_workspace(tmp_path / "workspace", "data/tickets.csv", target="outcome")
    (root / "data").mkdir()
    write_tickets(root / "data" / "tickets.csv", count=120)
    monkeypatch.chdir(root)
    automl(workspace=".", params_file="params.yaml")
    task = yaml.safe_load((root / "outputs" / "task_formulation" / "manifest.json").read_text())
    assert task["modality"] == "multimodal"
    training = TrainingManifest.read(root)
    assert training.family == "fusion" and training.test_score >= 0.8
    config = ServingConfig(
        model_name=DeploymentManifest.read(root).registered_model, request_log=root / "serving" / "requests.db"
    )
    with TestClient(create_app(config)) as client:
        rows = [
            {"price": 50.0, "channel": "web", "comment": "the story was wonderful and superb"},
            {"price": 50.0, "channel": "kiosk", "comment": "the acting was awful and dreadful"},
        ]
        answer = client.post("/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text
        assert [p["label"] for p in answer.json()["predictions"]] == ["kept", "churned"]


def test_image_table_pipeline(tmp_path: Path, monkeypatch, harness):
    """A folder whose table lists scans next to a dose and a site: detected as multimodal, a CNN and
    an MLP joined by a fusion head, exported, registered and served from rows with base64 images.
    The label needs both parts (either alone is right 3 times in 4), so the test score shows both are read."""
    from fastapi.testclient import TestClient

    from components.serving.app import ServingConfig, create_app
    from tests.components.test_image_tables import png_base64, scan, write_scans

    root = make_workspace(tmp_path / "workspace", "data/clinic", target="outcome")
    write_scans(root / "data" / "clinic", count=160)
    monkeypatch.chdir(root)
    automl(workspace=".", params_file="params.yaml")
    task = yaml.safe_load((root / "outputs" / "task_formulation" / "manifest.json").read_text())
    assert task["modality"] == "multimodal"
    training = TrainingManifest.read(root)
    assert training.family == "image_fusion" and training.test_score >= 0.85, training.test_score
    quality = (root / "outputs" / "data_preparation" / "quality.html").read_text()
    assert "images of column &#x27;scan&#x27; (1x8x8)" in quality or "images of column 'scan' (1x8x8)" in quality
    config = ServingConfig(
        model_name=DeploymentManifest.read(root).registered_model, request_log=root / "serving" / "requests.db"
    )
    rng = np.random.default_rng(5)
    rows = [
        {"dose": 2.0, "site": "north", "scan": png_base64(scan(-1, rng))},  # a large dose decides
        {"dose": -0.5, "site": "south", "scan": png_base64(scan(1, rng))},  # a small one defers to the image
        {"dose": -0.5, "site": "south", "scan": png_base64(scan(-1, rng))},
    ]
    with TestClient(create_app(config)) as client:
        answer = client.post("/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text
        assert [p["label"] for p in answer.json()["predictions"]] == ["ill", "ill", "well"]
        assert client.post("/predict", json={"rows": [{"dose": 1.0, "site": "north"}]}).status_code == 400
