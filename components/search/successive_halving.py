"""Multi-fidelity search: asynchronous successive halving (ASHA, Li et al., 2020) run by NNI's dispatcher.

Every new configuration trains briefly (a few epochs, on a subset of a large training split); the
best third of each rung is promoted to the next, where it resumes from the checkpoint it reached
and trains on more epochs and more data, up to the full trial. Promotion is asynchronous: whenever a
trial slot frees, the best configuration not yet promoted from the highest rung that has one goes
up, else a new configuration starts at the bottom. Bad configurations cost a few epochs, not a full
training. New configurations come from TPE fitted to the bottom rung's scores (as BOHB samples from
a model), after the warm-start configurations.

Written here because NNI 3.0's ``Hyperband`` advisor restarts every promoted configuration from
scratch, cannot be seeded (its random state is unseeded), takes no warm start, and is synchronous
(a rung waits for its slowest trial); its BOHB advisor adds a ConfigSpace dependency and shares
those traits. This tuner plugs into NNI's experiment like the others, so the budget, the journal,
the web UI and the trials stay as they are.
"""

from __future__ import annotations

from typing import Any

from nni.tuner import Tuner
from nni.utils import extract_scalar_reward

from components.search.fidelity import FIDELITY_KEY, configuration_key, rung_epochs, rung_shares, split_fidelity
from components.search.tuners import OrderTolerantTpeTuner, WarmRandomTuner


class SuccessiveHalvingTuner(Tuner):
    """Asynchronous successive halving over epochs and training-subset size (see the module docstring).

    Args:
        max_epochs: the top rung's epochs (a full trial).
        train_rows: size of the training split, which sets each rung's share of it.
        eta: one in ``eta`` configurations of a rung goes up; epochs grow by ``eta`` per rung.
        rungs: how many fidelities.
        sampler: ``tpe`` or ``random``, for new configurations.
    """

    def __init__(
        self,
        optimize_mode: str = "maximize",
        max_epochs: int = 15,
        train_rows: int = 0,
        eta: int = 3,
        rungs: int = 3,
        sampler: str = "tpe",
        seed: int = 0,
        warm_start: list[dict[str, Any]] | None = None,
        history: list[dict] | None = None,
    ) -> None:
        super().__init__()
        self.maximize = optimize_mode == "maximize"
        self.eta = eta
        self.epochs = rung_epochs(max_epochs, eta, rungs)
        self.shares = rung_shares(len(self.epochs), train_rows, eta)
        sampler_class = OrderTolerantTpeTuner if sampler == "tpe" else WarmRandomTuner
        self.sampler = sampler_class(optimize_mode="maximize", seed=seed, warm_start=warm_start)
        self.history = list(history or [])
        self.scores: list[dict[str, float]] = [{} for _ in self.epochs]  # per rung: configuration key -> score
        self.configurations: dict[str, dict[str, Any]] = {}
        self.promoted: list[set[str]] = [set() for _ in self.epochs]
        self.running: dict[int, tuple[str, int]] = {}  # parameter id -> (configuration key, rung)

    def update_search_space(self, search_space):
        self.sampler.update_search_space(search_space)
        for trial in self.history:  # an interrupted search's finished trials
            configuration, fidelity = split_fidelity(trial["parameter"])
            self._record(configuration, int(fidelity.get("rung", 0)), trial["value"])

    def _fidelity(self, rung: int, key: str, resume: bool) -> dict[str, Any]:
        return {
            "rung": rung,
            "epochs": self.epochs[rung],
            "share": self.shares[rung],
            "checkpoint": key,
            "resume_epochs": self.epochs[rung - 1] if resume else 0,
        }

    def _promotable(self) -> tuple[str, int] | None:
        """The best configuration in the top 1/eta of the highest rung below the top that has one
        not yet promoted."""
        for rung in range(len(self.epochs) - 2, -1, -1):
            ranked = sorted(self.scores[rung], key=self.scores[rung].get, reverse=True)
            for key in ranked[: len(ranked) // self.eta]:
                if key not in self.promoted[rung]:
                    return key, rung
        return None

    def generate_parameters(self, parameter_id, **kwargs):
        promotion = self._promotable()
        if promotion is not None:
            key, rung = promotion
            self.promoted[rung].add(key)
            self.running[parameter_id] = (key, rung + 1)
            return {**self.configurations[key], FIDELITY_KEY: self._fidelity(rung + 1, key, resume=True)}
        configuration = self.sampler.generate_parameters(parameter_id, **kwargs)
        key = configuration_key(configuration)
        self.configurations[key] = configuration
        self.running[parameter_id] = (key, 0)
        return {**configuration, FIDELITY_KEY: self._fidelity(0, key, resume=False)}

    def _record(self, configuration: dict[str, Any], rung: int, value) -> str:
        key = configuration_key(configuration)
        self.configurations.setdefault(key, configuration)
        reward = extract_scalar_reward(value)
        self.scores[min(rung, len(self.epochs) - 1)][key] = reward if self.maximize else -reward
        if rung > 0:
            self.promoted[rung - 1].add(key)
        return key

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        configuration, fidelity = split_fidelity(parameters)
        rung = int(fidelity.get("rung", 0))
        self.running.pop(parameter_id, None)
        self._record(configuration, rung, value)
        if rung == 0:  # the sampler learns from comparable scores: the bottom rung's
            self.sampler.receive_trial_result(parameter_id, configuration, value, **kwargs)

    def trial_end(self, parameter_id, success, **kwargs):
        if success:
            return
        _, rung = self.running.pop(parameter_id, (None, 0))
        if rung == 0:  # a failed promotion is not tried again: it stays marked promoted
            self.sampler.trial_end(parameter_id, success, **kwargs)

    def import_data(self, data):
        self.history.extend(data)
