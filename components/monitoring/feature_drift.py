"""Per-feature drift tests on tables, with alibi-detect's TabularDrift: Kolmogorov-Smirnov on numeric
columns, chi-square on categorical codes and on each numeric column's share of missing values, with a
Bonferroni correction across all of them.

A numeric column is tested twice. Its missing values sit below every value for the KS test (equal
shares of missing values then leave the test as it would be without them; NaN would make its p-value
NaN, which never flags drift), and an indicator column (missing or not) is tested with chi-square, so
that a change in the share of missing values is seen as such. Categorical codes are categories, not
numbers: code 0 (missing or unknown) is one of them.
"""

from __future__ import annotations

import numpy as np

from components.monitoring.drift import quiet_alibi

MISSING = np.finfo(np.float32).min


def _numeric(width: int, categorical: list[int]) -> list[int]:
    return [position for position in range(width) if position not in set(categorical)]


def table_view(rows: np.ndarray, categorical: list[int]) -> np.ndarray:
    """The columns the tests see: the table with missing numbers set below every value, then one
    missing-value indicator per numeric column."""
    values = np.array(rows, dtype=np.float32, copy=True).reshape(len(rows), -1)
    numeric = _numeric(values.shape[1], categorical)
    missing = np.isnan(values[:, numeric])
    values[:, numeric] = np.where(missing, MISSING, values[:, numeric])
    values[:, categorical] = np.nan_to_num(values[:, categorical], nan=0.0)
    return np.concatenate([values, missing.astype(np.float32)], axis=1)


def view_names(names: list[str], categorical: list[int]) -> list[str]:
    """A name per tested column: the table's names, then "<column> (missing share)"."""
    return list(names) + [f"{names[position]} (missing share)" for position in _numeric(len(names), categorical)]


def fit_feature_detector(reference: np.ndarray, p_value: float, categorical: list[int] | None = None):
    """The tests, fitted on the training split's raw table (numeric columns may hold NaN)."""
    quiet_alibi()
    from alibi_detect.cd import TabularDrift

    categorical = sorted(categorical or [])
    view = table_view(reference, categorical)
    width = np.asarray(reference).reshape(len(reference), -1).shape[1]
    indicators = range(width, view.shape[1])
    categories = {position: None for position in [*categorical, *indicators]}
    return TabularDrift(view, p_val=p_value, categories_per_feature=categories, correction="bonferroni")


def check_features(detector, batch: np.ndarray, names: list[str], categorical: list[int] | None = None) -> dict:
    """Per-column p-values (named as ``view_names``) and the corrected decision."""
    categorical = sorted(categorical or [])
    result = detector.predict(table_view(batch, categorical), drift_type="batch")["data"]
    p_values = np.atleast_1d(result["p_val"])
    return {
        "is_drift": bool(result["is_drift"]),
        "p_values": {name: float(value) for name, value in zip(view_names(names, categorical), p_values)},
        "threshold": float(result["threshold"]),
    }
