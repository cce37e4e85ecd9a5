"""The knowledge base and the meta-model on a tiny corpus of three tables: finished searches recorded
in an MLflow store as the training stage and its trials record them, read back by another workspace's
search, whose nearest dataset follows its meta-features."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from components.data.dataset import RawDataset
from components.data.meta_features import meta_features
from components.models.mlp import SEARCH_SPACE
from components.search.knowledge import CONFIGURATION_TAG, consult, nearest_datasets, portfolio, record_knowledge
from components.tracking import configure_tracking, log_finished_run

LINEAR = {"depth": 0, "width": 64, "activation": "relu", "dropout": 0.0, "learning_rate": 0.01, "weight_decay": 1e-3}
DEEP = {"depth": 3, "width": 256, "activation": "gelu", "dropout": 0.1, "learning_rate": 0.001, "weight_decay": 0.0}
WIDE = {"depth": 1, "width": 256, "activation": "silu", "dropout": 0.3, "learning_rate": 0.003, "weight_decay": 1e-4}


def _table(rows: int, seed: int, missing: float = 0.0, noisy: bool = False) -> tuple[RawDataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 6)).astype(np.float32)
    targets = (features[:, 0] + features[:, 1] > 0).astype(int)
    if noisy:
        targets = rng.integers(0, 2, rows)
    features[rng.random(features.shape) < missing] = np.nan
    names = [f"c{index}" for index in range(6)]
    return RawDataset("tabular", features, targets.astype(str), names, [str(i) for i in range(rows)]), targets


def _figures(rows: int, seed: int, **options) -> dict[str, float]:
    dataset, targets = _table(rows, seed, **options)
    return meta_features(dataset, targets, "classification")


def _record_search(
    experiment_id: str, dataset: str, figures: dict[str, float], scored: list[tuple[dict, float]], family: str = "mlp"
) -> str:
    """A training run whose search finished, with its trials as child runs (as the trials log them)."""
    with mlflow.start_run(experiment_id=experiment_id, run_name="training", tags={"data_version": f"md5:{dataset}"}) as run:
        for index, (configuration, score) in enumerate(scored):
            log_finished_run(
                experiment_id,
                run_name=f"trial-{index + 1}",
                parent_run_id=run.info.run_id,
                parameters={"family": family, **configuration},
                history=[{"val_score": score}],
                final_metrics={"best_val_score": score},
                tags={"dlautoml.trial": "true", CONFIGURATION_TAG: json.dumps(configuration)},
            )
        record_knowledge(figures, "tabular", "classification", family, dataset)
    return run.info.run_id


@pytest.fixture
def corpus(tmp_path: Path):
    """Three datasets in two workspaces' experiments on one tracking server: a small clean table, a
    large table with missing values, and a small table whose labels are noise."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    first = configure_tracking(uri, "workspace-one", tmp_path / "artifacts")
    _record_search(first, "small.csv", _figures(300, 0), [(LINEAR, 0.95), (DEEP, 0.90)])
    _record_search(first, "noise.csv", _figures(300, 1, noisy=True), [(WIDE, 0.55), (LINEAR, 0.52)])
    second = configure_tracking(uri, "workspace-two", tmp_path / "artifacts")
    _record_search(second, "large.csv", _figures(5000, 2, missing=0.2), [(DEEP, 0.97), (WIDE, 0.96), (LINEAR, 0.90)])
    yield uri
    mlflow.set_tracking_uri(None)


def test_the_nearest_dataset_follows_the_meta_features(corpus):
    near_large = nearest_datasets(_figures(4000, 3, missing=0.2), "tabular", "classification", "mlp", SEARCH_SPACE)
    near_small = nearest_datasets(_figures(250, 4), "tabular", "classification", "mlp", SEARCH_SPACE)
    near_noise = nearest_datasets(_figures(250, 5, noisy=True), "tabular", "classification", "mlp", SEARCH_SPACE)
    assert [n.dataset for n in near_large][0] == "large.csv" and near_large[0].configurations[0] == DEEP
    assert [n.dataset for n in near_small][0] == "small.csv" and near_small[0].configurations == [LINEAR, DEEP]
    assert [n.dataset for n in near_noise][0] == "noise.csv"
    assert near_large[0].distance < near_large[1].distance <= near_large[2].distance
    # Only searches of the same family on the same kind of task are knowledge for this one.
    assert nearest_datasets(_figures(250, 4), "tabular", "regression", "mlp", SEARCH_SPACE) == []


def test_single_family_and_joint_searches_learn_from_each_other(tmp_path: Path):
    """A joint search's trials of a family are knowledge for a search of that family alone, and a
    single family's trials for a joint search that has it; another family's trials are not."""
    from components.models.joint_space import embed, joint_space

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = configure_tracking(f"sqlite:///{tmp_path}/mlflow.db", "workspace", tmp_path / "artifacts")
    other = {"strength": {"_type": "choice", "_value": [0.1, 1.0]}}
    joint = joint_space({"mlp": SEARCH_SPACE, "other": other})
    _record_search(
        experiment,
        "joint.csv",
        _figures(300, 0),
        [(embed("other", {"strength": 1.0}, joint), 0.97), (embed("mlp", DEEP, joint), 0.95)],
        family="mlp+other",
    )
    alone = nearest_datasets(_figures(300, 0), "tabular", "classification", "mlp", SEARCH_SPACE)
    assert [(n.dataset, n.configurations) for n in alone] == [("joint.csv", [DEEP])]
    _record_search(experiment, "single.csv", _figures(5000, 2, missing=0.2), [(LINEAR, 0.9)])
    together = nearest_datasets(_figures(5000, 2, missing=0.2), "tabular", "classification", "other+mlp", joint)
    assert [(n.dataset, n.configurations) for n in together] == [
        ("single.csv", [embed("mlp", LINEAR, joint)]),
        ("joint.csv", [embed("other", {"strength": 1.0}, joint), embed("mlp", DEEP, joint)]),
    ]
    assert nearest_datasets(_figures(300, 0), "tabular", "classification", "cnn", SEARCH_SPACE) == []
    mlflow.set_tracking_uri(None)


def test_the_portfolio_takes_each_nearest_datasets_best_in_turn_and_can_be_turned_off(corpus):
    learned, neighbours, line = consult(
        "nearest", _figures(4000, 3, missing=0.2), "tabular", "classification", "mlp", SEARCH_SPACE, 3
    )
    assert learned == [DEEP, LINEAR, WIDE] == portfolio(neighbours, 3)
    assert line.startswith("meta-model: the nearest datasets by meta-features are large.csv (distance ")
    assert consult("off", _figures(4000, 3), "tabular", "classification", "mlp", SEARCH_SPACE, 3)[0] == []


def test_the_static_portfolio_is_the_same_whatever_the_new_dataset(corpus):
    """static: the base's most central datasets (by mean distance to the others), not the nearest ones."""
    like_large, like_small = _figures(4000, 3, missing=0.2), _figures(250, 4)
    static_large, central, line = consult("static", like_large, "tabular", "classification", "mlp", SEARCH_SPACE, 3)
    assert static_large == consult("static", like_small, "tabular", "classification", "mlp", SEARCH_SPACE, 3)[0]
    assert "static portfolio" in line
    mean_distances = [neighbour.distance for neighbour in central]
    assert mean_distances == sorted(mean_distances) and len(central) == 3
    # The nearest choice differs between the two: the meta-features decide it.
    nearest_large = consult("nearest", like_large, "tabular", "classification", "mlp", SEARCH_SPACE, 3)[1]
    nearest_small = consult("nearest", like_small, "tabular", "classification", "mlp", SEARCH_SPACE, 3)[1]
    assert nearest_large[0].dataset != nearest_small[0].dataset


def test_an_empty_knowledge_base_leaves_the_search_as_it_was_and_one_dataset_gives_one_configuration(tmp_path: Path):
    experiment = configure_tracking(f"sqlite:///{tmp_path}/mlflow.db", "fresh", tmp_path / "artifacts")
    learned, neighbours, line = consult("nearest", _figures(300, 0), "tabular", "classification", "mlp", SEARCH_SPACE, 3)
    assert (learned, neighbours) == ([], []) and "holds no finished mlp search" in line
    # One dataset known: its best configuration only, so that the family's defaults keep their places.
    _record_search(experiment, "small.csv", _figures(300, 0), [(LINEAR, 0.95), (DEEP, 0.90)])
    learned, neighbours, _ = consult("nearest", _figures(300, 0), "tabular", "classification", "mlp", SEARCH_SPACE, 3)
    mlflow.set_tracking_uri(None)
    assert learned == [LINEAR] and neighbours[0].configurations == [LINEAR, DEEP]


def test_the_knowledge_base_moves_to_another_tracking_server_as_a_file(corpus, tmp_path: Path):
    from components.errors import UserInputError
    from components.search.knowledge_files import export_knowledge, import_knowledge, knowledge_table, read_knowledge

    assert export_knowledge(tmp_path / "knowledge.json") == 3
    table = knowledge_table(read_knowledge())
    assert "large.csv" in table and "0.9700" in table  # its best trial's validation score
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/other.db")
    assert nearest_datasets(_figures(250, 4), "tabular", "classification", "mlp", SEARCH_SPACE) == []
    assert import_knowledge(tmp_path / "knowledge.json", tmp_path / "other-artifacts") == (3, 0)
    assert import_knowledge(tmp_path / "knowledge.json", tmp_path / "other-artifacts") == (0, 3)  # nothing twice
    near = nearest_datasets(_figures(250, 4), "tabular", "classification", "mlp", SEARCH_SPACE)
    assert near[0].dataset == "small.csv" and near[0].configurations == [LINEAR, DEEP]
    (tmp_path / "wrong.json").write_text('{"runs": []}')
    with pytest.raises(UserInputError, match="not a knowledge file"):
        import_knowledge(tmp_path / "wrong.json")
