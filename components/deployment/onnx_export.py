"""ONNX export with a dynamic batch axis, the parity check against PyTorch, and latency."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from components.deployment.wrapper import DeployableModel
from components.errors import QualityGateError

INPUT_NAME = "input"


def export_onnx(model: DeployableModel, example: np.ndarray, path: Path) -> Path:
    """Exports with the batch axis dynamic, then validates the graph with ``onnx.checker``."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.from_numpy(example[:2].astype(np.float32)),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[model.output_name],
            dynamic_axes={INPUT_NAME: {0: "batch"}, model.output_name: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    return Path(path)


def inference_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass
class ParityReport:
    max_absolute_difference: float
    class_agreement: float
    samples: int
    non_finite: int = 0  # inputs whose output holds NaN or infinity in PyTorch or ONNX Runtime


@torch.no_grad()
def check_parity(
    model: DeployableModel, session: ort.InferenceSession, raw: np.ndarray, tolerance: float, batch_size: int = 256
) -> ParityReport:
    """Compares ONNX Runtime with PyTorch on every given input.

    Raises:
        QualityGateError: an output is not finite (NaN compares as no difference and argmaxes to
            class 0 on both sides, so it would pass unseen), outputs differ by more than
            ``tolerance``, or a predicted class differs.
    """
    model.eval()
    largest, agreeing, non_finite = 0.0, 0, 0
    for start in range(0, len(raw), batch_size):
        batch = raw[start : start + batch_size].astype(np.float32)
        expected = model(torch.from_numpy(batch)).numpy()
        actual = session.run(None, {INPUT_NAME: batch})[0]
        finite = np.isfinite(expected.reshape(len(batch), -1)).all(1) & np.isfinite(actual.reshape(len(batch), -1)).all(1)
        non_finite += int(np.sum(~finite))
        if finite.any():
            largest = max(largest, float(np.max(np.abs(expected[finite] - actual[finite]))))
        if model.task_type == "classification":
            agreeing += int(np.sum(expected.argmax(1) == actual.argmax(1)))
        else:
            agreeing += len(batch)
    report = ParityReport(largest, agreeing / len(raw), len(raw), non_finite)
    if non_finite:
        raise QualityGateError(
            f"{non_finite} of {report.samples} test inputs give outputs that are not finite (NaN or infinity) in PyTorch "
            "or ONNX Runtime: the network is numerically broken for them and would answer them with errors; "
            "retrain (a lower learning rate, or the constant schedule) or report the inputs"
        )
    if report.max_absolute_difference > tolerance or report.class_agreement < 1.0:
        raise QualityGateError(
            f"ONNX Runtime disagrees with PyTorch on {report.samples} test inputs: max |difference| "
            f"{report.max_absolute_difference:.2e} (tolerance {tolerance:.0e}), class agreement {report.class_agreement:.4f}"
        )
    return report


MAX_LATENCY_SECONDS = 10.0


def _percentiles(timings: list[float]) -> dict[str, float]:
    milliseconds = np.asarray(timings) * 1000.0
    return {"p50_ms": float(np.percentile(milliseconds, 50)), "p99_ms": float(np.percentile(milliseconds, 99))}


def measure_latency(
    model: DeployableModel,
    session: ort.InferenceSession,
    raw: np.ndarray,
    batch_size: int,
    repeats: int,
    threads: int,
    max_seconds: float = MAX_LATENCY_SECONDS,
) -> dict[str, float]:
    """p50/p99 latency of ONNX Runtime and of eager PyTorch at one batch size, same thread count:
    ``repeats`` timed calls after a tenth as many warm-up calls, each engine stopping early once it has
    spent ``max_seconds`` (a pretrained encoder at batch 64 takes seconds a call on one thread, and 200
    of them would hold the stage for half an hour); ``*_calls`` says how many were timed."""
    batch = np.resize(raw.astype(np.float32), (batch_size, *raw.shape[1:]))
    tensor = torch.from_numpy(batch)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    results: dict[str, float] = {}
    try:
        for name, call in (
            ("onnxruntime", lambda: session.run(None, {INPUT_NAME: batch})),
            ("pytorch", lambda: model(tensor)),
        ):
            with torch.no_grad():
                started = time.perf_counter()
                for _ in range(max(3, repeats // 10)):
                    call()
                    if time.perf_counter() - started > max_seconds / 10:
                        break
                timings: list[float] = []
                started = time.perf_counter()
                while len(timings) < repeats and (len(timings) < 3 or time.perf_counter() - started < max_seconds):
                    begun = time.perf_counter()
                    call()
                    timings.append(time.perf_counter() - begun)
            for key, value in _percentiles(timings).items():
                results[f"{name}_{key}"] = value
            results[f"{name}_calls"] = len(timings)
    finally:
        torch.set_num_threads(previous_threads)
    results["speedup_p50"] = results["pytorch_p50_ms"] / results["onnxruntime_p50_ms"]
    return results
