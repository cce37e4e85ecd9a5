"""GPU check of the search and serving paths, each against the CPU of the same machine in the same run:
the one-shot DARTS search of the image space (Lightning's ``accelerator="auto"``), training of the
chosen network with the training stage's mixed precision, and ONNX Runtime's CUDA provider.

    python benchmarks/gpu.py [--epochs 3] [--rows 8000]

On 10,000 MNIST digits (benchmarks/mnist.py; set DLAUTOML_MNIST_TARBALL to a copy of the tarball on
machines without a registry). Prints one line per figure, and the GPU/CPU ratios.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def say(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def data(rows: int):
    import numpy as np

    from components.data.mnist import load_mnist

    images, labels = load_mnist()
    order = np.random.default_rng(0).permutation(len(labels))
    images = (images[order, None] / 255.0).astype(np.float32)
    labels = labels[order].astype(np.int64)
    cut = int(rows * 0.8)
    return (images[:cut], labels[:cut]), (images[cut:rows], labels[cut:rows])


def oneshot(train, validation, epochs: int, accelerator: str):
    from components.search.oneshot import OneShotRequest, run_oneshot

    request = OneShotRequest(
        "darts",
        "classification",
        [1, 28, 28],
        10,
        train,
        validation,
        Path(tempfile.mkdtemp()),
        time.time() + 600,
        max_epochs=epochs,
        batch_size=256,
        progress=lambda line: None,
        accelerator=accelerator,
    )
    result = run_oneshot(request)
    return result, result.seconds / max(result.epochs, 1)


def mixed_precision_training(architecture, train, validation, epochs: int):
    """The training stage's fit (mixed precision on the GPU): seconds per epoch and validation accuracy."""
    from components.models import cnn_space
    from components.training.fit import fit_network, training_precision

    network = cnn_space.build([1, 28, 28], 10, architecture)
    started = time.time()
    fitted = fit_network(network, "classification", train, validation, {"learning_rate": 3e-3}, epochs, 256, 0)
    return training_precision(), (time.time() - started) / epochs, max(row["val_score"] for row in fitted.history)


def onnx_runtime(architecture, images) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from components.models import cnn_space

    network = cnn_space.build([1, 28, 28], 10, architecture).eval()
    path = Path(tempfile.mkdtemp()) / "searched.onnx"
    torch.onnx.export(
        network,
        (torch.from_numpy(images[:2]),),
        str(path),
        input_names=["x"],
        dynamic_axes={"x": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    say("onnx runtime providers", ort.get_available_providers())
    with torch.no_grad():
        expected = network(torch.from_numpy(images[:512])).numpy()
    timings = {}
    for provider in ("CUDAExecutionProvider", "CPUExecutionProvider"):
        if provider not in ort.get_available_providers():
            say(f"{provider}", "not available")
            continue
        session = ort.InferenceSession(str(path), providers=[provider])
        actual = session.run(None, {"x": images[:512]})[0]
        say(f"{provider} parity (max |difference| on 512 inputs)", f"{float(np.abs(actual - expected).max()):.2e}")
        for batch in (1, 256):
            inputs = {"x": images[:batch]}
            for _ in range(10):
                session.run(None, inputs)
            started = time.perf_counter()
            for _ in range(100):
                session.run(None, inputs)
            timings[provider, batch] = (time.perf_counter() - started) * 10  # ms per call
            say(f"{provider} batch {batch}", f"{timings[provider, batch]:.3f} ms")
    for batch in (1, 256):
        if ("CUDAExecutionProvider", batch) in timings:
            ratio = timings["CPUExecutionProvider", batch] / timings["CUDAExecutionProvider", batch]
            say(f"ONNX Runtime CUDA speed-up at batch {batch}", f"{ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=8000)
    arguments = parser.parse_args()
    import torch

    say("python", platform.python_version())
    say("torch", f"{torch.__version__}, CUDA {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        say("device", torch.cuda.get_device_name(0))
    train, validation = data(arguments.rows)
    architecture = None
    try:
        gpu, gpu_epoch = oneshot(train, validation, arguments.epochs, "auto")
        say("DARTS on the GPU", f"{gpu_epoch:.2f} s/epoch over {len(train[1])} images; chose {gpu.architecture}")
        _, cpu_epoch = oneshot(train, validation, 1, "cpu")
        say(
            f"DARTS on the CPU ({torch.get_num_threads()} threads)",
            f"{cpu_epoch:.2f} s/epoch; GPU speed-up {cpu_epoch / gpu_epoch:.1f}x",
        )
        architecture = {**gpu.architecture, "dropout": 0.0}
    except Exception as error:  # noqa: BLE001 - a check reports what it could not run and goes on
        say("DARTS check failed", repr(error))
    if architecture is None:
        from components.models import cnn_space

        architecture = cnn_space.smallest_architecture([1, 28, 28], width=16, stage2_depth=2)
    try:
        precision, seconds, accuracy = mixed_precision_training(architecture, train, validation, arguments.epochs)
        say("training on the GPU", f"precision {precision}, {seconds:.2f} s/epoch, validation accuracy {accuracy:.4f}")
    except Exception as error:  # noqa: BLE001
        say("training check failed", repr(error))
    try:
        onnx_runtime(architecture, validation[0])
    except Exception as error:  # noqa: BLE001
        say("ONNX Runtime check failed", repr(error))


if __name__ == "__main__":
    main()
