"""Hardware limits inside the search: costs measured before training, candidates over a limit not
trained and never chosen, and the score / latency Pareto front."""

from pathlib import Path

import numpy as np
import pytest

from components.data.preparation import Preprocessor
from components.models.families import build_network
from components.search.constraints import Constraints, Cost, measure_cost, violations_of
from tests.components.test_search import GOOD, request, search_setup

LINEAR = {**GOOD, "depth": 0}


def test_costs_are_counted_and_measured():
    raw = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    preprocessor = Preprocessor.fit(raw, "tabular")
    network = build_network("mlp", [4], 2, {"depth": 1, "width": 64, "activation": "relu", "dropout": 0.0})
    cheap = measure_cost(network, preprocessor, "classification", raw, Constraints(max_parameters=10))
    assert cheap.parameters == (4 * 64 + 64) + 2 * 64 + (64 * 2 + 2)  # linear, layer norm, head
    assert cheap.mflops == pytest.approx(2 * (4 * 64 + 64 * 2) / 1e6, rel=0.2) and cheap.latency_ms is None
    timed = measure_cost(network, preprocessor, "classification", raw, Constraints(max_latency_ms=5.0))
    assert 0 < timed.latency_ms < 5.0
    assert Cost(1000, 0.5, 2.0).violations(Constraints(max_parameters=500, max_latency_ms=1.0)) == [
        "1,000 parameters > 500",
        "2.000 ms > 1 ms",
    ]
    assert not Cost(100, 0.5).violations(Constraints(max_parameters=500, max_mflops=1.0))
    assert violations_of(network, preprocessor, "classification", raw, Constraints(max_parameters=10)) == ["578 parameters > 10"]
    assert violations_of(network, preprocessor, "classification", raw, Constraints(max_parameters=1000)) == []
    assert not network.training


def test_a_candidate_over_a_size_limit_is_not_trained_nor_chosen(tmp_path: Path):
    from components.search.nni_search import run_search
    from components.search.pareto import measure_latencies, pareto_table
    from components.search.settings import TrialSettings

    search_setup(tmp_path, max_epochs=5, constraints={"max_parameters": 100})  # linear: 10; one hidden layer: 578
    result = run_search(request(tmp_path, strategy="random", max_trials=2, concurrency=1, warm_start=[GOOD, LINEAR]))
    over, linear = result.trials
    assert over.parameters == GOOD and not over.meets_constraints and over.intermediate == []
    assert over.cost["parameters"] > 100 and over.score == -1.0
    assert linear.meets_constraints and len(linear.intermediate) == 5 and linear.cost["parameters"] == 10
    assert [trial.trial_id for trial in result.ranked()] == [linear.trial_id]
    assert "latency_ms" not in linear.cost  # no latency limit: the trial spent no time timing itself
    preprocessor = Preprocessor.load(tmp_path / "preprocessor.json")
    example = np.zeros((2, 4), dtype=np.float32)

    def build(parameters):
        architecture = {key: parameters[key] for key in ("depth", "width", "activation", "dropout")}
        return build_network("mlp", [4], 2, architecture, preprocessor)

    architecture_of = lambda parameters: parameters["depth"]  # noqa: E731
    assert measure_latencies(result.trials, build, architecture_of, preprocessor, "classification", example) == 1
    assert linear.cost["latency_ms"] > 0 and "latency_ms" not in over.cost  # an untrained candidate is not on the front
    front = pareto_table(result.trials)
    assert list(front["trial"]) == [linear.sequence + 1] and front["pareto"].all()

    settings = TrialSettings.load(tmp_path / "settings.json")
    settings.constraints = {"max_parameters": 5}
    settings.save(tmp_path / "settings.json")
    nothing = run_search(request(tmp_path, "nni-2", strategy="random", max_trials=1, concurrency=1, warm_start=[LINEAR]))
    with pytest.raises(RuntimeError, match="no searched network met the hardware limits"):
        _ = nothing.best


def test_the_pareto_front_keeps_the_candidates_nothing_beats_on_both():
    from components.search.pareto import pareto_table
    from components.search.records import TrialRecord

    trials = [
        TrialRecord(str(index), index, "SUCCEEDED", {}, score, 1.0, cost={"latency_ms": latency, "parameters": 10})
        for index, (score, latency) in enumerate([(0.90, 1.0), (0.95, 2.0), (0.93, 3.0), (0.97, 5.0)])
    ]
    assert list(pareto_table(trials)["pareto"]) == [True, True, False, True]
