"""One monitoring check: drift, uncertainty and the prediction distribution of a batch of inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from components.monitoring.drift import check_drift
from components.monitoring.feature_drift import check_features
from components.monitoring.production import prediction_shift
from components.monitoring.uncertainty import ConformalCalibration, predictive_entropy


@dataclass
class MonitorReference:
    """What the monitoring stage fitted on the training run's data."""

    task_type: str
    embedding_detector: object
    feature_detector: object | None
    feature_names: list[str]
    conformal: ConformalCalibration
    confidence: float
    reference_shares: list[float] = field(default_factory=list)
    categorical: list[int] = field(default_factory=list)  # positions of the tables' categorical columns


def check_batch(reference: MonitorReference, raw: np.ndarray, embeddings: np.ndarray, outputs: np.ndarray) -> dict:
    """All figures for one batch; ``drift`` is true when any shift test rejects.

    Args:
        raw: inputs as the model receives them (for per-feature tests on tables).
        embeddings: penultimate-layer features of the same inputs.
        outputs: class probabilities, or predictions for regression.
    """
    embedding = check_drift(reference.embedding_detector, embeddings)
    report: dict = {
        "inputs": len(raw),
        "embedding_mmd_p_value": embedding.p_value,
        "embedding_drift": embedding.is_drift,
    }
    drift = embedding.is_drift
    if reference.feature_detector is not None:
        features = check_features(reference.feature_detector, raw, reference.feature_names, reference.categorical)
        report["feature_drift"] = features["is_drift"]
        report["feature_p_values"] = features["p_values"]
        report["feature_min_p_value"] = min(features["p_values"].values())
        drift = drift or features["is_drift"]
    if reference.task_type == "classification":
        sets = reference.conformal.prediction_sets(outputs, reference.confidence)
        sizes = sets.sum(axis=1)
        report.update(
            {
                "mean_entropy": float(predictive_entropy(outputs).mean()),
                "mean_set_size": float(sizes.mean()),
                "uncertain_share": float((sizes != 1).mean()),
                "prediction_shift_p_value": prediction_shift(outputs.argmax(axis=1), np.asarray(reference.reference_shares)),
            }
        )
    else:
        intervals = reference.conformal.intervals(outputs, reference.confidence)
        widths = intervals[:, 1] - intervals[:, 0]
        report.update({"mean_interval_width": float(widths.mean()), "mean_prediction": float(outputs.mean())})
    report["drift"] = bool(drift)
    return report


def drift_table(report: dict, p_value: float) -> list[dict[str, str]]:
    """The check's figures as people read them: named in words, four significant digits, the threshold
    they were held to and the action taken."""
    rows = [{"figure": "decision", "value": "drift" if report.get("drift") else "no drift"}]
    rows.append({"figure": "p-value threshold", "value": f"{p_value:g} (below it: drift)"})
    rows.append({"figure": "action", "value": str(report.get("retraining", "none"))})
    for key, value in report.items():
        if isinstance(value, dict) or key in ("drift", "retraining"):
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        rows.append({"figure": key.replace("_", " "), "value": shown})
    return rows
