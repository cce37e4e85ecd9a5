"""Pointwise uncertainty: predictive entropy and split-conformal prediction sets (crepes).

The calibration scores come from the validation split, which never trained the weights. It did pick
the early-stopping epoch and the architecture, so its scores are exchangeable with new data only up
to that choice; the coverage check on the test split (monitoring stage) measures the effect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from crepes import ConformalClassifier, ConformalRegressor


def predictive_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of each predicted distribution, divided by log(classes): 0 is certain, 1 is uniform."""
    clipped = np.clip(probabilities, 1e-12, 1.0)
    return -(clipped * np.log(clipped)).sum(axis=1) / np.log(probabilities.shape[1])


def classification_scores(probabilities: np.ndarray) -> np.ndarray:
    """Non-conformity of every class for every input: one minus its predicted probability."""
    return 1.0 - probabilities


class ConformalCalibration:
    """Split-conformal calibration for classification (prediction sets) or regression (intervals)."""

    def __init__(self, task_type: str, calibration_scores: np.ndarray) -> None:
        self.task_type = task_type
        self.calibration_scores = np.asarray(calibration_scores, dtype=np.float64)
        self.model = ConformalClassifier() if task_type == "classification" else ConformalRegressor()
        self.model.fit(self.calibration_scores)

    @classmethod
    def from_validation(cls, task_type: str, outputs: np.ndarray, targets: np.ndarray) -> ConformalCalibration:
        """Scores of the true labels (classification) or absolute residuals (regression)."""
        if task_type == "classification":
            scores = classification_scores(outputs)[np.arange(len(targets)), targets.astype(int)]
        else:
            scores = np.abs(targets - outputs.reshape(-1))
        return cls(task_type, scores)

    def prediction_sets(self, probabilities: np.ndarray, confidence: float) -> np.ndarray:
        """Boolean (inputs, classes): the classes that the set at ``confidence`` holds."""
        sets = self.model.predict_set(classification_scores(probabilities), confidence=confidence, smoothing=False)
        return np.asarray(sets, dtype=bool)

    def intervals(self, predictions: np.ndarray, confidence: float) -> np.ndarray:
        """(inputs, 2): lower and upper bounds around regression predictions."""
        return np.asarray(self.model.predict_int(predictions.reshape(-1), confidence=confidence))

    def save(self, path: Path) -> None:
        np.save(path, self.calibration_scores)

    @classmethod
    def load(cls, task_type: str, path: Path) -> ConformalCalibration:
        return cls(task_type, np.load(path))


def set_coverage(sets: np.ndarray, labels: np.ndarray) -> float:
    return float(sets[np.arange(len(labels)), labels.astype(int)].mean())


def interval_coverage(intervals: np.ndarray, targets: np.ndarray) -> float:
    return float(((targets >= intervals[:, 0]) & (targets <= intervals[:, 1])).mean())
