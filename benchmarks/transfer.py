"""Transfer against learning from scratch and against the best classical baseline, on real sequences,
images and text, at 10% and 100% of each training split, in one run: the sequences here, the images in
transfer_images.py, the text in transfer_text.py (each also runs alone).

Sequences: fixed random-kernel features against learning from scratch, on sequence sets of the UCR
archive (inside the sktime wheel, the archive's own train/test splits):

- baseline: sktime's MiniRocketMultivariate (numba, outside any network) and scikit-learn's
  RidgeClassifierCV, the recipe of the MiniRocket paper;
- rocket: the platform's ``rocket`` family (components/models/rocket.py: the same kind of kernels as
  fixed 1-D convolutions inside the network) with its first portfolio configuration, a linear head
  that starts as the ridge classifier on the training sequences and is fine-tuned;
- scratch: the ``sequence`` family (dilated convolutions learned from random weights) with a mid-
  sized architecture of its space.

Both networks train with the platform's ``fit_network`` for the same number of optimiser steps
(``--steps``, as a trial on small data does), on the standardisation the platform fits; the score is
accuracy on the archive's test split. Prints one row per dataset and fraction and the mean accuracy
ratio of each network to the baseline.

    .venv/bin/python benchmarks/transfer.py [--parts sequences images text] [--datasets GunPoint ArrowHead ItalyPowerDemand]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
import torch

from components.data.preparation import Preprocessor
from components.models.families import FAMILIES, build_network, split_parameters
from components.training.fit import fit_network, predict

SCRATCH = {
    "depth": 2,
    "block1_op": "conv5",
    "block1_skip": "residual",
    "block2_op": "conv5",
    "block2_skip": "residual",
    "width": 64,
    "dropout": 0.1,
}
SCRATCH_TRAINING = {"learning_rate": 3e-3, "weight_decay": 1e-4}
BATCH_SIZE = 32


def archive_split(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    from sktime.datasets import load_UCR_UEA_dataset

    features, labels = load_UCR_UEA_dataset(name, split=split, return_X_y=True, return_type="numpy3D")
    return features.astype(np.float32), labels.astype(str)


def subsample(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """A stratified share of the training split, at least two of each class."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        chosen.extend(members[: max(2, round(fraction * len(members)))])
    return np.sort(np.array(chosen))


def minirocket_ridge(train_x, train_y, test_x, test_y) -> float:
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sktime.transformations.panel.rocket import MiniRocketMultivariate

    transform = MiniRocketMultivariate(random_state=0)
    train_features = transform.fit_transform(train_x)
    classifier = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    classifier.fit(train_features, train_y)
    return float((classifier.predict(transform.transform(test_x)) == test_y).mean())


def network_accuracy(family: str, architecture: dict, training: dict, train, test, steps: int) -> float:
    (train_x, train_y), (test_x, test_y) = train, test
    sequences = np.transpose(train_x, (0, 2, 1))  # the platform's (samples, time, channels)
    preprocessor = Preprocessor.fit(sequences, "sequence")
    encoded = preprocessor.transform(sequences)
    classes, targets = np.unique(train_y, return_inverse=True)
    torch.manual_seed(0)
    network = build_network(family, list(encoded.shape[1:]), len(classes), architecture)
    batches = math.ceil(len(targets) / BATCH_SIZE)
    fitted = fit_network(
        network,
        "classification",
        (encoded, targets),
        (encoded, targets),  # a fixed configuration: the last epoch is kept, the validation only logs
        training,
        max_epochs=max(1, math.ceil(steps / batches)),
        batch_size=BATCH_SIZE,
        seed=0,
    )
    outputs = predict(fitted.network.eval(), preprocessor.transform(np.transpose(test_x, (0, 2, 1))))
    return float((classes[outputs.argmax(1)] == test_y).mean())


def timed(function, *arguments) -> tuple[float, float]:
    started = time.perf_counter()
    value = function(*arguments)
    return value, time.perf_counter() - started


def sequence_rows(datasets: list[str], fractions: list[float], steps: int) -> pd.DataFrame:
    rocket_architecture, rocket = split_parameters(FAMILIES["rocket"], FAMILIES["rocket"].portfolio[0])
    warm = archive_split(datasets[0], "train")
    minirocket_ridge(*warm, *warm)  # numba compiles MiniRocket's kernels once: not a cost of the first dataset
    rows = []
    for name in datasets:
        train_x, train_y = archive_split(name, "train")
        test = archive_split(name, "test")
        for fraction in fractions:
            chosen = subsample(train_y, fraction)
            train = (train_x[chosen], train_y[chosen])
            baseline, baseline_seconds = timed(minirocket_ridge, *train, *test)
            fixed, fixed_seconds = timed(network_accuracy, "rocket", rocket_architecture, rocket, train, test, steps)
            scratch, scratch_seconds = timed(network_accuracy, "sequence", SCRATCH, SCRATCH_TRAINING, train, test, steps)
            rows.append(
                {
                    "dataset": name,
                    "fraction": fraction,
                    "train": len(chosen),
                    "test": len(test[1]),
                    "minirocket_ridge": baseline,
                    "rocket": fixed,
                    "scratch": scratch,
                    "seconds_ridge": baseline_seconds,
                    "seconds_rocket": fixed_seconds,
                    "seconds_scratch": scratch_seconds,
                }
            )
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1, float_format="%.3f"), flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format="%.3f"))
    for fraction, group in table.groupby("fraction"):
        print(
            f"sequences, {fraction:.0%} of the training split: accuracy / MiniRocket+ridge's, mean over {len(group)} datasets: "
            f"rocket {(group.rocket / group.minirocket_ridge).mean():.3f}, scratch {(group.scratch / group.minirocket_ridge).mean():.3f}"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=["sequences", "images", "text"], default=["sequences", "images", "text"])
    parser.add_argument("--datasets", nargs="+", default=["GunPoint", "ArrowHead", "ItalyPowerDemand"], help="sequence sets")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 1.0])
    parser.add_argument(
        "--steps", type=int, default=None, help="optimiser steps of each network (default: 250 sequences, 300 else)"
    )
    arguments = parser.parse_args()
    started = time.perf_counter()
    if "sequences" in arguments.parts:
        print("== sequences: UCR archive, MiniRocket + ridge against the rocket family and the sequence family", flush=True)
        sequence_rows(arguments.datasets, arguments.fractions, arguments.steps or 250)
    if "images" in arguments.parts:
        import transfer_images

        print("\n== images: MNIST, RBF SVM against the cnn family and the efficientnet family", flush=True)
        transfer_images.run(arguments.fractions, arguments.steps or 300)
    if "text" in arguments.parts:
        import transfer_text

        print(
            "\n== text: Amazon fine-food reviews, TF-IDF + logistic regression against the text family and the minilm family",
            flush=True,
        )
        transfer_text.run(arguments.fractions, arguments.steps or 300, list(transfer_text.TRANSFER))
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
