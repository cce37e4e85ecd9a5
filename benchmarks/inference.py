"""Inference speed of the trained default model: eager PyTorch, ONNX Runtime, ONNX Runtime INT8.

Run after `make run` (or any `dlautoml run`), from the project folder:

    .venv/bin/python benchmarks/inference.py [--threads 1] [--seconds 1.0]

All three run in this one process with the same thread count; the ratios are against eager PyTorch
measured in the same run. A second table quantises the same ONNX model with 8- or 7-bit
(``reduce_range``), per-tensor or per-channel weights on this processor: test score, largest
difference from float32 and class agreement on the test split, and batch-1 latency.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.data.preparation import Splits  # noqa: E402
from components.deployment.onnx_export import INPUT_NAME, inference_session  # noqa: E402
from components.deployment.processor import processor_features  # noqa: E402
from components.manifests import DeploymentManifest, PreparationManifest, TaskManifest, TrainingManifest  # noqa: E402
from components.training.fit import evaluation_metrics  # noqa: E402
from tasks.deployment import load_deployable  # noqa: E402

BATCH_SIZES = (1, 8, 32, 128, 256)


def timings(call, batch: np.ndarray, seconds: float) -> np.ndarray:
    for _ in range(5):
        call(batch)
    measured = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(measured) < 20:
        started = time.perf_counter()
        call(batch)
        measured.append(time.perf_counter() - started)
    return np.asarray(measured) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="threads for PyTorch and ONNX Runtime alike")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per batch size and runtime")
    arguments = parser.parse_args()
    root = Path(".")
    task = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    deployment = DeploymentManifest.read(root)
    splits = Splits.load(PreparationManifest.file(preparation.splits_file, root))
    inputs, targets = splits.features["test"].astype(np.float32), splits.targets["test"]
    torch.set_num_threads(arguments.threads)
    model = load_deployable(root)
    float_session = inference_session(DeploymentManifest.file(deployment.onnx_file, root), arguments.threads)
    int8_session = inference_session(DeploymentManifest.file(deployment.int8_file, root), arguments.threads)

    @torch.no_grad()
    def eager(batch):
        return model(torch.from_numpy(batch)).numpy()

    runtimes = {
        "eager PyTorch": eager,
        "ONNX Runtime": lambda batch: float_session.run(None, {INPUT_NAME: batch})[0],
        "ONNX Runtime INT8": lambda batch: int8_session.run(None, {INPUT_NAME: batch})[0],
    }
    metric = "accuracy" if task.task_type == "classification" else "r2"
    results = {}
    for name, call in runtimes.items():
        single = timings(call, inputs[:1], arguments.seconds)
        throughputs = {
            size: size / (np.median(timings(call, np.resize(inputs, (size, *inputs.shape[1:])), arguments.seconds)) / 1000)
            for size in BATCH_SIZES
        }
        best = max(throughputs, key=throughputs.get)
        outputs = np.concatenate([call(inputs[start : start + 256]) for start in range(0, len(inputs), 256)])
        results[name] = {
            "p50": float(np.percentile(single, 50)),
            "p99": float(np.percentile(single, 99)),
            "throughput": throughputs[best],
            "best_batch": best,
            "score": evaluation_metrics(task.task_type, outputs, targets)[metric],
        }
    base = results["eager PyTorch"]
    print(f"{task.modality} {task.task_type}, {len(inputs)} test inputs, {arguments.threads} thread(s)")
    print(
        f"{'runtime':<20}{'p50 ms (b=1)':>14}{'p99 ms (b=1)':>14}{'speed-up p50':>14}{'samples/s':>12}{'at batch':>10}{'x thrpt':>9}{metric:>10}"
    )
    for name, row in results.items():
        print(
            f"{name:<20}{row['p50']:>14.4f}{row['p99']:>14.4f}{base['p50'] / row['p50']:>13.1f}x"
            f"{row['throughput']:>12.0f}{row['best_batch']:>10}{row['throughput'] / base['throughput']:>8.1f}x{row['score']:>10.4f}"
        )
    print(f"deployment stage decision: {deployment.quantisation}; serving {deployment.serving_file}")
    compare_quantisation(root, inputs, targets, task.task_type, metric, arguments)
    settings = deployment.quantisation_settings
    print(f"INT8 settings: {settings.get('quantisation_settings', 'not recorded')}")
    print(f"processor: {processor_features().description()} (quantised on: {settings.get('processor', 'not recorded')})")


def compare_quantisation(root: Path, inputs: np.ndarray, targets: np.ndarray, task_type: str, metric: str, arguments) -> None:
    import tempfile

    from components.deployment.optimisation import QuantisationSettings, onnx_outputs, quantise_int8

    deployment = DeploymentManifest.read(root)
    training = TrainingManifest.read(root)
    preparation = PreparationManifest.read(root)
    calibration = Splits.load(PreparationManifest.file(preparation.splits_file, root)).features["train"][:256]
    source = DeploymentManifest.file(deployment.onnx_file, root)
    reference = onnx_outputs(inference_session(source, arguments.threads), inputs)
    print(f"\nINT8 settings on this processor ({processor_features().description()}), {training.family}:")
    print(f"{'weights':<50}{metric:>10}{'max |diff|':>12}{'agreement':>11}{'p50 ms (b=1)':>14}")
    with tempfile.TemporaryDirectory() as folder:
        for reduce_range in (False, True):
            for per_channel in (False, True):
                settings = QuantisationSettings(reduce_range, per_channel, processor_features())
                path = Path(folder) / "int8.onnx"
                quantise_int8(source, path, training.family, calibration, settings)
                session = inference_session(path, arguments.threads)
                outputs = onnx_outputs(session, inputs)
                agreement = (
                    float((outputs.argmax(1) == reference.argmax(1)).mean()) if task_type == "classification" else float("nan")
                )
                single = timings(lambda batch, run=session.run: run(None, {INPUT_NAME: batch})[0], inputs[:1], arguments.seconds)
                print(
                    f"{settings.description():<50}{evaluation_metrics(task_type, outputs, targets)[metric]:>10.4f}"
                    f"{np.abs(outputs - reference).max():>12.4f}{agreement:>11.4f}{np.percentile(single, 50):>14.4f}"
                )


if __name__ == "__main__":
    main()
