import time

import pytest
import torch

from components.models.families import build_network
from components.training.fit import fit_network
from components.training.schedule import BudgetSchedule
from tests.components.test_training import ARCHITECTURE, separable


def test_warm_up_then_decay_to_zero_at_the_last_step():
    schedule = BudgetSchedule(total_steps=100)
    factors = [schedule(step) for step in range(101)]
    assert factors[0] < 0.5 and factors[4] == pytest.approx(1.0, abs=0.01)  # 5 warm-up steps
    assert all(later <= earlier + 1e-12 for earlier, later in zip(factors[5:], factors[6:]))
    assert factors[50] == pytest.approx(0.5, abs=0.03)
    assert factors[100] == pytest.approx(0.0, abs=1e-9)


def test_the_clock_ends_the_schedule_before_the_steps_do():
    schedule = BudgetSchedule(total_steps=1000, seconds=10.0, started=time.time() - 9.0)
    assert schedule.progress(100) == pytest.approx(0.9, abs=0.02)  # time, not the 10% of the steps
    assert schedule(100) < 0.05
    assert BudgetSchedule(total_steps=1000, seconds=10.0, started=time.time() - 20.0)(100) == pytest.approx(0.0, abs=1e-9)


def test_constant_keeps_the_rate():
    assert BudgetSchedule(total_steps=10, kind="constant")(9) == 1.0


def test_training_ends_on_a_near_zero_learning_rate():
    train, validation = separable(128, 0), separable(64, 1)
    rates = {}
    for kind in ("budget_cosine", "constant"):
        fitted = fit_network(
            build_network("mlp", [4], 2, ARCHITECTURE),
            "classification",
            train,
            validation,
            {"learning_rate": 1e-2},
            max_epochs=4,
            batch_size=32,
            seed=0,
            schedule=kind,
        )
        rates[kind] = fitted.final_learning_rate
    assert rates["constant"] == pytest.approx(1e-2)
    assert rates["budget_cosine"] < 1e-2 * 0.05


def test_trained_weights_that_no_epoch_beats_are_kept():
    train, validation = separable(256, 0), separable(128, 1)
    network = build_network("mlp", [4], 2, ARCHITECTURE)
    first = fit_network(
        network, "classification", train, validation, {"learning_rate": 1e-2}, max_epochs=8, batch_size=32, seed=0
    )
    trained = {key: value.clone() for key, value in first.network.state_dict().items()}
    # A learning rate far too high for going on: every epoch ends worse than where it started.
    again = fit_network(
        first.network,
        "classification",
        train,
        validation,
        {"learning_rate": 50.0},
        max_epochs=2,
        batch_size=32,
        seed=0,
        keep_best=True,
        starting_weights_compete=True,
    )
    assert again.kept_starting_weights
    assert all(torch.equal(trained[key], value) for key, value in again.network.state_dict().items())
    gentle = fit_network(
        build_network("mlp", [4], 2, ARCHITECTURE),
        "classification",
        train,
        validation,
        {"learning_rate": 1e-2},
        max_epochs=3,
        batch_size=32,
        seed=0,
        keep_best=True,
        starting_weights_compete=True,
    )
    assert not gentle.kept_starting_weights  # untrained weights lose to the first epoch
