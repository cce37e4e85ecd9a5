"""The final training on one process against Lightning's DDP on several (training.devices), measured in
the same run: a searched CNN of the image family, a fixed number of epochs, on real MNIST digits
(benchmarks/mnist.py says where they come from). On a machine without a GPU the processes share its
cores (each gets its share of the threads, gloo carries the gradients); with GPUs, one per process.

    .venv/bin/python benchmarks/distributed_training.py [--devices 2] [--rows 6000] [--epochs 3]

Prints each run's wall-clock, its start-up (processes, imports, process group: the time to the first
epoch's end less one epoch), the time per epoch, the optimiser steps of each process, the validation
accuracy, and the ratios against one process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.gpu import data  # noqa: E402
from components.models.families import FAMILIES, architecture_of, build_network  # noqa: E402
from components.models.joint_space import random_configuration  # noqa: E402
from components.training.distributed import fit_on_devices  # noqa: E402

SHAPE = [1, 28, 28]


def digits(rows: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """benchmarks/gpu.py's split of the digits, standardised."""
    (train, train_labels), (validation, validation_labels) = data(rows)
    return ((train - 0.13) / 0.31, train_labels), ((validation - 0.13) / 0.31, validation_labels)


def measure(devices: int, architecture: dict, train, validation, epochs: int, batch_size: int) -> dict:
    import torch

    torch.manual_seed(0)
    network = build_network("cnn", SHAPE, 10, architecture)
    ends: list[float] = []
    started = time.time()
    result = fit_on_devices(
        devices,
        network,
        lambda epoch, row: ends.append(time.time()),
        task_type="classification",
        train=train,
        validation=validation,
        hyperparameters={"learning_rate": 3e-3},
        max_epochs=epochs,
        batch_size=batch_size,
        seed=0,
    )
    wall = time.time() - started
    epoch = (ends[-1] - ends[0]) / max(len(ends) - 1, 1)
    return {
        "wall": wall,
        "epoch": epoch,
        "start": ends[0] - started - epoch,
        "steps": result.steps,
        "accuracy": result.best_score,
        "agree": result.replicas_agree,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    arguments = parser.parse_args()
    import torch

    train, validation = digits(arguments.rows)
    family = FAMILIES["cnn"]
    _, architecture, _ = architecture_of(random_configuration(family.search_space_for(SHAPE), 3), "cnn")
    parameters = sum(p.numel() for p in build_network("cnn", SHAPE, 10, architecture).parameters())
    where = f"{torch.cuda.device_count()} GPU(s)" if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"{len(train[1])} training and {len(validation[1])} validation digits; a CNN of {parameters:,} parameters; {where}")
    print(f"{arguments.epochs} epochs, {arguments.batch_size} rows a step in each process")
    figures = {}
    for devices in (1, arguments.devices):
        figures[devices] = run = measure(devices, architecture, train, validation, arguments.epochs, arguments.batch_size)
        print(
            f"{devices} process(es): {run['wall']:.1f} s in all, start-up {run['start']:.1f} s, {run['epoch']:.1f} s an epoch, "
            f"{run['steps']} steps each, validation accuracy {run['accuracy']:.4f}"
            + ("" if devices == 1 else f", replicas identical: {run['agree']}")
        )
    one, many = figures[1], figures[arguments.devices]
    print(
        f"ratio {arguments.devices} processes / 1: wall-clock {many['wall'] / one['wall']:.2f}, "
        f"per epoch {many['epoch'] / one['epoch']:.2f}; extra start-up {many['start'] - one['start']:.1f} s"
    )


if __name__ == "__main__":
    main()
