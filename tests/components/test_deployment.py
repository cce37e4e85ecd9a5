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


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_int8_model_runs_and_stays_close(tmp_path: Path, family: str):
    from components.deployment.optimisation import onnx_outputs, quantise_int8, save_optimised_graph

    if family == "mlp":
        model, raw, _, _ = tabular_model()
    else:
        torch.manual_seed(0)
        raw = np.random.default_rng(0).integers(0, 255, size=(64, 1, 8, 8)).astype(np.float32)
        model = DeployableModel(
            build_network("cnn", [1, 8, 8], 4, CNN).eval(), Preprocessor.fit(raw, "image"), "classification"
        ).eval()
    path = export_onnx(model, raw, tmp_path / "model.onnx")
    method = quantise_int8(path, tmp_path / "model.int8.onnx", family, raw)
    assert ("static" in method) == (family == "cnn")
    save_optimised_graph(path, tmp_path / "model.optimised.onnx")
    float_outputs = onnx_outputs(inference_session(path), raw)
    int8_outputs = onnx_outputs(inference_session(tmp_path / "model.int8.onnx"), raw)
    optimised_outputs = onnx_outputs(inference_session(tmp_path / "model.optimised.onnx"), raw)
    assert np.allclose(optimised_outputs, float_outputs, atol=1e-5)
    assert np.abs(int8_outputs - float_outputs).max() < 0.1
    assert np.allclose(int8_outputs.sum(axis=1), 1.0, atol=1e-3)


def test_quantisation_gate_keeps_within_tolerance_and_rejects_beyond(tmp_path: Path):
    from components.deployment.optimisation import gate_quantisation

    model, raw, _, _ = tabular_model(seed=0)
    other, _, _, _ = tabular_model(seed=1)
    session = inference_session(export_onnx(model, raw, tmp_path / "a.onnx"))
    worse = inference_session(export_onnx(other, raw, tmp_path / "b.onnx"))
    labels = session.run(None, {"input": raw})[0].argmax(1)

    def accuracy(outputs):
        return float((outputs.argmax(1) == labels).mean())

    assert gate_quantisation(session, session, raw, accuracy, 0.005, "same").kept
    decision = gate_quantisation(session, worse, raw, accuracy, 0.005, "other")
    assert decision.float_score == 1.0 and decision.int8_score < 0.995
    assert not decision.kept and "INT8 rejected" in decision.reason


def test_sweep_picks_threads_and_batch_size(tmp_path: Path):
    from components.deployment.optimisation import SweepRow, choose_serving_settings, plot_sweep, sweep

    rows = [
        SweepRow(1, 1, 0.10, 0.2, 10_000),
        SweepRow(32, 1, 1.00, 1.2, 32_000),
        SweepRow(128, 1, 3.80, 4.0, 33_600),
        SweepRow(1, 2, 0.20, 0.3, 5_000),
        SweepRow(128, 2, 2.00, 2.5, 64_000),
    ]
    assert choose_serving_settings(rows) == {"threads": 1, "max_batch_size": 32, "best_throughput": 33_600}
    model, raw, _, _ = tabular_model()
    measured = sweep(export_onnx(model, raw, tmp_path / "m.onnx"), raw, [1, 4], [1], seconds=0.02)
    assert [(row.batch_size, row.threads) for row in measured] == [(1, 1), (4, 1)]
    assert all(row.p50_ms > 0 and row.throughput > 0 for row in measured)
    assert plot_sweep(measured, tmp_path / "sweep.png").stat().st_size > 0
