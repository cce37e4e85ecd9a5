from pathlib import Path

import pytest

from components.config import load_params
from components.errors import ConfigurationError

PROJECT = Path(__file__).resolve().parents[2]


def test_project_params_parse():
    params = load_params(PROJECT / "params.yaml")
    assert params.task_formulation.data_path
    assert params.training.trial_concurrency >= 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("training:\n  max_trials: 0\n", "training.max_trials"),
        ("training:\n  strategy: grid\n", "training.strategy"),
        ("deployment:\n  unknown_key: 1\n", "deployment.unknown_key"),
        ("training: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_params_name_the_key(tmp_path: Path, text: str, message: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_params(path)


def test_missing_params_file(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="not found"):
        load_params(tmp_path / "params.yaml")


def test_relative_sqlite_store_is_made_absolute(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("DLAUTOML_TRACKING_URI", raising=False)
    tracking = load_params(PROJECT / "params.yaml").tracking
    assert tracking.uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("DLAUTOML_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.uri(tmp_path) == "http://127.0.0.1:5000"


def test_mlflow_setting_its_own_variable_does_not_redirect_the_store(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("DLAUTOML_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/mlflow.db")
    assert load_params(PROJECT / "params.yaml").tracking.uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
