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

PROJECT = Path(__file__).resolve().parents[2]


def search_setup(
    tmp_path: Path,
    rows: int = 150,
    max_epochs: int = 3,
    data: tuple[np.ndarray, np.ndarray, str] | None = None,
    family: str = "mlp",
    **settings,
) -> tuple[str, str, str]:
    """Splits, preprocessing and trial settings (``settings`` override TrialSettings' fields) of
    ``data`` (features, labels, modality; by default a small table); returns (tracking URI,
    experiment, parent run)."""
    if data is None:
        features = np.random.default_rng(0).normal(size=(rows, 4)).astype(np.float32)
        data = (features, (features[:, 0] > 0).astype(np.int64), "tabular")
    features, targets, modality = data
    splits = split_dataset(features, targets, [str(i) for i in range(len(targets))], "classification", 0.2, 0.2, 0)
    splits.save(tmp_path / "splits.npz")
    Preprocessor.fit(splits.features["train"], modality).save(tmp_path / "preprocessor.json")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = configure_tracking(uri, "search-test", tmp_path / "artifacts")
    parent = MlflowClient().create_run(experiment_id, run_name="training")
    TrialSettings(
        **{
            "splits_file": str(tmp_path / "splits.npz"),
            "preprocessor_file": str(tmp_path / "preprocessor.json"),
            "family": family,
            "task_type": "classification",
            "input_shape": list(features.shape[1:]),
            "output_size": int(len(np.unique(targets))),
            "max_epochs": max_epochs,
            "batch_size": 32,
            "seed": 0,
            "tracking_uri": uri,
            "experiment_id": experiment_id,
            "parent_run_id": parent.info.run_id,
            **settings,
        }
    ).save(tmp_path / "settings.json")
    return uri, experiment_id, parent.info.run_id


def request(tmp_path: Path, working_folder_name: str = "nni", **options) -> SearchRequest:
    return SearchRequest(
        SEARCH_SPACE, tmp_path / "settings.json", PROJECT, tmp_path / working_folder_name, max_minutes=3, **options
    )


GOOD = {"depth": 1, "width": 64, "activation": "gelu", "dropout": 0.1, "learning_rate": 0.01, "weight_decay": 0.0}
SLOW = {"depth": 1, "width": 64, "activation": "relu", "dropout": 0.3, "learning_rate": 0.0003, "weight_decay": 0.0}


def test_two_trial_search_trains_reports_and_logs(tmp_path: Path):
    uri, experiment_id, parent_run_id = search_setup(tmp_path)
    messages: list[str] = []
    previous_best = GOOD
    result = run_search(
        request(tmp_path, strategy="random", max_trials=2, concurrency=2, warm_start=[GOOD], progress=messages.append)
    )
    assert [trial.status for trial in result.trials] == ["SUCCEEDED", "SUCCEEDED"]
    # The warm start is one of the two first trials (which process NNI hands it to is a race).
    assert sorted(trial.parameters == previous_best for trial in result.trials) == [False, True]
    assert all(0.0 <= trial.score <= 1.0 for trial in result.trials)
    assert result.best.score == max(trial.score for trial in result.trials)
    assert set(result.best.parameters) == set(SEARCH_SPACE)
    assert any("web UI at http://127.0.0.1:" in message for message in messages)
    mlflow.set_tracking_uri(uri)
    children = mlflow.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    assert len(children) == 2
    assert children["metrics.val_score"].notna().all()
    # Numbered as the log numbers them; the search's score for each trial under its own name; the
    # run's real duration (it is written after the fact).
    assert sorted(children["tags.mlflow.runName"]) == ["trial-1", "trial-2"]
    scores = {trial.trial_id: trial.score for trial in result.trials}
    for _, row in children.iterrows():
        assert row["metrics.best_val_score"] == pytest.approx(scores[row["tags.nni.trial_id"]])
        assert (row["end_time"] - row["start_time"]).total_seconds() > 1.0
    # Each record holds the configuration its trial trained (NNI 3.0's own record may hold the other's).
    logged = {row["tags.nni.trial_id"]: row for _, row in children.iterrows()}
    for trial in result.trials:
        assert {key: logged[trial.trial_id][f"params.{key}"] for key in SEARCH_SPACE} == {
            key: str(value) for key, value in trial.parameters.items()
        }


def test_a_trial_record_holds_the_configuration_the_trial_wrote(tmp_path: Path):
    from types import SimpleNamespace

    from components.search.records import PARAMETERS_FILE, read_records

    folder = tmp_path / "environments" / "local-env" / "trials" / "abc"
    folder.mkdir(parents=True)
    (folder / PARAMETERS_FILE).write_text('{"width": 8}')
    job = SimpleNamespace(
        trialJobId="abc",
        sequenceId=0,
        status="SUCCEEDED",
        hyperParameters=[SimpleNamespace(parameters={"width": 256})],  # the manager's record: another trial's
        finalMetricData=[SimpleNamespace(data='{"default": 0.9, "parameters": 80}')],
        startTime=1000,
        endTime=3000,
    )
    experiment = SimpleNamespace(list_trial_jobs=lambda: [job])
    assert read_records(experiment, experiment_folder=tmp_path)[0].parameters == {"width": 8}
    assert read_records(experiment)[0].parameters == {"width": 256}  # without the folder: the manager's record
    # A remote trial's folder is on its machine: the configuration it reported with its result counts.
    job.finalMetricData = [SimpleNamespace(data='{"default": 0.9, "trained_parameters": {"width": 16}}')]
    assert read_records(experiment, experiment_folder=tmp_path / "elsewhere")[0].parameters == {"width": 16}


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
            stopped = tuner.generate_parameters(1)
            tuner.trial_end(1, False)  # the assessor stopped it as its final result was on its way
            tuner.receive_trial_result(1, stopped, 0.4)
            assert not tuner._running_params
        else:
            with pytest.raises(KeyError):
                tuner.receive_trial_result(0, parameters, 0.5)


def test_the_assessor_stops_a_trial_that_learns_slower_than_the_finished_ones(tmp_path: Path):
    search_setup(tmp_path, max_epochs=8)
    messages: list[str] = []
    result = run_search(
        request(
            tmp_path,
            strategy="random",
            max_trials=2,
            concurrency=1,
            warm_start=[GOOD, SLOW],
            early_stopping_start=2,
            progress=messages.append,
        )
    )
    assert [trial.status for trial in result.trials] == ["SUCCEEDED", "EARLY_STOPPED"]
    assert len(result.trials[0].intermediate) == 8 and 2 <= len(result.trials[1].intermediate) < 8
    assert result.best.parameters == GOOD
    assert any("stopped 1 of 2 trial(s) early" in message for message in messages)


def test_a_killed_search_resumes_without_training_its_finished_trials_again(tmp_path: Path):
    import json
    import signal
    import subprocess
    import sys
    import time

    import psutil

    from components.search.records import JOURNAL_FILE

    search_setup(tmp_path, max_epochs=4)
    script = f"""
import sys; sys.path.insert(0, {str(PROJECT)!r})
from pathlib import Path
from components.models.mlp import SEARCH_SPACE
from components.search.nni_search import SearchRequest, run_search
run_search(SearchRequest(SEARCH_SPACE, Path({str(tmp_path / "settings.json")!r}), Path({str(PROJECT)!r}), Path({str(tmp_path / "nni")!r}),
    strategy="tpe", max_trials=3, max_minutes=3, concurrency=1, fingerprint="same search"))
"""
    first = subprocess.Popen([sys.executable, "-c", script])
    journal = tmp_path / "nni" / JOURNAL_FILE
    deadline = time.time() + 180
    while time.time() < deadline and not (journal.is_file() and json.loads(journal.read_text())["trials"]):
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    state = json.loads(journal.read_text())
    assert not state["complete"] and 1 <= len(state["trials"]) < 3
    finished = {trial["trial_id"]: trial["parameters"] for trial in state["trials"]}

    messages: list[str] = []
    result = run_search(
        request(tmp_path, strategy="tpe", max_trials=3, concurrency=1, fingerprint="same search", progress=messages.append)
    )
    assert len(result.trials) == 3 and result.resumed == len(finished)
    assert {trial.trial_id: trial.parameters for trial in result.trials[: result.resumed]} == finished
    assert [trial.sequence for trial in result.trials] == [0, 1, 2]
    assert any(f"{len(finished)} finished trial(s) kept" in message for message in messages)
    assert not psutil.pid_exists(state["manager_pid"]) or psutil.Process(state["manager_pid"]).status() == psutil.STATUS_ZOMBIE
    assert json.loads(journal.read_text())["complete"]
    # A finished search asked for again (its run was killed in the final training) is reused whole;
    # asked for more trials, it goes on from its trials.
    again = run_search(request(tmp_path, strategy="tpe", max_trials=3, concurrency=1, fingerprint="same search"))
    assert again.resumed == 3 and [trial.trial_id for trial in again.trials] == [trial.trial_id for trial in result.trials]
    more = run_search(request(tmp_path, strategy="tpe", max_trials=4, concurrency=1, fingerprint="same search"))
    assert more.resumed == 3 and len(more.trials) == 4
    # A finished search none of whose trials scored (its budget was too short) is searched again:
    # reused, it would fail again however the budget was raised. (Asked with its deadline already
    # past, the new search starts no trial.)
    state = json.loads(journal.read_text())
    journal.write_text(json.dumps({**state, "trials": [{**trial, "score": None} for trial in state["trials"]]}))
    messages.clear()
    fresh = run_search(
        request(
            tmp_path,
            strategy="tpe",
            max_trials=4,
            concurrency=1,
            fingerprint="same search",
            progress=messages.append,
            deadline=time.time() - 1,
        )
    )
    assert fresh.resumed == 0 and fresh.trials == []
    assert any("without a scored trial" in message for message in messages)


def test_same_seed_same_data_same_search_on_cpu(tmp_path: Path):
    """With one trial at a time the whole search repeats: the tuner's proposals and every trial's
    training are seeded (several concurrent trials may report in another order, which changes what
    TPE or evolution propose next)."""
    search_setup(tmp_path)
    runs = [
        run_search(request(tmp_path, strategy="tpe", max_trials=2, concurrency=1, working_folder_name=f"nni-{attempt}"))
        for attempt in range(2)
    ]
    assert [trial.parameters for trial in runs[0].trials] == [trial.parameters for trial in runs[1].trials]
    assert [trial.score for trial in runs[0].trials] == [trial.score for trial in runs[1].trials]
    assert [trial.intermediate for trial in runs[0].trials] == [trial.intermediate for trial in runs[1].trials]


def test_one_standard_error_rule_prefers_the_smaller_of_nearly_equal_trials():
    from components.search.records import TrialRecord
    from components.search.selection import score_standard_error, select_configuration

    trials = [
        TrialRecord("a", 0, "SUCCEEDED", {"width": 256}, 0.66, 1.0),
        TrialRecord("b", 1, "SUCCEEDED", {"width": 8}, 0.62, 1.0),  # within (1 - 0.66) * sqrt(2 / 67) = 0.059
        TrialRecord("c", 2, "SUCCEEDED", {"width": 4}, 0.55, 1.0),  # too far below
    ]
    chosen = select_configuration(trials, 67, "regression", lambda parameters: parameters["width"])
    assert chosen.trial.trial_id == "b" and chosen.pool == 2 and abs(chosen.standard_error - 0.0587) < 1e-3
    assert select_configuration(trials, 67, "regression", lambda p: p["width"], rule="best").trial.trial_id == "a"
    assert score_standard_error(1.0, 270, "classification") == (1 / 270 / 270) ** 0.5  # at least one error's worth


def test_one_validation_error_less_than_the_best_is_within_one_standard_error_in_single_precision():
    import numpy as np

    from components.search.records import TrialRecord
    from components.search.selection import select_configuration

    # 85 and 84 right of 86, as a network's float32 accuracy reports them: one error apart is one
    # standard error apart, and the smaller network must stay in the pool.
    trials = [
        TrialRecord("deep", 0, "SUCCEEDED", {"width": 256}, float(np.float32(85 / 86)), 1.0),
        TrialRecord("linear", 1, "SUCCEEDED", {"width": 1}, float(np.float32(84 / 86)), 1.0),
    ]
    chosen = select_configuration(trials, 86, "classification", lambda parameters: parameters["width"])
    assert chosen.trial.trial_id == "linear" and chosen.pool == 2


def test_first_trials_are_the_previous_best_then_the_family_portfolio_within_half_the_trials(tmp_path: Path):
    from components.manifests import TrainingManifest
    from components.models.mlp import PORTFOLIO, SEARCH_SPACE
    from components.search.history import first_trials

    fresh, line = first_trials(tmp_path, SEARCH_SPACE, PORTFOLIO, warm_start=3, max_trials=8)
    assert fresh == list(PORTFOLIO) and line == "2 of the family's default configuration(s) are the first trials"
    assert first_trials(tmp_path, SEARCH_SPACE, PORTFOLIO, warm_start=3, max_trials=2)[0] == [PORTFOLIO[0]]
    assert first_trials(tmp_path, SEARCH_SPACE, (), warm_start=3, max_trials=8) == ([], "")
    previous = {**GOOD, "depth": 3}
    written = TrainingManifest(
        family="mlp",
        architecture={},
        hyperparameters={},
        best_trial="t",
        trial_count=1,
        nni_experiment_id="e",
        test_metric="accuracy",
        test_score=0.9,
        top_configurations=[previous, PORTFOLIO[1]],
        warm_started=0,
    )
    folder = tmp_path / "outputs" / "training"
    folder.mkdir(parents=True)
    written.write(folder)
    chosen, line = first_trials(tmp_path, SEARCH_SPACE, PORTFOLIO, warm_start=3, max_trials=8)
    # The previous search's best come first; a default it already holds is not repeated.
    assert chosen == [previous, PORTFOLIO[1], PORTFOLIO[0]]
    assert line.startswith("the previous search's 2 best configuration(s) and 1 of the family's default")
    # The nearest datasets' best (the meta-model's) come next, then the defaults, within half the trials.
    chosen, line = first_trials(tmp_path, SEARCH_SPACE, PORTFOLIO, 3, 8, learned=(previous, GOOD, SLOW))
    assert chosen == [previous, PORTFOLIO[1], GOOD, SLOW]
    assert "2 of the nearest datasets' best configuration(s)" in line and "default" not in line


def test_experiments_open_in_mlflows_model_training_view(tmp_path: Path):
    """MLflow 3 shows an experiment without the kind tag in its GenAI view; an existing experiment gets it too."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = configure_tracking(uri, "new", tmp_path / "artifacts")
    assert MlflowClient(uri).get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    older = MlflowClient(uri).create_experiment("older")
    configure_tracking(uri, "older", tmp_path / "artifacts")
    assert MlflowClient(uri).get_experiment(older).tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_search_without_a_score_says_whether_its_trials_failed_or_ran_out_of_time():
    from components.search.records import SearchResult, TrialRecord

    stopped = TrialRecord("a", 0, "USER_CANCELED", {}, None, 12.0, reached_deadline=True)
    failed = TrialRecord("b", 1, "FAILED", {}, None, 1.0)
    with pytest.raises(RuntimeError, match=r"before the search's deadline \(1 started, none failed\).*training.max_minutes"):
        _ = SearchResult("e1", "", [stopped]).best
    with pytest.raises(RuntimeError, match=r"\(1 failed\): see the trial logs under NNI experiment e2"):
        _ = SearchResult("e2", "", [stopped, failed]).best
