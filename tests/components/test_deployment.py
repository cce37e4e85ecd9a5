from pathlib import Path

import numpy as np
import pytest
import torch

from components.data.preparation import Preprocessor
from components.deployment.onnx_export import check_parity, export_onnx, inference_session, measure_latency
from components.deployment.wrapper import DeployableModel
from components.errors import QualityGateError
from components.models.families import build_network

MLP = {"depth": 2, "width": 16, "activation": "gelu", "dropout": 0.0}
CNN = {"depth": 2, "width": 8, "block": "residual", "kernel_size": 3, "dropout": 0.0}


def tabular_model(task_type="classification", seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    raw = rng.normal(3, 2, size=(64, 5)).astype(np.float32)
    raw[::7, 2] = np.nan
    target = rng.normal(100, 10, size=64).astype(np.float32) if task_type == "regression" else None
    preprocessor = Preprocessor.fit(raw, "tabular", target)
    outputs = 3 if task_type == "classification" else 1
    network = build_network("mlp", [5], outputs, MLP).eval()
    return DeployableModel(network, preprocessor, task_type).eval(), raw, preprocessor, network


def test_wrapper_applies_the_saved_preprocessing():
    model, raw, preprocessor, network = tabular_model()
    with torch.no_grad():
        expected = torch.softmax(network(torch.from_numpy(preprocessor.transform(raw))), dim=1)
        assert torch.allclose(model(torch.from_numpy(raw)), expected, atol=1e-6)


def test_regression_wrapper_returns_target_units():
    model, raw, preprocessor, network = tabular_model("regression")
    with torch.no_grad():
        standardised = network(torch.from_numpy(preprocessor.transform(raw))).numpy()
        assert np.allclose(model(torch.from_numpy(raw)).numpy(), preprocessor.decode_target(standardised), atol=1e-4)


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_onnx_export_matches_pytorch(tmp_path: Path, family: str):
    if family == "mlp":
        model, raw, _, _ = tabular_model()
    else:
        raw = np.random.default_rng(0).integers(0, 255, size=(40, 1, 8, 8)).astype(np.float32)
        model = DeployableModel(
            build_network("cnn", [1, 8, 8], 4, CNN).eval(), Preprocessor.fit(raw, "image"), "classification"
        ).eval()
    path = export_onnx(model, raw, tmp_path / "model.onnx")
    session = inference_session(path)
    report = check_parity(model, session, raw, tolerance=1e-4)
    assert report.samples == len(raw) and report.class_agreement == 1.0
    assert session.run(None, {"input": raw[:7]})[0].shape[0] == 7
    latency = measure_latency(model, session, raw, batch_size=4, repeats=10, threads=1)
    assert latency["onnxruntime_p50_ms"] > 0 and latency["pytorch_p50_ms"] > 0


def test_parity_failure_stops_the_stage(tmp_path: Path):
    model, raw, _, _ = tabular_model(seed=0)
    other, _, _, _ = tabular_model(seed=1)
    session = inference_session(export_onnx(other, raw, tmp_path / "other.onnx"))
    with pytest.raises(QualityGateError, match="disagrees with PyTorch"):
        check_parity(model, session, raw, tolerance=1e-4)
