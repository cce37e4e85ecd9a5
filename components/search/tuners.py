"""Tuners run by NNI's dispatcher process (configured by class name in the experiment).

Each takes ``warm_start``: configurations (usually the previous search's best) that are proposed
before anything else, so a retraining starts from what worked and the tuner learns from their
scores like from any other trial.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from nni.algorithms.hpo.evolution_tuner import EvolutionTuner, json2space
from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.algorithms.hpo.tpe_tuner import TpeTuner
from nni.common.hpo_utils import format_parameters


def compatible_configurations(configurations: list[dict[str, Any]], space: dict[str, Any]) -> list[dict[str, Any]]:
    """The configurations that are points of ``space``: same keys, choices among the choices, numbers
    within the ranges. A configuration of another search space (another family) cannot warm-start."""
    kept = []
    for configuration in configurations:
        if set(configuration) != set(space):
            continue
        point = {}
        for key, spec in space.items():
            value, kind, values = configuration[key], spec["_type"], spec["_value"]
            if kind == "choice":
                matches = [choice for choice in values if choice == value]
                if not matches:
                    break
                point[key] = matches[0]
            elif kind in ("uniform", "loguniform", "quniform", "qloguniform"):
                if not (isinstance(value, (int, float)) and min(values[:2]) <= value <= max(values[:2])):
                    break
                point[key] = float(value)
            elif kind == "randint":
                if not (isinstance(value, (int, float)) and values[0] <= value < values[1]):
                    break
                point[key] = int(value)
            else:
                break
        else:
            if point not in kept:
                kept.append(point)
    return kept


class OrderTolerantTpeTuner(TpeTuner):
    """NNI's TPE tuner, tolerant of a trial's final result arriving after its end event, with a warm start.

    NNI 3.0's ``TpeTuner.trial_end`` forgets the trial's configuration; when the local training
    service reports a trial's end before its final metric (seen with two concurrent trials), the
    dispatcher raises ``KeyError`` in ``receive_trial_result``, dies, and the search stalls until its
    time budget runs out. Here a successful trial's configuration is kept until its result arrives.
    """

    def __init__(self, *args, warm_start: list[dict[str, Any]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.warm_start = list(warm_start or [])

    def generate_parameters(self, parameter_id, **kwargs):
        if self.warm_start:
            configuration = self.warm_start.pop(0)
            self._running_params[parameter_id] = format_parameters(configuration, self.space)
            self.dedup.add_history(self._running_params[parameter_id])
            return configuration
        return super().generate_parameters(parameter_id, **kwargs)

    def trial_end(self, parameter_id, success, **kwargs):
        if not success:
            super().trial_end(parameter_id, success, **kwargs)


class WarmRandomTuner(RandomTuner):
    """NNI's random search, after the warm-start configurations."""

    def __init__(self, *args, warm_start: list[dict[str, Any]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.warm_start = list(warm_start or [])

    def generate_parameters(self, *args, **kwargs):
        if self.warm_start:
            return self.warm_start.pop(0)
        return super().generate_parameters(*args, **kwargs)


class WarmEvolutionTuner(EvolutionTuner):
    """NNI's regularised evolution with a seed (the stock tuner draws from an unseeded generator) and
    the warm-start configurations as the first members of its initial population."""

    def __init__(self, *args, seed: int = 0, warm_start: list[dict[str, Any]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seed = seed
        self.warm_start = list(warm_start or [])

    def update_search_space(self, search_space):
        random.seed(self.seed)  # the tuner shuffles its population with the global generator
        self.searchspace_json = search_space
        self.space = json2space(search_space)
        self.random_state = np.random.RandomState(self.seed)
        self.population = []
        for _ in range(self.population_size):
            self._random_generate_individual()
        for position, configuration in enumerate(self.warm_start[: len(self.population)]):
            self.population[position].config = {
                key: (
                    {"_index": spec["_value"].index(configuration[key]), "_value": configuration[key]}
                    if spec["_type"] == "choice"
                    else configuration[key]
                )
                for key, spec in search_space.items()
            }
