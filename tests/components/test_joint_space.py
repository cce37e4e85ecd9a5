"""One search over several families: the joint space, what a configuration trains, and the first trials."""

import pytest

from components.models.families import (
    FAMILIES,
    architecture_of,
    choose_families,
    joint_portfolio,
    joint_search_space,
    network_for,
)
from components.models.joint_space import FAMILY_KEY, embed, families_of, resolve
from components.search.oneshot import choose_strategy
from components.search.records import TrialRecord
from components.search.selection import family_race, family_scores
from components.search.tuners import compatible_configurations

SHAPE = [64, 1]


def sequence_families():
    return [FAMILIES["sequence"], FAMILIES["rocket"]]


def test_auto_lets_every_family_of_sequences_compete_and_an_override_keeps_one():
    families, reason = choose_families("sequence")
    assert [family.name for family in families] == ["sequence", "rocket"]
    assert "chosen by the search on validation" in reason
    assert [family.name for family in choose_families("sequence", "rocket")[0]] == ["rocket"]
    assert [family.name for family in choose_families("image")[0]] == ["cnn"]


def test_the_joint_space_keeps_each_familys_ranges_apart():
    space = joint_search_space(sequence_families(), SHAPE)
    assert space[FAMILY_KEY]["_value"] == ["sequence", "rocket"]
    assert families_of(space, "sequence") == ["sequence", "rocket"]
    # The same hyper-parameter name in both families, each with its own range.
    assert space["rocket/learning_rate"] == FAMILIES["rocket"].search_space["learning_rate"]
    assert space["sequence/learning_rate"] == FAMILIES["sequence"].search_space_for(SHAPE)["learning_rate"]
    assert set(space) == {FAMILY_KEY} | {f"sequence/{k}" for k in FAMILIES["sequence"].search_space_for(SHAPE)} | {
        f"rocket/{k}" for k in FAMILIES["rocket"].search_space
    }
    # One family alone: its own space, unprefixed.
    assert joint_search_space([FAMILIES["rocket"]], SHAPE) == FAMILIES["rocket"].search_space


def test_a_configuration_trains_its_own_familys_parameters():
    space = joint_search_space(sequence_families(), SHAPE)
    point = embed("rocket", FAMILIES["rocket"].portfolio[0], space)
    assert compatible_configurations([point], space) == [point]  # a whole point: every tuner reads it
    family, own = resolve(point, "sequence")
    assert (family, own) == ("rocket", FAMILIES["rocket"].portfolio[0])
    chosen, architecture, hyperparameters = architecture_of(point, "sequence")
    assert chosen == "rocket" and hyperparameters["learning_rate"] == FAMILIES["rocket"].portfolio[0]["learning_rate"]
    assert (
        type(network_for(point, "sequence", SHAPE, 3)).__name__ == type(FAMILIES["rocket"].build(SHAPE, 3, architecture)).__name__
    )
    # A single family's configuration passes through.
    assert resolve({"width": 32}, "sequence") == ("sequence", {"width": 32})


def test_the_first_trials_take_the_families_defaults_in_turns():
    families = [FAMILIES["rocket"], FAMILIES["mlp"]]  # two families with portfolios (mlp's space is flat too)
    space = joint_search_space(families, [8])
    first = joint_portfolio(families, space)
    assert [point[FAMILY_KEY] for point in first] == ["rocket", "mlp", "rocket", "mlp"]
    assert [resolve(point, "rocket")[1] for point in first[::2]] == list(FAMILIES["rocket"].portfolio)


def test_competing_families_are_searched_by_trials_not_one_shot():
    assert choose_strategy("auto", True, 50_000, families=2)[0] == "tpe"
    strategy, reason = choose_strategy("darts", True, 50_000, families=2)
    assert strategy == "tpe" and "model_formulation.family" in reason
    assert choose_strategy("darts", True, 50_000, families=1)[0] == "darts"


def test_the_race_line_names_each_familys_best_score():
    def trial(sequence, family, score, status="SUCCEEDED"):
        return TrialRecord(str(sequence), sequence, status, {FAMILY_KEY: family}, score, 1.0)

    trials = [trial(0, "rocket", 0.9), trial(1, "sequence", 0.7), trial(2, "rocket", 0.95), trial(3, "sequence", None, "FAILED")]
    assert family_scores(trials, "sequence") == {"rocket": (0.95, 2), "sequence": (0.7, 2)}
    assert family_race(trials, "sequence", "rocket") == (
        "families on validation: rocket 0.9500 (2 trials), sequence 0.7000 (2 trials); rocket is retrained"
    )
    level = [trial(0, "sequence", 0.9), trial(1, "rocket", 0.9)]  # a tie: by name, whichever trial ran first
    assert family_race(level, "sequence", "rocket").startswith("families on validation: rocket 0.9000 (1 trial), sequence")


@pytest.mark.parametrize("family", ["sequence", "rocket"])
def test_a_family_of_a_joint_search_is_named_in_the_trials_logged_parameters(family):
    space = joint_search_space(sequence_families(), SHAPE)
    configuration = FAMILIES["rocket"].portfolio[0] if family == "rocket" else {}
    assert resolve(embed(family, configuration, space), "sequence")[0] == family


def test_a_family_without_defaults_still_gets_a_first_trial_where_families_compete():
    families = [FAMILIES["cnn"], FAMILIES["efficientnet"]]
    space = joint_search_space(families, [1, 8, 8])
    first = joint_portfolio(families, space, seed=3)
    assert [point[FAMILY_KEY] for point in first] == ["cnn", "efficientnet", "efficientnet"]
    assert compatible_configurations(first, space) == first  # whole points of the joint space
    assert first == joint_portfolio(families, space, seed=3) != joint_portfolio(families, space, seed=4)  # seeded
    assert joint_portfolio([FAMILIES["cnn"]], FAMILIES["cnn"].search_space_for([1, 8, 8])) == []


def test_a_list_of_families_must_name_real_families_of_the_data():
    from components.config import ModelFormulationParams
    from components.errors import ConfigurationError

    assert ModelFormulationParams(family=["sequence", "rocket"]).family == ["sequence", "rocket"]
    with pytest.raises(ValueError):
        ModelFormulationParams(family=["sequence", "lstm"])
    with pytest.raises(ConfigurationError, match="without 'auto'"):
        choose_families("sequence", ["auto", "rocket"])
    with pytest.raises(ConfigurationError, match="'cnn' reads image data, but the data is sequence"):
        choose_families("sequence", ["rocket", "cnn"])
