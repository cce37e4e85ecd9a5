"""Sequences in an .npz honour a `split` array, as tables honour a split column (they were ignored)."""

from pathlib import Path

import numpy as np
import pytest

from components.data.preparation import encode_target, split_dataset
from components.data.sources import load_dataset
from components.errors import DataError


def _walks(path: Path, split=None) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"X": rng.normal(size=(40, 6, 2)), "y": np.array(["up", "down"] * 20)}
    if split is not None:
        arrays["split"] = np.asarray(split)
    np.savez(path, **arrays)
    return path


def test_an_npz_split_array_decides_each_sequence_split(tmp_path: Path):
    split = ["train"] * 24 + ["validation"] * 6 + ["test"] * 10
    dataset = load_dataset(_walks(tmp_path / "walks.npz", split), "sequence", "label")
    assert list(dataset.official_splits) == split
    targets = encode_target(dataset.target, "classification", ["down", "up"])
    splits = split_dataset(
        dataset.features, targets, dataset.sample_ids, "classification", 0.25, 0.15, 0, official=dataset.official_splits
    )
    assert list(splits.sample_ids["test"]) == [str(i) for i in range(30, 40)]
    assert sorted(splits.sample_ids["validation"], key=int) == [str(i) for i in range(24, 30)]


@pytest.mark.parametrize(
    "split, message",
    [
        (["train"] * 39 + ["holdout"], "holds 'holdout': use train, validation or test"),
        (["train"] * 30, "split must name one split per sequence of X (40), it has 30"),
    ],
)
def test_a_bad_npz_split_array_is_named(tmp_path: Path, split, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(_walks(tmp_path / "walks.npz", split), "sequence", "label")
