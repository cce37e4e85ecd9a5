"""A saved drift detector is loaded only if its files are the ones the monitoring stage wrote
(alibi-detect's loader unpickles: a changed folder could run anyone's code)."""

from pathlib import Path

import numpy as np
import pytest

from components.errors import UserInputError
from components.monitoring.drift import fit_drift_detector, load_drift_detector, save_drift_detector


def test_a_changed_or_unrecorded_detector_is_not_loaded(tmp_path: Path):
    reference = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    folder = tmp_path / "drift_detector"
    checksum = save_drift_detector(fit_drift_detector(reference, 0.05, 20, 50, 0), folder)
    assert load_drift_detector(folder, checksum) is not None
    with pytest.raises(UserInputError, match="no recorded checksum"):
        load_drift_detector(folder, None)
    planted = sorted(path for path in folder.rglob("*") if path.is_file())[0]
    planted.write_bytes(planted.read_bytes() + b"\n# changed")
    with pytest.raises(UserInputError, match="changed since the monitoring stage wrote it"):
        load_drift_detector(folder, checksum)
    (folder / "extra.pkl").write_bytes(b"")  # a file added is a change too
    planted.write_bytes(planted.read_bytes()[: -len(b"\n# changed")])
    with pytest.raises(UserInputError, match="changed since"):
        load_drift_detector(folder, checksum)
