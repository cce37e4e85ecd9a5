"""Multi-fidelity search: rungs of epochs and data, promotions of the best third, resumed checkpoints."""

from pathlib import Path

from components.models.mlp import SEARCH_SPACE
from components.search.fidelity import FIDELITY_KEY, rung_epochs, rung_shares, split_fidelity, trial_epochs
from components.search.successive_halving import SuccessiveHalvingTuner
from tests.components.test_search import request, search_setup


def test_rungs_grow_by_eta_up_to_a_full_trial():
    assert rung_epochs(15) == [2, 5, 15]
    assert rung_epochs(3) == [1, 3]
    assert rung_shares(3, train_rows=1000) == [1.0, 1.0, 1.0]  # small data: every rung sees it all
    assert rung_shares(3, train_rows=18_000) == [2000 / 18_000, 1 / 3, 1.0]


def test_small_tables_train_trials_to_a_minimum_of_optimiser_steps():
    assert trial_epochs(15, train_rows=264, batch_size=64, minimum_steps=250) == 50  # 5 steps an epoch
    assert trial_epochs(15, train_rows=1078, batch_size=64, minimum_steps=250) == 15  # 17 steps: 255 already
    assert trial_epochs(3, train_rows=60, batch_size=8, minimum_steps=0) == 3


def test_the_best_third_of_a_rung_goes_up_and_resumes_where_it_stopped():
    tuner = SuccessiveHalvingTuner(max_epochs=15, train_rows=18_000, seed=0, sampler="random")
    tuner.update_search_space(SEARCH_SPACE)
    proposed = [tuner.generate_parameters(index) for index in range(3)]
    assert all(split_fidelity(parameters)[1]["rung"] == 0 for parameters in proposed)
    assert all(
        parameters[FIDELITY_KEY]["epochs"] == 2 and parameters[FIDELITY_KEY]["resume_epochs"] == 0 for parameters in proposed
    )
    for index, (parameters, score) in enumerate(zip(proposed, [0.5, 0.9, 0.7])):
        tuner.receive_trial_result(index, parameters, score)
    promoted = tuner.generate_parameters(3)
    configuration, fidelity = split_fidelity(promoted)
    assert configuration == split_fidelity(proposed[1])[0]  # the best of three
    assert fidelity == {
        "rung": 1,
        "epochs": 5,
        "share": 1 / 3,
        "checkpoint": proposed[1][FIDELITY_KEY]["checkpoint"],
        "resume_epochs": 2,
    }
    fresh = tuner.generate_parameters(4)  # nothing else to promote: a new configuration at the bottom
    assert fresh[FIDELITY_KEY]["rung"] == 0 and split_fidelity(fresh)[0] not in [split_fidelity(p)[0] for p in proposed]


def test_a_successive_halving_search_promotes_and_ranks_only_the_top_rung_reached(tmp_path: Path):
    from components.search.nni_search import run_search

    search_setup(tmp_path, rows=200, max_epochs=9, checkpoint_folder=str(tmp_path / "checkpoints"))
    result = run_search(request(tmp_path, strategy="successive_halving", max_trials=5, concurrency=2, max_epochs=9))
    rungs = [trial.fidelity["rung"] for trial in result.trials]
    assert rungs.count(0) >= 3 and 1 in rungs, rungs
    promoted = next(trial for trial in result.trials if trial.fidelity["rung"] == 1)
    assert promoted.fidelity["epochs"] == 3 and promoted.fidelity["resume_epochs"] == 1
    assert len(promoted.intermediate) == 2  # resumed after its rung-0 epoch: two more, not three
    bottom = [trial for trial in result.trials if trial.fidelity["rung"] == 0]
    assert promoted.parameters in [trial.parameters for trial in bottom]
    assert (tmp_path / "checkpoints" / f"{promoted.fidelity['checkpoint']}.pt").is_file()
    top = max(rungs)
    assert result.ranked() and all(trial.fidelity["rung"] == top for trial in result.ranked())
