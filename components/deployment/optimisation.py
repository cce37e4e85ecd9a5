"""Making the ONNX model fast on this machine: graph optimisation, INT8 quantisation behind an
accuracy gate, and a sweep of batch size and thread count that picks the serving settings."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from components import plotting
from components.deployment.onnx_export import INPUT_NAME, inference_session
from components.deployment.processor import ProcessorFeatures, processor_features
from components.models.families import FAMILIES


def save_optimised_graph(source: Path, destination: Path) -> Path:
    """Applies ONNX Runtime's graph optimisations for this hardware and saves the result."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(destination)
    options.log_severity_level = 3  # its warning that the saved graph is specific to this hardware is the point
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return Path(destination)


class _Calibration(CalibrationDataReader):
    def __init__(self, inputs: np.ndarray, batch_size: int = 32) -> None:
        self.batches = iter(
            [inputs[start : start + batch_size].astype(np.float32) for start in range(0, len(inputs), batch_size)]
        )

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {INPUT_NAME: batch}


@dataclass(frozen=True)
class QuantisationSettings:
    """How weights are quantised, and on which processor that was decided."""

    reduce_range: bool
    per_channel: bool
    processor: ProcessorFeatures

    def description(self) -> str:
        weights = "7-bit weights (reduce_range)" if self.reduce_range else "8-bit weights"
        return f"{weights}, {'per-channel' if self.per_channel else 'per-tensor'} scales"

    def tags(self) -> dict[str, str]:
        """For the manifest and the registered version: the settings and the processor they were checked on."""
        return {
            "quantisation_settings": self.description(),
            "quantisation_reduce_range": str(self.reduce_range).lower(),
            "quantisation_per_channel": str(self.per_channel).lower(),
            "processor": self.processor.description(),
        }


def safe_quantisation_settings(processor: ProcessorFeatures | None = None) -> QuantisationSettings:
    """7-bit, per-channel weights on every processor.

    Without VNNI, ONNX Runtime's U8S8 kernels can saturate with 8-bit weights (the divergence a
    seeded test showed on an AVX2-only AMD EPYC); with VNNI they do not, but the registered model is
    served wherever its user runs it, often not on the processor that quantised it. One setting that
    holds on both keeps the accuracy gate's verdict true on the serving machine too; its cost, one bit
    of weight resolution, is within the gate's tolerance on the platform's models (README,
    benchmarks/inference.py).
    """
    return QuantisationSettings(reduce_range=True, per_channel=True, processor=processor or processor_features())


def quantise_int8(
    source: Path, destination: Path, family: str, calibration_inputs: np.ndarray, settings: QuantisationSettings | None = None
) -> str:
    """INT8 weights: static (QDQ) with calibration for the convolutional image families
    (``Family.static_quantisation``), dynamic quantisation for the others.

    Returns:
        The method used, for the manifest.
    """
    settings = settings or safe_quantisation_settings()
    logging.getLogger("root").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="dlautoml-quantise-") as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        if FAMILIES[family].static_quantisation:
            quantize_static(
                str(prepared),
                str(destination),
                _Calibration(calibration_inputs),
                quant_format=QuantFormat.QDQ,
                per_channel=settings.per_channel,
                reduce_range=settings.reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            )
            return f"static (QDQ, calibrated on training inputs; {settings.description()})"
        # Recurrent layers stay in float: ONNX Runtime's dynamic quantisation targets MatMul/Gemm/Conv.
        quantize_dynamic(
            str(prepared),
            str(destination),
            weight_type=QuantType.QInt8,
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            op_types_to_quantize=["MatMul", "Gemm", "Conv"],
        )
        return f"dynamic (activations quantised at run time; {settings.description()})"


def onnx_outputs(session: ort.InferenceSession, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return np.concatenate(
        [
            session.run(None, {INPUT_NAME: inputs[start : start + batch_size].astype(np.float32)})[0]
            for start in range(0, len(inputs), batch_size)
        ]
    )


@dataclass
class QuantisationDecision:
    kept: bool
    method: str
    float_score: float
    int8_score: float
    tolerance: float

    @property
    def reason(self) -> str:
        verdict = "kept" if self.kept else "rejected"
        return (
            f"INT8 {verdict}: test score {self.int8_score:.4f} against {self.float_score:.4f} in float32 "
            f"(drop {self.float_score - self.int8_score:+.4f}, tolerance {self.tolerance:.4f})"
        )


def gate_quantisation(
    float_session: ort.InferenceSession,
    int8_session: ort.InferenceSession,
    inputs: np.ndarray,
    score: Callable[[np.ndarray], float],
    tolerance: float,
    method: str,
) -> QuantisationDecision:
    """Keeps the INT8 model only when its test score drops by no more than ``tolerance``."""
    float_score = score(onnx_outputs(float_session, inputs))
    int8_score = score(onnx_outputs(int8_session, inputs))
    return QuantisationDecision(float_score - int8_score <= tolerance, method, float_score, int8_score, tolerance)


@dataclass
class SweepRow:
    batch_size: int
    threads: int
    p50_ms: float
    p99_ms: float
    throughput: float


def sweep(model_path: Path, inputs: np.ndarray, batch_sizes: list[int], threads: list[int], seconds: float) -> list[SweepRow]:
    """Latency percentiles and throughput (samples per second) for each batch size and thread count:
    calls for ``seconds`` each, at least 10 where they take under a tenth of it, and 3 where they take
    longer (a pretrained encoder at batch 128 takes seconds a call: 13 calls per setting would hold
    the stage for many minutes)."""
    rows = []
    for thread_count in threads:
        session = inference_session(model_path, thread_count)
        for batch_size in batch_sizes:
            batch = np.resize(inputs.astype(np.float32), (batch_size, *inputs.shape[1:]))
            started = time.perf_counter()
            session.run(None, {INPUT_NAME: batch})
            fewest = 10 if time.perf_counter() - started < seconds / 10 else 3
            if fewest == 10:
                for _ in range(2):
                    session.run(None, {INPUT_NAME: batch})
            timings = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline or len(timings) < fewest:
                started = time.perf_counter()
                session.run(None, {INPUT_NAME: batch})
                timings.append(time.perf_counter() - started)
            milliseconds = np.asarray(timings) * 1000
            p50 = float(np.percentile(milliseconds, 50))
            rows.append(
                SweepRow(batch_size, thread_count, p50, float(np.percentile(milliseconds, 99)), batch_size / (p50 / 1000))
            )
    return rows


def choose_serving_settings(rows: list[SweepRow]) -> dict[str, float]:
    """Threads that give the lowest batch-1 latency; the largest batch within 90% of the best throughput
    at those threads becomes the micro-batcher's maximum batch."""
    smallest = min(row.batch_size for row in rows)
    threads = min((row for row in rows if row.batch_size == smallest), key=lambda row: row.p50_ms).threads
    at_threads = [row for row in rows if row.threads == threads]
    best = max(row.throughput for row in at_threads)
    max_batch = min(row.batch_size for row in at_threads if row.throughput >= 0.9 * best)
    return {"threads": threads, "max_batch_size": max_batch, "best_throughput": best}


def plot_sweep(rows: list[SweepRow], path: Path) -> Path:
    pyplot = plotting.pyplot()
    figure, (latency, throughput) = pyplot.subplots(1, 2, figsize=(10, 4))
    for thread_count in sorted({row.threads for row in rows}):
        selected = [row for row in rows if row.threads == thread_count]
        sizes = [row.batch_size for row in selected]
        latency.plot(sizes, [row.p50_ms for row in selected], marker="o", label=f"{thread_count} thread(s) p50")
        latency.plot(sizes, [row.p99_ms for row in selected], linestyle="--", label=f"{thread_count} thread(s) p99")
        throughput.plot(sizes, [row.throughput for row in selected], marker="o", label=f"{thread_count} thread(s)")
    for axis in (latency, throughput):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("batch size")
        axis.legend()
    latency.set_ylabel("latency (ms)")
    throughput.set_ylabel("samples per second")
    figure.suptitle("ONNX Runtime serving sweep")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return Path(path)
