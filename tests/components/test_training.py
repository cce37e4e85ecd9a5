import numpy as np
import pytest
import torch

from components.models.families import build_network
from components.training.fit import evaluation_metrics, fit_network, predict

ARCHITECTURE = {"depth": 1, "width": 32, "activation": "relu", "dropout": 0.0}


def separable(rows: int, seed: int):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4)).astype(np.float32)
    return features, (features[:, 0] - features[:, 2] > 0).astype(np.int64)


def test_fit_learns_a_separable_problem():
    train, validation = separable(300, 0), separable(100, 1)
    result = fit_network(
        build_network("mlp", [4], 2, ARCHITECTURE),
        "classification",
        train,
        validation,
        {"learning_rate": 1e-2},
        max_epochs=10,
        batch_size=32,
        seed=0,
    )
    assert len(result.history) == 10
    assert result.best_score > 0.9
    assert evaluation_metrics("classification", predict(result.network, validation[0]), validation[1])["accuracy"] > 0.9


def test_early_stopping_stops_when_validation_stops_improving():
    train, validation = separable(100, 0), separable(50, 1)
    result = fit_network(
        build_network("mlp", [4], 2, ARCHITECTURE),
        "classification",
        train,
        validation,
        {"learning_rate": 0.0},
        max_epochs=50,
        batch_size=32,
        seed=0,
        patience=2,
    )
    assert result.stopped_early
    assert len(result.history) == 3


def test_same_seed_same_result():
    train, validation = separable(100, 0), separable(50, 1)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        network = build_network("mlp", [4], 2, ARCHITECTURE)
        runs.append(
            fit_network(
                network, "classification", train, validation, {"learning_rate": 1e-2}, max_epochs=3, batch_size=16, seed=7
            ).history
        )
    assert runs[0] == runs[1]


def test_regression_metrics():
    metrics = evaluation_metrics("regression", np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 4.0]))
    assert metrics["mae"] == pytest.approx(1 / 3)
    assert metrics["rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert metrics["r2"] < 1


def test_the_weighted_sampler_raises_the_recall_of_a_rare_class():
    """Two overlapping classes, 9 to 1: unweighted training mostly answers the common class; a
    sampler that draws both equally often moves the boundary towards the middle."""
    from components.training.losses import class_weights

    def overlapping(seed: int):
        rng = np.random.default_rng(seed)
        targets = np.array([0] * 900 + [1] * 100)
        features = rng.normal(size=(1000, 4)).astype(np.float32)
        features[:, 0] += 1.5 * targets
        return features, targets

    train, validation = overlapping(0), overlapping(1)
    recalls = {}
    for balancing in ("loss", "sampler"):
        torch.manual_seed(0)
        result = fit_network(
            build_network("mlp", [4], 2, ARCHITECTURE),
            "classification",
            train,
            validation,
            {"learning_rate": 1e-2},
            max_epochs=8,
            batch_size=64,
            seed=0,
            loss="cross_entropy",
            class_weights=class_weights(train[1], 2) if balancing == "sampler" else None,
            balancing=balancing,
        )
        predicted = predict(result.network, validation[0]).argmax(axis=1)
        recalls[balancing] = float((predicted[validation[1] == 1] == 1).mean())
    assert recalls["sampler"] > recalls["loss"] + 0.2, recalls
