"""A real two-trial NNI search: trials run as processes under NNI's manager and log to MLflow."""

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from components.data.preparation import Preprocessor, split_dataset
from components.models.mlp import SEARCH_SPACE
from components.search.nni_search import SearchRequest, run_search
from components.search.settings import TrialSettings
from components.tracking import configure_tracking


def test_two_trial_search_trains_reports_and_logs(tmp_path: Path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(150, 4)).astype(np.float32)
    targets = (features[:, 0] > 0).astype(np.int64)
    splits = split_dataset(features, targets, [str(i) for i in range(150)], "classification", 0.2, 0.2, 0)
    splits.save(tmp_path / "splits.npz")
    Preprocessor.fit(splits.features["train"], "tabular").save(tmp_path / "preprocessor.json")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = configure_tracking(uri, "search-test", tmp_path / "artifacts")
    parent = MlflowClient().create_run(experiment_id, run_name="training")
    settings = TrialSettings(
        splits_file=str(tmp_path / "splits.npz"),
        preprocessor_file=str(tmp_path / "preprocessor.json"),
        family="mlp",
        task_type="classification",
        input_shape=[4],
        output_size=2,
        max_epochs=3,
        batch_size=32,
        seed=0,
        tracking_uri=uri,
        experiment_id=experiment_id,
        parent_run_id=parent.info.run_id,
    )
    settings.save(tmp_path / "settings.json")
    messages: list[str] = []
    previous_best = {"depth": 1, "width": 64, "activation": "gelu", "dropout": 0.1, "learning_rate": 0.01, "weight_decay": 0.0}
    result = run_search(
        SearchRequest(
            SEARCH_SPACE,
            tmp_path / "settings.json",
            Path(__file__).resolve().parents[2],
            tmp_path / "nni",
            strategy="random",
            max_trials=2,
            max_minutes=3,
            concurrency=2,
            warm_start=[previous_best],
            progress=messages.append,
        )
    )
    assert [trial.status for trial in result.trials] == ["SUCCEEDED", "SUCCEEDED"]
    assert result.trials[0].parameters == previous_best  # the warm start is the first trial
    assert result.trials[1].parameters != previous_best
    assert all(0.0 <= trial.score <= 1.0 for trial in result.trials)
    assert result.best.score == max(trial.score for trial in result.trials)
    assert set(result.best.parameters) == set(SEARCH_SPACE)
    assert any("web UI at http://127.0.0.1:" in message for message in messages)
    mlflow.set_tracking_uri(uri)
    children = mlflow.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 2
    assert children["metrics.val_score"].notna().all()


def test_tpe_tuner_accepts_a_result_that_arrives_after_the_trial_ended():
    from nni.algorithms.hpo.tpe_tuner import TpeTuner

    from components.search.tuners import OrderTolerantTpeTuner

    for tuner_class, survives in ((TpeTuner, False), (OrderTolerantTpeTuner, True)):
        tuner = tuner_class(optimize_mode="maximize", seed=0)
        tuner.update_search_space(SEARCH_SPACE)
        parameters = tuner.generate_parameters(0)
        tuner.trial_end(0, True)
        if survives:
            tuner.receive_trial_result(0, parameters, 0.5)
            assert tuner._history and not tuner._running_params
        else:
            with pytest.raises(KeyError):
                tuner.receive_trial_result(0, parameters, 0.5)
