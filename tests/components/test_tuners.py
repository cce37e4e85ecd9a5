"""Warm starts: every strategy proposes the previous best configurations first, then its own; the
evolution strategy is seeded; configurations of another search space are not reused."""

import pytest

from components.models.families import FAMILIES
from components.models.mlp import SEARCH_SPACE
from components.search.tuners import (
    OrderTolerantTpeTuner,
    RegularisedEvolutionTuner,
    WarmRandomTuner,
    compatible_configurations,
)

PREVIOUS = {"depth": 2, "width": 128, "activation": "gelu", "dropout": 0.1, "learning_rate": 0.001, "weight_decay": 0.0}


def make(strategy: str, warm_start: list[dict]):
    if strategy == "tpe":
        tuner = OrderTolerantTpeTuner(optimize_mode="maximize", seed=0, warm_start=warm_start)
    elif strategy == "random":
        tuner = WarmRandomTuner(optimize_mode="maximize", seed=0, warm_start=warm_start)
    else:
        tuner = RegularisedEvolutionTuner(optimize_mode="maximize", population_size=4, seed=0, warm_start=warm_start)
    tuner.update_search_space(SEARCH_SPACE)
    return tuner


@pytest.mark.parametrize("strategy", ["tpe", "random", "evolution"])
def test_warm_start_comes_first_and_the_tuner_learns_from_it(strategy):
    tuner = make(strategy, [PREVIOUS])
    first = tuner.generate_parameters(0)
    assert first == PREVIOUS
    tuner.receive_trial_result(0, first, 0.9)
    second = tuner.generate_parameters(1)
    assert set(second) == set(SEARCH_SPACE) and second != PREVIOUS


@pytest.mark.parametrize("strategy", ["tpe", "random", "evolution"])
def test_same_seed_same_proposals(strategy):
    proposals = [[make(strategy, []).generate_parameters(0)] for _ in range(2)]
    assert proposals[0] == proposals[1]


def test_only_points_of_the_search_space_warm_start():
    other = {**PREVIOUS, "depth": 7}
    numbers_as_read_back = {**PREVIOUS, "width": 128.0}
    assert compatible_configurations([PREVIOUS, other, {"x": 1}, numbers_as_read_back], SEARCH_SPACE) == [PREVIOUS]
    assert compatible_configurations([PREVIOUS], FAMILIES["cnn"].search_space_for([1, 8, 8])) == []
    assert compatible_configurations([{**PREVIOUS, "learning_rate": 5.0}], SEARCH_SPACE) == []


def test_regularised_evolution_mutates_good_members_and_retires_the_oldest():
    tuner = RegularisedEvolutionTuner(population_size=3, sample_size=3, seed=0)
    tuner.update_search_space(SEARCH_SPACE)
    for parameter_id in range(3):
        configuration = tuner.generate_parameters(parameter_id)
        tuner.receive_trial_result(parameter_id, configuration, [0.1, 0.9, 0.2][parameter_id])
    best = tuner.population[1][0]
    child = tuner.generate_parameters(3)
    formatted = tuner.running[3]
    assert sum(formatted[key] != best[key] for key in best) <= 1  # one key of the best member mutated
    assert set(child) == set(SEARCH_SPACE)
    tuner.receive_trial_result(3, child, 0.5)
    assert len(tuner.population) == 3 and [reward for _, reward in tuner.population] == [0.9, 0.2, 0.5]
