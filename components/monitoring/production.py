"""Summaries of a window of served requests: utilisation and the prediction distribution."""

from __future__ import annotations

import numpy as np
from scipy import stats


def utilisation(received_at: np.ndarray, latency_ms: np.ndarray, rows: np.ndarray, window_seconds: float) -> dict[str, float]:
    """Requests and inputs per minute over the window, and latency percentiles of logged requests."""
    minutes = max(window_seconds, 1e-9) / 60.0
    if len(received_at) == 0:
        return {"requests": 0.0, "requests_per_minute": 0.0, "inputs_per_minute": 0.0}
    return {
        "requests": float(len(received_at)),
        "requests_per_minute": len(received_at) / minutes,
        "inputs_per_minute": float(rows.sum()) / minutes,
        "latency_p50_ms": float(np.percentile(latency_ms, 50)),
        "latency_p99_ms": float(np.percentile(latency_ms, 99)),
    }


def prediction_shift(predicted: np.ndarray, reference_shares: np.ndarray) -> float:
    """Chi-square p-value of the predicted-class counts against the shares seen on the test split.

    Reference shares are smoothed so that a class never predicted on the test split can still appear.
    """
    classes = len(reference_shares)
    observed = np.bincount(predicted.astype(int), minlength=classes)
    smoothed = (np.asarray(reference_shares) * len(predicted) + 0.5) / (len(predicted) + 0.5 * classes)
    expected = smoothed / smoothed.sum() * observed.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def labelled_accuracy(records: list[dict], task_type: str) -> dict[str, float]:
    """Accuracy (classification) or mean absolute error (regression) on logged rows whose true label
    arrived as feedback."""
    pairs = [
        (record["predictions"][row], label)
        for record in records
        for row, label in record.get("labels", {}).items()
        if row < len(record["predictions"])
    ]
    if not pairs:
        return {"labelled_inputs": 0.0}
    if task_type == "classification":
        correct = [prediction["label"] == str(label) for prediction, label in pairs]
        return {"labelled_inputs": float(len(pairs)), "accuracy": float(np.mean(correct))}
    errors = [abs(prediction["value"] - float(label)) for prediction, label in pairs]
    return {"labelled_inputs": float(len(pairs)), "mae": float(np.mean(errors))}
