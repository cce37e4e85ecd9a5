import itertools
import random

import pytest
import torch

from components.errors import ConfigurationError
from components.models.families import FAMILIES, build_network, choose_families, split_parameters


def _choices(space):
    keys = [key for key, spec in space.items() if spec["_type"] == "choice"]
    return keys, [space[key]["_value"] for key in keys]


@pytest.mark.parametrize(
    "family_name, shape",
    [
        ("mlp", [7]),
        ("cnn", [1, 8, 8]),
        ("cnn", [3, 13, 9]),
        ("sequence", [12, 2]),
        ("sequence", [1, 3]),
        ("rocket", [12, 2]),
        ("rocket", [1, 3]),
        ("text", [9]),
    ],
)
def test_every_architecture_in_the_space_runs_forward(family_name, shape):
    """Every architecture of a small space; 24 random ones of a model space (millions of them)."""
    family = FAMILIES[family_name]
    keys, values = _choices(family.search_space_for(shape))
    inputs = torch.randint(0, 2, (2, *shape)).float() if family_name == "text" else torch.randn(2, *shape)
    combinations = itertools.product(*values)
    if family.space is not None:
        rng = random.Random(0)
        combinations = [[rng.choice(options) for options in values] for _ in range(24)]
    for combination in combinations:
        parameters = dict(zip(keys, combination), learning_rate=1e-3)
        architecture, hyperparameters = split_parameters(family, parameters)
        assert "learning_rate" in hyperparameters and "learning_rate" not in architecture
        network = build_network(family_name, shape, 4, architecture).eval()
        assert network(inputs).shape == (2, 4)
        assert network.embed(inputs).shape[0] == 2


def test_family_follows_modality():
    assert choose_families("tabular")[0][0].name == "mlp"
    assert choose_families("image")[0][0].name == "cnn"
    assert choose_families("sequence")[0][0].name == "sequence"
    assert choose_families("text")[0][0].name == "text"
    assert choose_families("multimodal")[0][0].name == "fusion"
    assert choose_families("image", "cnn")[1].endswith("set in params.yaml")


def test_family_override_must_read_the_data():
    with pytest.raises(ConfigurationError, match="reads image data, but the data is tabular"):
        choose_families("tabular", "cnn")


@pytest.mark.parametrize(
    "family_name, shape", [("mlp", [7]), ("cnn", [1, 8, 8]), ("sequence", [12, 2]), ("rocket", [30, 2]), ("text", [9])]
)
def test_the_chosen_network_is_drawn_block_by_block_with_every_parameter(family_name, shape, tmp_path):
    from components.models.drawing import draw_chosen_network, network_blocks

    family = FAMILIES[family_name]
    keys, values = _choices(family.search_space_for(shape))
    architecture, _ = split_parameters(family, dict(zip(keys, [options[-1] for options in values]), learning_rate=1e-3))
    network = build_network(family_name, shape, 4, architecture)
    features = (torch.randint(0, 2, (3, *shape)) if family_name == "text" else torch.randn(3, *shape)).float().numpy()
    blocks = network_blocks(network, features)
    assert blocks[0].label == "input" and blocks[0].shape == (1, *shape)
    assert blocks[-1].shape == (1, 4)  # the head, last
    # Each parameter is in exactly one block: none drawn twice, none left out.
    assert sum(block.parameters for block in blocks) == sum(parameter.numel() for parameter in network.parameters())
    picture = draw_chosen_network(network, features, tmp_path / "network.png", family_name)
    assert picture.stat().st_size > 5_000
