"""Per-feature drift on tables sees missing values and categories (issue case 2): a column with any
missing value used to get a NaN p-value, which never flags drift, and category codes were tested as
numbers with Kolmogorov-Smirnov."""

from pathlib import Path

import numpy as np

from components.monitoring.drift import load_drift_detector, save_drift_detector
from components.monitoring.feature_drift import check_features, fit_feature_detector

NAMES = ["income", "age", "colour"]
CATEGORICAL = [2]
UNIFORM = [1 / 6] * 6


def _table(rows: int, missing_share: float, colour_shares: list[float], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    table = np.column_stack(
        [
            rng.normal(50, 10, rows),
            rng.normal(40, 12, rows),
            rng.choice(np.arange(1, len(colour_shares) + 1), rows, p=colour_shares),
        ]
    ).astype(np.float32)
    table[rng.random(rows) < missing_share, 0] = np.nan
    return table


def _saved_and_loaded(tmp_path: Path):
    """The detector as the monitoring stage writes it and a later check reads it back."""
    detector = fit_feature_detector(_table(1000, 0.1, UNIFORM, seed=0), 0.05, CATEGORICAL)
    checksum = save_drift_detector(detector, tmp_path / "feature_detector")
    return load_drift_detector(tmp_path / "feature_detector", checksum)


def test_a_change_in_the_share_of_missing_values_is_drift(tmp_path: Path):
    detector = _saved_and_loaded(tmp_path)
    calm = check_features(detector, _table(200, 0.1, UNIFORM, seed=1), NAMES, CATEGORICAL)
    assert not calm["is_drift"] and all(np.isfinite(list(calm["p_values"].values()))), calm
    more_missing = check_features(detector, _table(200, 0.6, UNIFORM, seed=1), NAMES, CATEGORICAL)
    assert more_missing["is_drift"]
    assert min(more_missing["p_values"], key=more_missing["p_values"].get) == "income (missing share)"


def test_categories_are_compared_as_categories(tmp_path: Path):
    """Six colours, shares moved from every second one to its neighbour: the codes' distribution
    function barely moves (Kolmogorov-Smirnov on the codes does not reject), the counts do."""
    from scipy.stats import ks_2samp

    detector = _saved_and_loaded(tmp_path)
    reference, batch = _table(1000, 0.1, UNIFORM, seed=0), _table(300, 0.1, [0.25, 1 / 12] * 3, seed=4)
    assert ks_2samp(reference[:, 2], batch[:, 2]).pvalue > 0.05
    result = check_features(detector, batch, NAMES, CATEGORICAL)
    assert result["is_drift"] and min(result["p_values"], key=result["p_values"].get) == "colour"
    assert set(result["p_values"]) == {*NAMES, "income (missing share)", "age (missing share)"}
