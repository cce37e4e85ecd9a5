"""Drift detectors on the digits: false-positive rate on unshifted windows and detection rate under
Gaussian noise, small rotations and a class-prior shift, for windows of 50, 200 and 1,000 inputs.

Run after `make run` (the default digits model), from the project folder:

    .venv/bin/python benchmarks/drift.py [--null-windows 100] [--shift-windows 30]

References as in the monitoring stage: the validation split for embeddings (a network's embeddings
of its own training inputs are tighter than of new inputs) and the training split for pixels.
Windows are drawn from the test split (450 images) without replacement; windows of 1,000 cannot be,
so they are drawn with replacement and marked "*": duplicated images make a window look unlike the
reference, so their false-positive rates overstate what real traffic would give. Each detector tests
at the p-value threshold of params.yaml (monitoring.p_value). `--train-reference` shows what a
training-split reference for embeddings does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from alibi_detect.cd import KSDrift
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.config import load_params  # noqa: E402
from components.data.preparation import Splits  # noqa: E402
from components.manifests import PreparationManifest  # noqa: E402
from components.monitoring.drift import check_drift, fit_drift_detector  # noqa: E402
from tasks.deployment import load_deployable  # noqa: E402

WINDOWS = (50, 200, 1000)


def rotate(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rotated = np.empty_like(images)
    for index, image in enumerate(images):
        angle = rng.uniform(10, 20) * rng.choice([-1, 1])
        rotated[index, 0] = np.asarray(Image.fromarray(image[0].astype(np.uint8)).rotate(angle, resample=Image.BILINEAR))
    return rotated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--null-windows", type=int, default=100, help="unshifted windows per size (false-positive rate)")
    parser.add_argument("--shift-windows", type=int, default=30, help="shifted windows per size and shift (detection rate)")
    parser.add_argument("--permutations", type=int, default=100, help="MMD permutation count")
    parser.add_argument("--train-reference", action="store_true", help="fit the embedding detectors on the training split")
    arguments = parser.parse_args()
    root = Path(".")
    params = load_params(root / "params.yaml").monitoring
    preparation = PreparationManifest.read(root)
    splits = Splits.load(PreparationManifest.file(preparation.splits_file, root))
    torch.set_num_threads(1)
    model = load_deployable(root)

    def embed(raw: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.embed(torch.from_numpy(raw.astype(np.float32))).numpy()

    def standardise(raw: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.preprocess(torch.from_numpy(raw.astype(np.float32))).numpy().reshape(len(raw), -1)

    embedding_reference = splits.features["train" if arguments.train_reference else "validation"]
    pool, labels = splits.features["test"], splits.targets["test"]
    detectors = {
        "MMD on embeddings": (fit_drift_detector(embed(embedding_reference), params.p_value, arguments.permutations, 500), embed),
        "MMD on pixels": (
            fit_drift_detector(standardise(splits.features["train"]), params.p_value, arguments.permutations, 500),
            standardise,
        ),
        "KS on embeddings (Bonferroni)": (
            KSDrift(embed(embedding_reference), p_val=params.p_value, correction="bonferroni"),
            embed,
        ),
    }
    rng = np.random.default_rng(0)

    def pick(size: int, p=None) -> np.ndarray:
        return rng.choice(len(pool), size, replace=size > len(pool), p=p)

    prior = np.where(labels < 3, 1.0, 0.05)
    prior /= prior.sum()
    shifts = {
        "none": lambda size: pool[rng.choice(len(pool), size)],
        "gaussian noise": lambda size: np.clip(
            pool[rng.choice(len(pool), size)] + rng.normal(0, 40, (size, *pool.shape[1:])), 0, 255
        ),
        "rotation 10-20 deg": lambda size: rotate(pool[rng.choice(len(pool), size)], rng),
        "class prior (0-2 x20)": lambda size: pool[rng.choice(len(pool), size, p=prior)],
    }
    print(
        f"p-value threshold {params.p_value}; embedding reference: {len(embedding_reference)} "
        f"{'training' if arguments.train_reference else 'validation'} images; pixel reference: 500 training images"
    )
    print(f"{'detector':<32}{'window':>7}{'shift':>24}{'windows':>9}{'rejected':>10}{'ms/check':>10}")
    for name, (detector, transform) in detectors.items():
        for size in WINDOWS:
            for shift, draw in shifts.items():
                count = arguments.null_windows if shift == "none" else arguments.shift_windows
                rejected, seconds = 0, 0.0
                for _ in range(count):
                    window = transform(draw(size))
                    started = time.perf_counter()
                    rejected += (
                        check_drift(detector, window).is_drift if "MMD" in name else detector.predict(window)["data"]["is_drift"]
                    )
                    seconds += time.perf_counter() - started
                label = "false positives" if shift == "none" else shift
                marked = f"{size}*" if size > len(pool) or shift.startswith("class") else str(size)
                print(
                    f"{name:<32}{marked:>7}{label:>24}{count:>9}{rejected / count:>10.2f}{seconds / count * 1000:>10.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
