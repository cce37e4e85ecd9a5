"""Splits read through memory maps and training inputs made network-ready a batch at a time."""

import tracemalloc
from pathlib import Path

import numpy as np
import torch
from torch import nn

from components.data.mapped_npz import load_mapped
from components.data.preparation import SPLITS, Splits
from components.training.batches import TransformedRows
from components.training.fit import fit_network, predict


def _splits(rows: int, seed: int) -> Splits:
    rng = np.random.default_rng(seed)
    return Splits(
        features={split: rng.integers(0, 256, (rows, 1, 28, 28), dtype=np.uint8) for split in SPLITS},
        targets={split: rng.integers(0, 10, rows) for split in SPLITS},
        sample_ids={split: np.array([f"{split}{index}" for index in range(rows)]) for split in SPLITS},
    )


def test_splits_are_mapped_read_only_and_a_rewrite_leaves_a_live_mapping_intact(tmp_path: Path):
    path = tmp_path / "splits.npz"
    first = _splits(50, seed=0)
    first.save(path)
    mapped = Splits.load(path)
    assert isinstance(mapped.features["train"], np.memmap)
    assert np.array_equal(mapped.features["train"], first.features["train"])
    assert list(mapped.sample_ids["test"][:2]) == ["test0", "test1"]
    assert not mapped.features["train"].flags.writeable
    _splits(50, seed=1).save(path)  # the next run's splits, while the first are still mapped
    assert np.array_equal(mapped.features["train"], first.features["train"])
    assert not np.array_equal(Splits.load(path).features["train"], first.features["train"])
    assert [file.name for file in tmp_path.iterdir()] == ["splits.npz"]
    np.savez_compressed(tmp_path / "compressed.npz", x=first.targets["train"])  # read whole, not mapped
    assert np.array_equal(load_mapped(tmp_path / "compressed.npz")["x"], first.targets["train"])


def test_training_holds_one_batch_of_network_ready_inputs_not_the_whole_split(tmp_path: Path):
    rows = 20_000
    splits = _splits(rows, seed=0)
    splits.save(tmp_path / "splits.npz")
    mapped = Splits.load(tmp_path / "splits.npz")

    def transform(images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) / 255.0

    train = TransformedRows(mapped.features["train"], transform)
    assert train.shape == (rows, 1, 28, 28)
    assert np.array_equal(train[[3, 1]], transform(splits.features["train"][[3, 1]]))
    network = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    whole = rows * 28 * 28 * 4  # a network-ready copy of the training split: 63 MB
    tracemalloc.start()
    fit_network(
        network,
        "classification",
        (train, mapped.targets["train"]),
        (TransformedRows(mapped.features["validation"][:512], transform), mapped.targets["validation"][:512]),
        {"learning_rate": 1e-3},
        max_epochs=1,
        batch_size=512,
        seed=0,
    )
    outputs = predict(network, train)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < whole / 4, f"training and prediction allocated {peak / 1e6:.0f} MB at most"
    with torch.no_grad():
        assert np.allclose(outputs[:100], network(torch.from_numpy(transform(splits.features["train"][:100]))).numpy(), atol=1e-5)
