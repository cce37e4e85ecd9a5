"""Transfer from the platform's own registry: a second pipeline starts from the first one's registered
network (`training.init_from`), keeps its architecture, replaces its head, and records the lineage on
its run and on the version it registers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prefect.testing.utilities import prefect_test_harness

from components.errors import ConfigurationError
from components.manifests import TrainingManifest
from components.training.init_from import fetch_source
from flows.automl import automl
from tests.conftest import make_workspace

COLUMNS = [f"x{i}" for i in range(5)]


def write_table(path: Path, rows: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, len(COLUMNS)))
    scores = features @ rng.normal(size=(len(COLUMNS), classes))
    table = pd.DataFrame(features, columns=COLUMNS)
    table["label"] = [f"c{k}" for k in scores.argmax(axis=1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


def test_a_pipeline_starts_from_a_registered_network_with_a_new_head(tmp_path: Path, monkeypatch, caplog):
    root = make_workspace(tmp_path / "workspace", "data/first.csv", overrides={"training": {"ensemble": False}})
    write_table(root / "data" / "first.csv", 240, 3, seed=0)
    write_table(root / "data" / "second.csv", 240, 2, seed=1)
    monkeypatch.chdir(root)
    with prefect_test_harness(server_startup_timeout=120):
        automl(workspace=".", params_file="params.yaml")
        first = TrainingManifest.read(root)
        automl(workspace=".", params_file="params.yaml", data_path="data/second.csv", init_from="models:/dlautoml-first@champion")
    second = TrainingManifest.read(root)
    # The same family and architecture; the three-class head became a two-class one.
    assert (second.family, second.architecture) == (first.family, first.architecture)
    assert "tensors loaded, 2 new (the head); its architecture is kept" in caplog.text
    client = MlflowClient()
    source = client.get_model_version_by_alias("dlautoml-first", "champion")
    assert second.lineage == {
        "dlautoml.init_from": "models:/dlautoml-first@champion",
        "dlautoml.init_from_version": f"dlautoml-first/{source.version}",
        "dlautoml.init_from_run": source.run_id,
        "dlautoml.init_from_data_version": source.tags["data_version"],
    }
    registered = client.search_model_versions("name = 'dlautoml-second'")[0]
    assert registered.tags["dlautoml.init_from_version"] == f"dlautoml-first/{source.version}"
    assert registered.tags["dlautoml.init_from_data_version"] == source.tags["data_version"] != registered.tags["data_version"]
    training_runs = client.search_runs(
        [registered_run_experiment(client, registered)], "tags.`dlautoml.init_from` = 'models:/dlautoml-first@champion'"
    )
    assert {run.data.tags["mlflow.runName"] for run in training_runs} == {"training"}

    # A source that cannot be read by this data, or that does not exist, is a one-line error.
    with pytest.raises(ConfigurationError, match=r"reads tabular data of shape \[5\], but this data is tabular of shape \[4\]"):
        fetch_source("models:/dlautoml-first@champion", tmp_path / "elsewhere", "tabular", [4])
    with pytest.raises(ConfigurationError, match="no such registered model version"):
        fetch_source("models:/dlautoml-nothing/3", tmp_path / "elsewhere", "tabular", [5])


def registered_run_experiment(client, version) -> str:
    return client.get_run(version.run_id).info.experiment_id
