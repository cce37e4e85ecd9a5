from pathlib import Path

import numpy as np
import torch

from components.monitoring.drift import check_drift, fit_drift_detector, load_drift_detector, save_drift_detector


def test_detects_a_mean_shift_and_not_a_resample(tmp_path: Path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(400, 6)).astype(np.float32)
    detector = fit_drift_detector(reference, p_value=0.05, permutations=50, size=200, seed=0)
    unshifted = check_drift(detector, rng.normal(size=(150, 6)).astype(np.float32))
    shifted = check_drift(detector, rng.normal(0.7, 1.0, size=(150, 6)).astype(np.float32))
    assert not unshifted.is_drift and unshifted.p_value > 0.05
    assert shifted.is_drift and shifted.p_value <= 0.05
    checksum = save_drift_detector(detector, tmp_path / "detector")
    again = check_drift(
        load_drift_detector(tmp_path / "detector", checksum), rng.normal(0.7, 1.0, size=(150, 6)).astype(np.float32)
    )
    assert again.is_drift


def test_a_large_batch_is_tested_on_a_sample_of_bounded_size():
    """250,000 inputs would need a 250 GB kernel matrix: the test reads MAX_TESTED of them at random."""
    from components.monitoring.drift import MAX_TESTED

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    detector = fit_drift_detector(rng.normal(size=(400, 6)).astype(np.float32), p_value=0.05, permutations=50, size=200)
    unshifted = check_drift(detector, rng.normal(size=(250_000, 6)).astype(np.float32))
    shifted = check_drift(detector, rng.normal(0.3, 1.0, size=(250_000, 6)).astype(np.float32))
    assert (unshifted.batch_size, unshifted.tested) == (250_000, MAX_TESTED)
    assert not unshifted.is_drift and shifted.is_drift
