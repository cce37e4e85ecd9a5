"""`dlautoml knowledge build` on a tiny corpus (a table and a sequence set, seconds each): real searches
of the first four stages, tracked on the project's server, which the meta-model of a later search then
reads; the corpus's writers give data the platform accepts."""

from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from components.config import load_params
from components.data.corpus import CORPUS, corpus_dataset
from components.data.validation import validate_dataset
from components.errors import UserInputError
from tests.conftest import PROJECT, TINY_PARAMS, run_cli


@pytest.mark.parametrize("name", [name for name in CORPUS if name != "mnist2000"])  # MNIST: a registry download
def test_every_corpus_dataset_is_data_the_platform_accepts(name: str, tmp_path: Path):
    dataset = corpus_dataset(name)
    data_path, target = dataset.write(tmp_path)
    params = load_params(PROJECT / "params.yaml")
    formulation = params.task_formulation.model_copy(update={"target": target, "modality": dataset.modality})
    validate_dataset(tmp_path / data_path, formulation, params.data_preparation)
    if dataset.modality == "sequence":
        with np.load(tmp_path / data_path) as arrays:
            assert arrays["X"].ndim == 3 and len(arrays["X"]) == len(arrays["y"]) >= 40


def test_an_unknown_corpus_dataset_is_named_with_the_choices():
    with pytest.raises(UserInputError, match="no dataset 'iris2' in the corpus: choose among iris, wine"):
        corpus_dataset("iris2")


def test_build_searches_each_dataset_into_the_projects_tracking_server(tmp_path: Path, monkeypatch):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # Two trials of three epochs end each search long before half a minute; the budget only bounds a loaded machine.
    code, errors = run_cli(tmp_path, monkeypatch, "knowledge", "build", "iris", "UnitTest", "--minutes", "0.5")
    assert code == 0, errors
    # Both workspaces hold the stages up to training, and nothing after it.
    for name in ("iris", "UnitTest"):
        outputs = tmp_path / ".dlautoml" / "corpus" / name / "outputs"
        assert (outputs / "training" / "model.pt").is_file() and not (outputs / "deployment").exists()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    from components.search.knowledge_files import knowledge_table, read_knowledge

    searches = {search["dataset"]: search for search in read_knowledge()}
    mlflow.set_tracking_uri(None)
    assert set(searches) == {"iris.csv", "UnitTest.npz"}
    assert searches["iris.csv"]["modality"] == "tabular" and searches["UnitTest.npz"]["modality"] == "sequence"
    assert all(search["trials"] and search["meta_features"]["samples"] > 0 for search in searches.values())
    assert searches["iris.csv"]["meta_features"]["samples"] == 150
    assert "UnitTest.npz" in knowledge_table(list(searches.values()))
    # A bad name fails before anything runs, with the choices.
    code, errors = run_cli(tmp_path, monkeypatch, "knowledge", "build", "iris2")
    assert code == 2 and "no dataset 'iris2' in the corpus" in errors
