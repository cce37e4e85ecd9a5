"""Tuners run by NNI's dispatcher process (configured by class name in the experiment).

Each takes ``warm_start``: configurations (usually the previous search's best) that are proposed
before anything else, so a retraining starts from what worked and the tuner learns from their
scores like from any other trial; and ``history``: the finished trials of an interrupted search
being resumed (``{"parameter": ..., "value": ...}``, NNI's import format), which the tuner learns
from without training them again.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from nni.algorithms.hpo.random_tuner import RandomTuner, suggest, suggest_parameter
from nni.algorithms.hpo.tpe_tuner import TpeTuner
from nni.common.hpo_utils import deformat_parameters, format_parameters, format_search_space
from nni.tuner import Tuner
from nni.utils import extract_scalar_reward


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
    time budget runs out. Here a successful trial's configuration is kept until its result arrives,
    and a result whose trial was already forgotten (stopped by the assessor as it finished) is
    recorded from the parameters the dispatcher hands over.
    """

    def __init__(
        self, *args, warm_start: list[dict[str, Any]] | None = None, history: list[dict] | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.warm_start = list(warm_start or [])
        self.history = list(history or [])

    def update_search_space(self, space):
        super().update_search_space(space)
        if self.history:
            self.import_data(self.history)

    def generate_parameters(self, parameter_id, **kwargs):
        if self.warm_start:
            configuration = self.warm_start.pop(0)
            self._running_params[parameter_id] = format_parameters(configuration, self.space)
            self.dedup.add_history(self._running_params[parameter_id])
            return configuration
        return super().generate_parameters(parameter_id, **kwargs)

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        # A trial the assessor stopped just as it reported its final result has already ended.
        if parameter_id not in self._running_params:
            self._running_params[parameter_id] = format_parameters(parameters, self.space)
        super().receive_trial_result(parameter_id, parameters, value, **kwargs)

    def trial_end(self, parameter_id, success, **kwargs):
        if not success:
            super().trial_end(parameter_id, success, **kwargs)


class WarmRandomTuner(RandomTuner):
    """NNI's random search, after the warm-start configurations (history teaches it nothing)."""

    def __init__(
        self, *args, warm_start: list[dict[str, Any]] | None = None, history: list[dict] | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.warm_start = list(warm_start or [])

    def generate_parameters(self, *args, **kwargs):
        if self.warm_start:
            return self.warm_start.pop(0)
        return super().generate_parameters(*args, **kwargs)


class RegularisedEvolutionTuner(Tuner):
    """Regularised (aging) evolution (Real et al., 2019) over an NNI hyper-parameter search space.

    NNI's own ``RegularizedEvolutionTuner`` reads only NAS ``layer_choice`` spaces and its
    ``Evolution`` tuner removes the worse of two individuals rather than the oldest; this one takes
    the platform's search spaces (choices and continuous ranges). The first ``population_size``
    trials are the warm start, then random points; after that each trial mutates one key of the
    best of ``sample_size`` random members of the population, and the oldest member dies when a new
    one joins, which keeps the search from settling on one lucky early score.
    """

    def __init__(
        self,
        optimize_mode: str = "maximize",
        population_size: int = 8,
        sample_size: int = 3,
        seed: int = 0,
        warm_start: list[dict[str, Any]] | None = None,
        history: list[dict] | None = None,
    ) -> None:
        super().__init__()
        self.history = list(history or [])
        self.maximize = optimize_mode == "maximize"
        self.population_size = population_size
        self.sample_size = sample_size
        self.rng = np.random.default_rng(seed)
        self.warm_start = list(warm_start or [])
        self.space: dict = {}
        self.initial: deque = deque()
        self.population: deque = deque()  # (formatted parameters, reward), oldest first
        self.running: dict[int, dict] = {}
        self.proposed = 0

    def update_search_space(self, search_space):
        self.space = format_search_space(search_space)
        self.initial = deque(self.warm_start)
        self.import_data(self.history)

    def generate_parameters(self, parameter_id, **kwargs):
        if self.initial:  # handed out as given: formatting round-trips numbers through logarithms
            configuration = self.initial.popleft()
            self.proposed += 1
            self.running[parameter_id] = format_parameters(configuration, self.space)
            return configuration
        if len(self.population) < self.population_size and self.proposed < self.population_size:
            parameters = suggest(self.rng, self.space)
        elif self.population:
            members = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
            parent = max((self.population[index] for index in members), key=lambda member: member[1])[0]
            parameters = dict(parent)
            key = list(self.space)[self.rng.integers(len(self.space))]
            parameters[key] = suggest_parameter(self.rng, self.space[key])
        else:  # every early trial is still running: explore meanwhile
            parameters = suggest(self.rng, self.space)
        self.proposed += 1
        self.running[parameter_id] = parameters
        return deformat_parameters(parameters, self.space)

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        formatted = self.running.pop(parameter_id, None) or format_parameters(parameters, self.space)
        reward = extract_scalar_reward(value)
        self.population.append((formatted, reward if self.maximize else -reward))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def trial_end(self, parameter_id, success, **kwargs):
        if not success:
            self.running.pop(parameter_id, None)

    def import_data(self, data):
        for trial in data:
            self.receive_trial_result(None, trial["parameter"], trial["value"])
