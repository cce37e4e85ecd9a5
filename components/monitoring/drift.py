"""Distribution-shift detection: alibi-detect's MMD test (PyTorch backend) on network inputs.

The detector is fitted on a sample of the preprocessed training inputs; a batch of new inputs,
preprocessed the same way, is tested against it with a permutation test.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.errors import UserInputError

# Inputs one MMD test reads, at most (a random sample of a larger batch): its permutation test holds a
# kernel matrix of (reference + batch) squared entries, and 250,000 test rows asked for 250 GB.
MAX_TESTED = 2_000


@dataclass
class DriftResult:
    p_value: float
    is_drift: bool
    distance: float
    threshold: float
    batch_size: int  # the inputs checked
    tested: int = 0  # of them, the ones the test read (at most MAX_TESTED)


def quiet_alibi() -> None:
    """Silences alibi-detect's logging and warnings (and TensorFlow's, should it be installed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("alibi_detect").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="alibi_detect")


def fit_drift_detector(reference: np.ndarray, p_value: float, permutations: int, size: int, seed: int = 0):
    """An MMD drift detector on a random sample of ``size`` reference inputs (flattened)."""
    quiet_alibi()
    from alibi_detect.cd import MMDDrift

    rows = reference.reshape(len(reference), -1).astype(np.float32)
    if len(rows) > size:
        rows = rows[np.random.default_rng(seed).choice(len(rows), size=size, replace=False)]
    return MMDDrift(rows, backend="pytorch", p_val=p_value, n_permutations=permutations, device="cpu")


def check_drift(detector, batch: np.ndarray, seed: int = 0) -> DriftResult:
    """Tests a batch of preprocessed inputs for shift away from the reference data (a random sample of
    ``MAX_TESTED`` of them when there are more)."""
    rows = batch.reshape(len(batch), -1)
    if len(rows) < 2:
        raise ValueError("a drift test needs at least two inputs")
    if len(rows) > MAX_TESTED:
        rows = rows[np.sort(np.random.default_rng(seed).choice(len(rows), MAX_TESTED, replace=False))]
    result = detector.predict(rows.astype(np.float32))["data"]
    return DriftResult(
        p_value=float(result["p_val"]),
        is_drift=bool(result["is_drift"]),
        distance=float(result["distance"]),
        threshold=float(result["threshold"]),
        batch_size=len(batch),
        tested=len(rows),
    )


def folder_checksum(folder: Path) -> str:
    """SHA-256 over a folder's files (relative names and contents, in order)."""
    digest = hashlib.sha256()
    for path in sorted(file for file in Path(folder).rglob("*") if file.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def save_drift_detector(detector, folder: Path) -> str:
    """Saves the detector with alibi-detect; returns the folder's checksum, which the stage records
    so that only this detector is ever loaded again."""
    quiet_alibi()
    from alibi_detect.saving import save_detector

    save_detector(detector, str(folder))
    return folder_checksum(folder)


def load_drift_detector(folder: Path, checksum: str | None):
    """Loads a detector the platform saved, after checking its files against ``checksum`` (alibi-detect
    unpickles parts of a saved detector, so a changed folder could run anyone's code).

    Raises:
        UserInputError: no checksum was recorded, or the files changed since.
    """
    if checksum is None:
        raise UserInputError(
            f"{folder} has no recorded checksum (written by an older release): rerun the monitoring stage "
            "(`dlautoml run` or `dvc repro`) before monitoring"
        )
    if folder_checksum(folder) != checksum:
        raise UserInputError(
            f"{folder} changed since the monitoring stage wrote it (its checksum differs): it is not loaded, since "
            "alibi-detect unpickles detectors; rerun the monitoring stage"
        )
    quiet_alibi()
    from alibi_detect.saving import load_detector

    return load_detector(str(folder))
