"""Stratified samples of positions: the label-error model's training rows, and the samples a search
trial takes of a large split when its time cap calls for one. NumPy only: a trial imports it."""

from __future__ import annotations

import numpy as np

MIN_CLASS_ROWS = 20


def stratified_sample(positions: np.ndarray, targets: np.ndarray, size: int, seed: int) -> np.ndarray:
    """About ``size`` of ``positions``, each class in its share but with at least ``MIN_CLASS_ROWS``
    rows (all of a smaller class: a class left out would make each of its samples look mislabelled)."""
    if len(positions) <= size:
        return positions
    rng = np.random.default_rng(seed)
    classes = targets[positions]
    kept = []
    for label in np.unique(classes):
        members = positions[classes == label]
        take = min(len(members), max(MIN_CLASS_ROWS, round(size * len(members) / len(positions))))
        kept.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(kept))
