"""Sequences: loading (.npz with NaN padding, long tables), per-channel standardisation that the
exported graph repeats, the model space's operations through ONNX and DARTS over them, and the
server's payloads."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from components.data.preparation import Preprocessor
from components.data.sequences import load_sequences
from components.data.sources import detect_modality, load_unlabelled_inputs
from components.deployment.onnx_export import check_parity, export_onnx, inference_session
from components.deployment.wrapper import DeployableModel
from components.errors import DataError
from components.models import sequence_space
from components.models.families import FAMILIES, build_network
from components.search.oneshot import OneShotRequest, architecture_table, pin_architecture, run_oneshot
from components.serving.inputs import RequestError, sequences_to_array
from components.serving.model_store import ServingMetadata


def sequences(count: int = 24, length: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two channels; class 1 rises over time, class 0 falls; every third sequence ends early."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    slope = np.where(labels == 1, 1.0, -1.0)[:, None]
    steps = np.linspace(0, 1, length)[None]
    features = np.stack([slope * steps + rng.normal(scale=0.1, size=(count, length)), rng.normal(size=(count, length))], axis=2)
    features = features.astype(np.float32)
    features[::3, length - 4 :] = np.nan
    return features, labels


def write_long(path: Path, features: np.ndarray, labels: np.ndarray) -> Path:
    lines = ["series_id,time,accel,gyro,label"]
    for index, (sequence, label) in enumerate(zip(features, labels)):
        for step, (accel, gyro) in enumerate(sequence):
            if not np.isnan(accel):
                lines.append(f"s{index},{step},{accel:.5f},{gyro:.5f},{'up' if label else 'down'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_npz_and_long_tables_load_the_same_sequences(tmp_path: Path):
    features, labels = sequences()
    np.savez(tmp_path / "walks.npz", X=features, y=labels)
    from_npz = load_sequences(tmp_path / "walks.npz")
    assert detect_modality(tmp_path / "walks.npz") == "sequence"
    assert from_npz.features.shape == (24, 12, 2) and any("padded" in warning for warning in from_npz.warnings)

    long_table = write_long(tmp_path / "walks.csv", features, labels)
    assert detect_modality(long_table) == "sequence"
    from_table = load_sequences(long_table, "label")
    assert from_table.feature_names == ["accel", "gyro"]
    order = np.argsort([int(name[1:]) for name in from_table.sample_ids])
    assert np.allclose(from_table.features[order], features, atol=1e-4, equal_nan=True)
    assert list(from_table.target[order][:2]) == ["down", "up"]

    broken = tmp_path / "mixed.csv"
    broken.write_text("series_id,time,accel,label\na,0,1,up\na,1,2,down\nb,0,1,up\nb,1,1,up\n")
    with pytest.raises(DataError, match="sequences a have several labels"):
        load_sequences(broken, "label")
    np.savez(tmp_path / "bad.npz", X=features)
    with pytest.raises(DataError, match="needs y"):
        load_sequences(tmp_path / "bad.npz")
    batch = load_unlabelled_inputs(tmp_path / "walks.npz", "sequence", ["accel", "gyro"], (16, 2))
    assert batch.shape == (24, 16, 2) and np.isnan(batch[:, 12:]).all()


@pytest.mark.parametrize("cell", sequence_space.OPERATIONS)
def test_every_operation_shapes_and_exports_with_the_preprocessing(tmp_path: Path, cell: str):
    features, labels = sequences()
    preprocessor = Preprocessor.fit(features, "sequence")
    encoded = preprocessor.transform(features)
    assert not np.isnan(encoded).any() and abs(encoded[~np.isnan(features)].mean()) < 0.2
    torch.manual_seed(0)
    architecture = {
        "depth": 2,
        "block1_op": cell,
        "block1_skip": "residual",
        "block2_op": cell,
        "block2_skip": "none",
        "width": 8,
        "dropout": 0.0,
    }
    network = build_network("sequence", [12, 2], 2, architecture).eval()
    assert network(torch.from_numpy(encoded)).shape == (24, 2) and network.embed(torch.from_numpy(encoded)).shape == (24, 8)
    model = DeployableModel(network, preprocessor, "classification").eval()
    with torch.no_grad():
        assert np.allclose(model.preprocess(torch.from_numpy(features)).numpy(), encoded, atol=1e-6)
    parity = check_parity(model, inference_session(export_onnx(model, features, tmp_path / f"{cell}.onnx"), 1), features, 1e-4)
    assert parity.class_agreement == 1.0


def test_sequence_payloads():
    metadata = ServingMetadata("sequence", "classification", ["down", "up"], ["accel", "gyro"], [4, 2])
    array = sequences_to_array([[[0.1, 0.2], [0.3, None]], [[1, 2], [3, 4], [5, 6], [7, 8]]], metadata)
    assert array.shape == (2, 4, 2) and np.isnan(array[0, 1, 1]) and np.isnan(array[0, 2:]).all()
    with pytest.raises(RequestError, match="has 5 steps, the model takes at most 4"):
        sequences_to_array([[[0, 0]] * 5], metadata)
    with pytest.raises(RequestError, match="step 0 has 3 values, the model takes 2"):
        sequences_to_array([[[0, 0, 0]]], metadata)


def test_darts_searches_the_sequence_space_and_pins_its_operations(tmp_path: Path):
    features, labels = sequences(count=96, length=12)
    encoded = Preprocessor.fit(features, "sequence").transform(features)
    request = OneShotRequest(
        "darts",
        sequence_space,
        "classification",
        [12, 2],
        2,
        (encoded[:64], labels[:64].astype(np.int64)),
        (encoded[64:], labels[64:].astype(np.int64)),
        tmp_path,
        time.time() + 120,
        max_epochs=2,
        batch_size=16,
        progress=lambda line: None,
    )
    result = run_oneshot(request)
    space = sequence_space.json_search_space()
    assert set(result.architecture) == set(space) and result.epochs == 2
    weights = result.probabilities["block1_op"]
    assert set(weights) == set(sequence_space.OPERATIONS)
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)  # DARTS's softmax, as logged over the last epoch
    table = architecture_table(sequence_space, result.architecture, [12, 2], result.probabilities)
    assert len(table) == result.architecture["depth"] and table.loc[0, "operation_weight"] == pytest.approx(
        weights[result.architecture["block1_op"]]
    )
    pinned = pin_architecture(FAMILIES["sequence"].search_space_for([12, 2]), result.architecture)
    assert pinned["block1_op"]["_value"] == [result.architecture["block1_op"]] and len(pinned["width"]["_value"]) == 3
