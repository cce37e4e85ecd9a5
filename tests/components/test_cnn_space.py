"""The image family's NNI model space: its JSON form, its plain networks, ONNX export of a searched
architecture, and the one-shot strategies on tiny data."""

import time

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from components.data.preparation import Preprocessor
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.models import cnn_space
from components.models.families import FAMILIES, split_parameters
from components.search.oneshot import OneShotRequest, architecture_table, pin_architecture, run_oneshot


def test_stages_follow_the_image_side():
    assert cnn_space.stage_count((1, 8, 8)) == (2, False)
    assert cnn_space.stage_count((1, 28, 28)) == (3, False)
    assert cnn_space.stage_count((3, 64, 64)) == (3, True)
    small, large = cnn_space.json_search_space((1, 8, 8)), cnn_space.json_search_space((1, 28, 28))
    assert "stage3_depth" not in small and "stage3_depth" in large
    assert large["stage1_cell2_op"]["_value"] == list(cnn_space.OPERATIONS)
    assert large["stage2_cell1_skip"]["_value"] == ["none", "residual"]


def test_an_architecture_builds_the_network_it_names():
    architecture = cnn_space.smallest_architecture(
        [1, 28, 28], width=16, stage2_depth=2, stage2_cell2_op="separable5x5", stage2_cell2_skip="residual"
    )
    network = cnn_space.build([1, 28, 28], 10, architecture)
    depthwise = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert [m.in_channels for m in depthwise] == [32]  # stage 2 has twice the first stage's width
    assert network.embedding_size == 64 and network(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    rows = cnn_space.describe(architecture, [1, 28, 28])
    assert [(row["stage"], row["cell"], row["operation"], row["skip"]) for row in rows][1:3] == [
        (2, 1, "conv3x3", "none"),
        (2, 2, "separable5x5", "residual"),
    ]
    assert cnn_space.summary(architecture, [1, 28, 28]) == (
        "cells 1.1 conv3x3 (none); 2.1 conv3x3 (none); 2.2 separable5x5 (residual); 3.1 conv3x3 (none); width 16, dropout 0.0"
    )


def test_a_searched_architecture_exports_to_onnx_with_parity(tmp_path):
    digits = load_digits()
    raw = digits.images[:64, None].astype(np.float32)
    torch.manual_seed(0)
    architecture = cnn_space.smallest_architecture(
        [1, 8, 8], stage1_depth=2, stage1_cell2_op="dilated3x3", stage2_cell1_skip="residual"
    )
    model = DeployableModel(cnn_space.build([1, 8, 8], 10, architecture).eval(), Preprocessor.fit(raw, "image"), "classification")
    path = export_onnx(model.eval(), raw, tmp_path / "searched.onnx")
    report = check_parity(model, inference_session(path), raw, tolerance=1e-4)
    assert report.max_absolute_difference < 1e-4 and report.class_agreement == 1.0


def test_split_keeps_the_space_labels_as_architecture():
    family = FAMILIES["cnn"]
    parameters = {**cnn_space.smallest_architecture([1, 8, 8]), "learning_rate": 0.01, "weight_decay": 0.0}
    architecture, hyperparameters = split_parameters(family, parameters)
    assert hyperparameters == {"learning_rate": 0.01, "weight_decay": 0.0}
    assert architecture["stage2_cell1_op"] == "conv3x3" and architecture["dropout"] == 0.0


def _digits_request(strategy, tmp_path, seconds, epochs):
    digits = load_digits()
    images = (digits.images[:, None] / 16.0).astype(np.float32)
    targets = digits.target.astype(np.int64)
    return OneShotRequest(
        strategy,
        cnn_space,
        "classification",
        [1, 8, 8],
        10,
        (images[:400], targets[:400]),
        (images[400:600], targets[400:600]),
        tmp_path,
        time.time() + seconds,
        max_epochs=epochs,
        progress=lambda line: None,
    )


def test_darts_exports_a_point_of_the_space_with_its_weights(tmp_path):
    result = run_oneshot(_digits_request("darts", tmp_path, 120, 2))
    space = cnn_space.json_search_space((1, 8, 8))
    assert set(result.architecture) == set(space)
    assert all(result.architecture[key] in spec["_value"] for key, spec in space.items())
    assert result.epochs == 2 and result.supernet_score > 0.3
    chosen = result.architecture["stage1_cell1_op"]  # DARTS's learnt weights: the chosen one the largest
    weights = result.probabilities["stage1_cell1_op"]
    assert set(weights) == set(cnn_space.OPERATIONS) and weights[chosen] == max(weights.values())
    table = architecture_table(cnn_space, result.architecture, [1, 8, 8], result.probabilities)
    assert table.loc[0, "operation_weight"] == pytest.approx(weights[chosen])
    pinned = pin_architecture(FAMILIES["cnn"].search_space_for([1, 8, 8]), result.architecture)
    assert pinned["stage2_cell1_op"]["_value"] == [result.architecture["stage2_cell1_op"]]
    assert len(pinned["width"]["_value"]) == 3 and len(pinned["learning_rate"]["_value"]) == 2  # still searched


@pytest.mark.timing
def test_oneshot_search_stops_at_its_deadline(tmp_path):
    started = time.time()
    result = run_oneshot(_digits_request("darts", tmp_path, 4, 50))
    assert result.epochs < 50 and time.time() - started < 4 + 10
    assert set(result.architecture) == set(cnn_space.json_search_space((1, 8, 8)))


@pytest.mark.timing
def test_a_filelock_that_nni_hangs_with_is_refused_at_once(tmp_path, monkeypatch):
    import filelock

    from components.errors import EnvironmentProblem

    monkeypatch.setattr(filelock, "__version__", "3.20.0")
    started = time.time()
    with pytest.raises(EnvironmentProblem, match="filelock 3.20.0 .* constraints.txt"):
        run_oneshot(_digits_request("darts", tmp_path, 60, 1))
    assert time.time() - started < 5 and not any(tmp_path.iterdir())


def test_auto_runs_darts_on_model_spaces_with_enough_rows():
    from components.search.oneshot import choose_strategy

    assert choose_strategy("auto", True, 6000)[0] == "darts"
    assert choose_strategy("auto", True, 1000)[0] == "tpe"
    assert choose_strategy("auto", False, 100_000) == ("tpe", "auto: this family has no model space for one-shot search")
    assert choose_strategy("evolution", True, 6000) == ("evolution", "set in params.yaml")
