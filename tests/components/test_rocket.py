"""The MiniRocket family: biases fitted from the first training batch and kept in the state dict, a
linear head that learns a real sequence set, and the transform inside the exported ONNX graph."""

from pathlib import Path

import numpy as np
import pytest
import torch

from components.data.corpus import corpus_dataset
from components.data.preparation import Preprocessor
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.models import rocket
from components.models.families import build_network, choose_families
from components.training.fit import fit_network, predict
from tests.components.test_sequences import sequences

LINEAR = {"features": 840, "head_width": 0, "dropout": 0.0}


def test_dilations_grow_with_the_length_and_share_out_the_features():
    assert rocket.dilations(12, 840) == ([1], [10])
    values, counts = rocket.dilations(500, 2016)
    assert values[0] == 1 and values[-1] == 62 and sum(counts) == 2016 // 84  # (500 - 1) / 8: about 2^6
    assert build_network("rocket", [500, 1], 3, {**LINEAR, "features": 2016}).transform.size == 2016


def test_biases_are_fitted_from_the_first_training_batch_and_kept_in_the_state_dict():
    torch.manual_seed(0)
    batch = torch.randn(64, 40, 2)
    network = build_network("rocket", [40, 2], 2, LINEAR)
    transform = network.transform
    assert not transform.fitted and not transform.bias0.any()
    network.train()(batch)
    assert transform.fitted and transform.bias0.abs().sum() > 0
    # A bias at quantile level q of a kernel's output leaves about 1 - q of its values above it.
    proportions = transform(batch).mean(dim=0).numpy()
    levels = [getattr(transform, f"levels{n}").numpy() for n in range(len(transform.dilations))]
    assert all(len(np.unique(level)) == level.size for level in levels)  # every kernel its own quantiles, as MiniRocket
    assert np.corrcoef(proportions, 1 - np.concatenate([level.ravel() for level in levels]))[0, 1] > 0.9
    fitted = transform.bias0.clone()
    network(torch.randn(64, 40, 2) * 5)  # later batches leave the biases alone
    assert torch.equal(transform.bias0, fitted)
    rebuilt = build_network("rocket", [40, 2], 2, LINEAR)
    rebuilt.load_state_dict(network.state_dict())
    assert torch.allclose(rebuilt.eval()(batch), network.eval()(batch))


@pytest.mark.parametrize("task_type", ["classification", "regression"])
def test_a_linear_head_starts_as_minirockets_ridge_on_the_training_rows(task_type: str):
    """Before training, the network's predictions are scikit-learn's ridge (penalty by leave-one-out)
    on its own standardised features; a trained network keeps its weights."""
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV

    raw, labels = sequences()
    features = Preprocessor.fit(raw, "sequence").transform(raw)
    targets = np.unique(labels, return_inverse=True)[1] if task_type == "classification" else features[:, :, 0].mean(1)
    network = build_network("rocket", [12, 2], 2 if task_type == "classification" else 1, LINEAR)
    network.initialise_from_data(features, targets, task_type)
    with torch.no_grad():
        standardised = network.standardise(network.transform(torch.from_numpy(features))).numpy()
        outputs = network.eval()(torch.from_numpy(features)).numpy()
    assert np.allclose(standardised.mean(0), 0, atol=1e-4) and network.transform.fitted
    if task_type == "classification":
        ridge = RidgeClassifierCV(alphas=rocket.RIDGE_ALPHAS).fit(standardised, targets)
        assert np.array_equal(outputs.argmax(1), ridge.predict(standardised))
        decisions = ridge.decision_function(standardised)  # the network's: the same, times a temperature
        assert np.allclose((outputs[:, 1] - outputs[:, 0]) / decisions, (outputs[0, 1] - outputs[0, 0]) / decisions[0], rtol=1e-3)
    else:
        ridge = RidgeCV(alphas=rocket.RIDGE_ALPHAS).fit(standardised, targets)
        assert np.allclose(outputs[:, 0], ridge.predict(standardised), atol=1e-4)
    before = {name: value.clone() for name, value in network.state_dict().items()}
    network.initialise_from_data(features * 3, targets, task_type)
    assert all(torch.equal(before[name], value) for name, value in network.state_dict().items())


def test_the_family_competes_for_sequences_and_is_alone_when_asked():
    assert [family.name for family in choose_families("sequence")[0]] == ["sequence", "rocket"]
    assert [family.name for family in choose_families("sequence", "rocket")[0]] == ["rocket"]


def test_a_linear_head_learns_a_real_sequence_set_and_exports_with_the_preprocessing(tmp_path: Path):
    """GunPoint (the UCR archive inside sktime): 50 training and 150 test sequences of 150 steps."""
    dataset = corpus_dataset("GunPoint")
    data_path, _ = dataset.write(tmp_path)
    with np.load(tmp_path / data_path, allow_pickle=True) as arrays:
        features, labels = arrays["X"].astype(np.float32), arrays["y"]
    targets = np.unique(labels, return_inverse=True)[1]
    preprocessor = Preprocessor.fit(features[:50], "sequence")
    encoded = preprocessor.transform(features)
    torch.manual_seed(0)
    network = build_network("rocket", list(features.shape[1:]), 2, {**LINEAR, "features": 2016})
    fitted = fit_network(
        network,
        "classification",
        (encoded[:50], targets[:50]),
        (encoded[50:100], targets[50:100]),
        {"learning_rate": 0.01, "weight_decay": 1e-3},
        max_epochs=30,
        batch_size=16,
        seed=0,
    )
    accuracy = (predict(fitted.network.eval(), encoded[100:]).argmax(1) == targets[100:]).mean()
    assert accuracy >= 0.9  # 0.98 here; MiniRocket with ridge: about 0.99 on the archive's full test split
    model = DeployableModel(fitted.network, preprocessor, "classification").eval()
    parity = check_parity(
        model, inference_session(export_onnx(model, features[:20], tmp_path / "rocket.onnx"), 1), features[:20], 1e-3
    )
    assert parity.class_agreement == 1.0


@pytest.mark.parametrize("head_width", [0, 128])
def test_padded_sequences_export(tmp_path: Path, head_width: int):
    features, labels = sequences()
    preprocessor = Preprocessor.fit(features, "sequence")
    network = build_network("rocket", [12, 2], 2, {**LINEAR, "head_width": head_width})
    network.train()(torch.from_numpy(preprocessor.transform(features)))
    model = DeployableModel(network, preprocessor, "classification").eval()
    parity = check_parity(model, inference_session(export_onnx(model, features, tmp_path / "padded.onnx"), 1), features, 1e-4)
    assert parity.class_agreement == 1.0 and model.embed(torch.from_numpy(features)).shape == (24, head_width or 840)
