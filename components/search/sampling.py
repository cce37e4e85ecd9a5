"""The rows a search trial trains and validates on when its time cap cannot hold its epochs over the
whole splits: seeded samples (stratified by class) sized from the trial's own measured speed, so that
on a large table the trials compare configurations over their planned epochs instead of being cut
within the first one or two. The final training learns from every row, going on from the chosen
trial's weights.

Written here because the size depends on the network: a wide network gets a smaller sample than a
narrow one under the same cap. Splits of at most ``SAMPLE_FROM_ROWS`` training rows are never sampled
(nor timed)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from components.data.samples import stratified_sample

SAMPLE_FROM_ROWS = 20_000
MIN_SAMPLE_ROWS = 2_000
TIME_SHARE = 0.8  # of the seconds left, planned for the epochs (the rest: start-up leftovers, reports)
# What a training step costs beyond the network's own forward and backward pass: Lightning's loop,
# the batch drawn and made network-ready, the real loss and optimiser. Measured on 2 cores: 3.5 to 4 ms
# (an MLP of 64 or 512 units on 30 columns, batches of 256), 5 times the network's own cost for the
# small one; without it the trials' samples were twice too large for their caps.
STEP_SECONDS = 0.004


@dataclass
class Speed:
    """Seconds per row of one training step and of one evaluation (validation) pass."""

    train: float
    evaluate: float


def measure_speed(network: nn.Module, inputs, batch_size: int) -> Speed:
    """Times one training step (forward, backward, optimiser) and one evaluation pass on a batch of
    ``inputs``, after one untimed step, on a copy of ``network`` (its weights and state are kept)."""
    model = copy.deepcopy(network)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.0)
    batch = torch.from_numpy(np.ascontiguousarray(inputs[: min(batch_size, len(inputs))]))
    model.train()
    timings = []
    for _ in range(2):
        began = time.perf_counter()
        optimiser.zero_grad()
        model(batch).float().pow(2).mean().backward()  # any loss costs the same backward pass
        optimiser.step()
        timings.append(time.perf_counter() - began)
    model.eval()
    began = time.perf_counter()
    with torch.no_grad():
        model(batch)
    return Speed(timings[-1] / len(batch), (time.perf_counter() - began) / len(batch))


def affordable_share(speed: Speed, epochs: int, seconds: float, train_rows: int, validation_rows: int, batch_size: int) -> float:
    """The share of both splits whose ``epochs`` epochs (training in batches of ``batch_size``, and
    validation) fit in ``TIME_SHARE`` of ``seconds``; 1.0 when all of them fit."""
    steps = -(-train_rows // max(batch_size, 1))
    epoch_seconds = train_rows * speed.train + steps * STEP_SECONDS + validation_rows * speed.evaluate
    return min(1.0, TIME_SHARE * max(seconds, 0.0) / max(epochs * epoch_seconds, 1e-9))


def sample_positions(targets: np.ndarray, share: float, seed: int, classification: bool) -> np.ndarray:
    """About ``share`` of the positions (at least ``MIN_SAMPLE_ROWS``), each class in its share for a
    classification; sorted."""
    size = max(MIN_SAMPLE_ROWS, round(share * len(targets)))
    positions = np.arange(len(targets))
    if size >= len(targets):
        return positions
    if classification:
        return stratified_sample(positions, np.asarray(targets), size, seed)
    return np.sort(np.random.default_rng(seed).choice(positions, size, replace=False))


def within_time(
    network: nn.Module,
    train: tuple,
    validation: tuple,
    batch_size: int,
    epochs: int,
    seconds: float,
    seed: int,
    classification: bool,
) -> tuple[tuple, tuple]:
    """``train`` and ``validation`` (inputs, targets), or the same share of each (:func:`sample_positions`)
    when ``epochs`` epochs over them would not fit in ``seconds`` at ``network``'s measured speed."""
    if len(train[1]) <= SAMPLE_FROM_ROWS:
        return train, validation
    speed = measure_speed(network, train[0], batch_size)
    share = affordable_share(speed, epochs, seconds, len(train[1]), len(validation[1]), batch_size)
    if share >= 1.0:
        return train, validation

    def take(part: tuple) -> tuple:
        inputs, targets = part
        positions = sample_positions(targets, share, seed, classification)
        chosen = inputs.subset(positions) if hasattr(inputs, "subset") else inputs[positions]
        return chosen, np.asarray(targets)[positions]

    return take(train), take(validation)
