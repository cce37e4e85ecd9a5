"""A 28x28 greyscale image folder for benchmarks, made offline from scikit-learn's digits.

    .venv/bin/python benchmarks/digits28.py /tmp/digits28 --count 5000

No public 28x28 handwriting set (MNIST and its kin) installs from the package index without a
download at run time, so this writes one from the 1,797 real 8x8 digits: each image is upsampled to
20x20, then rotated (within 15 degrees), scaled (90-110%), placed at a random offset in a 28x28 frame,
its strokes thickened or thinned at random, and given a little noise. The folder holds the PNGs and
``labels.csv`` (path, label, original): ``original`` is the source digit, meant as the group column,
so that variants of one digit never straddle two splits: set ``data_preparation.group_column:
original`` in params.yaml before ``dlautoml run --data FOLDER --target label``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from sklearn.datasets import load_digits


def write_digits28(destination: Path, count: int = 5000, seed: int = 0) -> Path:
    """Writes ``count`` images and their table; returns the folder."""
    destination = Path(destination)
    (destination / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    digits = load_digits()
    rows = []
    for index in range(count):
        original = int(rng.integers(len(digits.images)))
        source = Image.fromarray(np.rint(digits.images[original] * 255 / 16).astype(np.uint8), mode="L")
        side = int(round(20 * rng.uniform(0.9, 1.1)))
        image = source.resize((side, side), Image.BICUBIC).rotate(float(rng.uniform(-15, 15)), Image.BILINEAR)
        stroke = rng.integers(3)
        if stroke == 1:
            image = image.filter(ImageFilter.MaxFilter(3))
        elif stroke == 2:
            image = image.filter(ImageFilter.GaussianBlur(0.6))
        frame = Image.new("L", (28, 28))
        frame.paste(image, (int(rng.integers(0, 29 - side)), int(rng.integers(0, 29 - side))))
        pixels = np.asarray(frame, dtype=np.float32) + rng.normal(0, 8, size=(28, 28))
        name = f"images/{index:05d}.png"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").save(destination / name)
        rows.append({"path": name, "label": int(digits.target[original]), "original": original})
    pd.DataFrame(rows).to_csv(destination / "labels.csv", index=False)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("destination", type=Path)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    print(write_digits28(arguments.destination, arguments.count, arguments.seed))


if __name__ == "__main__":
    main()
