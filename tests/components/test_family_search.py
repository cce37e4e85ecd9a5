"""A real NNI search over two sequence families at once (MiniRocket's fixed kernels with a trained
head, and a network from random weights) picks the family that scores better on validation, each way
round, on data built so that one family can read the signal and the other cannot."""

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from components.data.preparation import Preprocessor, Splits
from components.models.families import FAMILIES, architecture_of, joint_portfolio, joint_search_space, network_for
from components.search.nni_search import SearchRequest, run_search
from components.search.selection import family_scores, select_configuration
from tests.components.test_search import search_setup

PROJECT = Path(__file__).resolve().parents[2]
LENGTH, ROWS = 160, 200


def frequency_bursts(rng) -> tuple[np.ndarray, np.ndarray]:
    """The class is the period of a short sine burst (6 or 9 steps) at a random place; every sequence
    has its own level and scale. MiniRocket's kernels sum to zero (blind to the level) and its
    features count where a pattern occurs, not where: what a small network must first learn to ignore."""
    labels = rng.integers(0, 2, ROWS)
    steps = np.arange(LENGTH)
    features = rng.normal(0, 0.3, (ROWS, LENGTH))
    for row, label in enumerate(labels):
        start = rng.integers(0, LENGTH - 40)
        features[row, start : start + 40] += np.sin(2 * np.pi * steps[:40] / (6 if label == 0 else 9))
    features = features * rng.uniform(0.5, 2.0, (ROWS, 1)) + rng.normal(0, 4.0, (ROWS, 1))
    return features[..., None].astype(np.float32), labels


def level_differences(rng) -> tuple[np.ndarray, np.ndarray]:
    """Two channels; the class is which of them lies higher, under a level they share that varies far
    more, waves and noise. MiniRocket's kernels sum to zero: they see a level only through the zero
    padding at the ends, and there the shared level drowns the difference; a network that mixes the
    channels and averages over time reads it at once."""
    labels = rng.integers(0, 2, ROWS)
    difference = np.where(labels == 1, 1.0, -1.0) * rng.uniform(0.5, 1.5, ROWS)
    shared = rng.normal(0, 4.0, ROWS)
    steps = np.arange(LENGTH)
    channels = []
    for sign in (0.5, -0.5):
        waves = np.sin(2 * np.pi * steps / rng.uniform(5, 30, (ROWS, 1)) + rng.uniform(0, 6.3, (ROWS, 1)))
        channels.append((shared + sign * difference)[:, None] + 2 * waves + rng.normal(0, 1.0, (ROWS, LENGTH)))
    return np.stack(channels, axis=-1).astype(np.float32), labels


@pytest.mark.parametrize(("data", "expected"), [(frequency_bursts, "rocket"), (level_differences, "sequence")])
def test_the_search_picks_the_family_that_validates_better(tmp_path: Path, data, expected):
    features, labels = data(np.random.default_rng(0))
    channels = features.shape[-1]
    _, experiment_id, parent_run_id = search_setup(
        tmp_path, max_epochs=12, data=(features, labels, "sequence"), family="sequence", threads=1
    )
    splits, preprocessor = Splits.load(tmp_path / "splits.npz"), Preprocessor.load(tmp_path / "preprocessor.json")
    families = [FAMILIES["sequence"], FAMILIES["rocket"]]
    space = joint_search_space(families, [LENGTH, channels])
    # Each family's first default, as the training stage's first trials take them, and nothing else.
    first = joint_portfolio(families, space)[:2]
    search = run_search(
        SearchRequest(
            space, tmp_path / "settings.json", PROJECT, tmp_path / "nni", strategy="random", max_trials=2, max_minutes=3,
            concurrency=2, warm_start=first, progress=lambda line: None,
        )
    )  # fmt: skip
    scores = family_scores(search.trials, "sequence")
    assert set(scores) == {"rocket", "sequence"}, scores
    other = "sequence" if expected == "rocket" else "rocket"
    assert scores[expected][0] >= 0.9 and scores[other][0] <= scores[expected][0] - 0.15, scores

    def size_of(parameters):
        network = network_for(parameters, "sequence", [LENGTH, channels], 2, preprocessor)
        return sum(parameter.numel() for parameter in network.parameters())

    # The training stage's rule: the smallest network within one standard error of the best.
    selection = select_configuration(search.ranked(), len(splits.targets["validation"]), "classification", size_of)
    assert architecture_of(selection.trial.parameters, "sequence")[0] == expected
    # Each trial's MLflow run names the family it trained, with that family's parameters only.
    runs = MlflowClient().search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'")
    assert sorted(run.data.params["family"] for run in runs) == ["rocket", "sequence"]
    rocket_run = next(run for run in runs if run.data.params["family"] == "rocket")
    assert "features" in rocket_run.data.params and "block1_op" not in rocket_run.data.params
