"""Fidelities of a multi-fidelity search: how many epochs, on how much of the training split, and
from which checkpoint a trial trains. Plain arithmetic, shared by the tuner (NNI's dispatcher), the
trials and the training stage, and where trials leave their weights."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

FIDELITY_KEY = "_fidelity"  # in a trial's parameters: rung, epochs, share of the training split, checkpoint to resume


def configuration_key(configuration: dict[str, Any]) -> str:
    """A configuration's identity, the name of its checkpoint between rungs."""
    return hashlib.sha256(json.dumps(configuration, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_folder(nni_folder: Path, fingerprint: str) -> Path:
    """Where this search's configurations keep their weights between fidelities; other searches'
    folders are removed (a configuration's weights belong to the data and settings they were trained on)."""
    parent = nni_folder / "checkpoints"
    folder = parent / fingerprint[:16]
    if parent.is_dir():
        for other in parent.iterdir():
            if other != folder:
                shutil.rmtree(other, ignore_errors=True)
    return folder


def weights_file(folder: str | Path, configuration: dict[str, Any], fidelity: dict[str, Any]) -> Path:
    """Where a trial leaves its network's weights: for the next rung of its configuration, and for the
    final training, which goes on from the chosen trial's weights."""
    return Path(folder) / f"{fidelity.get('checkpoint') or configuration_key(configuration)}.pt"


def trial_epochs(max_epochs: int, train_rows: int, batch_size: int, minimum_steps: int) -> int:
    """A full trial's epochs: ``max_epochs``, or more where the training split is so small that they
    would be fewer than ``minimum_steps`` optimiser steps (``training.trial_min_steps``; 300 rows in
    batches of 64: 50 epochs for 250 steps). Fifteen epochs of 300 rows are 75 steps, too few for a
    linear model (the simplest candidate, which small noisy tables often call for) to converge, while
    the deeper networks that fit faster would win every comparison."""
    steps_per_epoch = max(1, -(-train_rows // max(batch_size, 1)))
    return max(max_epochs, -(-minimum_steps // steps_per_epoch))


def rung_epochs(max_epochs: int, eta: int = 3, rungs: int = 3) -> list[int]:
    """Epochs at each rung, growing by ``eta`` and ending at ``max_epochs``: 15 -> [2, 5, 15]."""
    return sorted({max(1, round(max_epochs / eta**step)) for step in range(rungs)})


def rung_shares(rungs: int, train_rows: int, eta: int = 3, minimum_rows: int = 2000) -> list[float]:
    """Share of the training split at each rung: all of it on the top rung, ``eta`` times less per rung
    below, never fewer than ``minimum_rows`` (on small data every rung sees everything)."""
    floor = min(1.0, minimum_rows / max(train_rows, 1))
    return [max(floor, 1.0 / eta ** (rungs - 1 - rung)) for rung in range(rungs)]


def split_fidelity(parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's configuration and its fidelity (empty for strategies without one)."""
    configuration = {key: value for key, value in parameters.items() if key != FIDELITY_KEY}
    return configuration, dict(parameters.get(FIDELITY_KEY) or {})


def top_rung(records: list) -> int:
    """The highest rung any successful trial reached (0 for strategies without fidelities)."""
    return max((record.fidelity.get("rung", 0) for record in records if record.score is not None), default=0)


def logged_parameters(configuration: dict[str, Any], fidelity: dict[str, Any]) -> dict[str, Any]:
    """A trial's MLflow params: its configuration, and its fidelity's rung, epochs and share."""
    return {**configuration, **{f"fidelity_{key}": fidelity[key] for key in ("rung", "epochs", "share") if key in fidelity}}
