"""The embedded default dataset: scikit-learn's handwritten digits as a folder of PNG images."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

DEFAULT_DATA = "data/digits"
"""Where the bundled dataset lives in a workspace (params.yaml's default data path)."""


def write_digits_images(destination: Path) -> int:
    """Writes the 1,797 8x8 digits as greyscale PNGs, one sub-folder per class.

    The folder appears complete or not at all: images go to a temporary sibling first.

    Returns:
        The number of images written (0 when the folder already exists).
    """
    destination = Path(destination)
    if destination.exists():
        return 0
    import numpy as np  # here, not at the top: the command line reads DEFAULT_DATA and must start fast
    from PIL import Image
    from sklearn.datasets import load_digits

    destination.parent.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        for index, (image, label) in enumerate(zip(pixels, digits.target)):
            class_folder = staging / str(label)
            class_folder.mkdir(exist_ok=True)
            Image.fromarray(image, mode="L").save(class_folder / f"{index:04d}.png")
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(pixels)
