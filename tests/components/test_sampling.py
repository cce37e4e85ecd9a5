"""A search trial over a large split learns from a sample its time cap can hold."""

import numpy as np
import pytest
import torch
from torch import nn

from components.search.sampling import MIN_SAMPLE_ROWS, STEP_SECONDS, Speed, affordable_share, within_time
from components.training.batches import TransformedRows


def test_the_share_is_what_the_epochs_can_cover_in_the_time():
    speed = Speed(train=1e-4, evaluate=1e-5)  # an epoch over 100,000 + 10,000 rows: 10.1 s, and 100 steps' overhead
    epoch = 10.1 + 100 * STEP_SECONDS
    share = affordable_share(speed, epochs=10, seconds=5 * epoch, train_rows=100_000, validation_rows=10_000, batch_size=1000)
    assert share == pytest.approx(0.4)
    assert (
        affordable_share(speed, epochs=10, seconds=20 * epoch, train_rows=100_000, validation_rows=10_000, batch_size=1000) == 1.0
    )


def test_a_large_split_is_sampled_by_class_and_a_longer_cap_gets_a_larger_sample():
    rng = np.random.default_rng(0)
    rows = 40_000
    targets = rng.choice(3, rows, p=[0.7, 0.25, 0.05])
    raw = rng.normal(size=(rows, 8)).astype(np.float32)
    train = (TransformedRows(raw, lambda features: features * 2.0), targets)
    validation = (raw[:8000], targets[:8000])
    network = nn.Sequential(nn.Linear(8, 512), nn.ReLU(), nn.Linear(512, 3))
    weights = {name: value.clone() for name, value in network.state_dict().items()}

    def sampled(seconds: float) -> tuple[tuple, tuple]:
        return within_time(network, train, validation, 256, epochs=20, seconds=seconds, seed=0, classification=True)

    (inputs, chosen), (_, validation_targets) = sampled(1.0)
    assert MIN_SAMPLE_ROWS <= len(chosen) < rows and len(validation_targets) < 8000
    assert np.abs(np.bincount(chosen) / len(chosen) - np.bincount(targets) / rows).max() < 0.01
    assert isinstance(inputs, TransformedRows) and np.array_equal(inputs[:3], np.asarray(inputs.raw[:3]) * 2.0)
    (_, longer), _ = sampled(8.0)
    assert len(longer) > 2 * len(chosen) or len(longer) == rows
    assert sampled(float("inf"))[0] is train  # time for every epoch: the whole split
    assert all(torch.equal(value, weights[name]) for name, value in network.state_dict().items())
