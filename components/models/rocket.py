"""Random-convolution-kernel features of the MiniRocket kind (Dempster, Schmidt and Webb, KDD 2021) as
a network family for sequences: fixed kernels, fitted biases, a trained linear or MLP head.

MiniRocket's 84 kernels have 9 weights, three of them 2 and six -1 (every choice of the three); each
runs at dilations spaced exponentially up to the length of the sequence, over a random subset of the
channels (MiniRocketMultivariate); each output is compared with several biases, quantiles of its
values on training data at low-discrepancy levels; a feature is the proportion of positive values
(PPV) over time. sktime's and aeon's MiniRocket compute the same transform with numba, outside the
network: written here as fixed 1-D convolutions, the transform is part of the PyTorch module, so the
exported ONNX graph takes the raw (standardised) sequence like every other family's and the served
model needs no second runtime. The one departure: every convolution pads to keep the length (MiniRocket
alternates padded and unpadded ones).

The biases are buffers, fitted from the first training batch (data-dependent initialisation, as Glow's
ActNorm does), so the network is built like the others, from shape and architecture alone, and its
state dict carries them to the final model, the checkpoint and the export.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

KERNEL_LENGTH = 9
KERNELS = tuple(itertools.combinations(range(KERNEL_LENGTH), 3))  # the positions that weigh 2: 84 kernels
MAX_DILATIONS = 32
GOLDEN_RATIO = (1 + math.sqrt(5)) / 2

ARCHITECTURE_KEYS = ("features", "head_width", "dropout")

SEARCH_SPACE = {
    "features": {"_type": "choice", "_value": [840, 2016, 4200]},
    "head_width": {"_type": "choice", "_value": [0, 128]},  # 0: a linear (logistic) head, as MiniRocket's ridge
    "dropout": {"_type": "choice", "_value": [0.0, 0.2]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 3e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3, 1e-2]},
}

# Tried first (training.portfolio): MiniRocket's own recipe (a linear model on its features, here with
# weight decay for the ridge's penalty), and a small MLP head on more features.
PORTFOLIO = (
    {"features": 2016, "head_width": 0, "dropout": 0.0, "learning_rate": 1e-2, "weight_decay": 1e-3},
    {"features": 4200, "head_width": 128, "dropout": 0.2, "learning_rate": 3e-3, "weight_decay": 1e-4},
)


def dilations(length: int, features: int) -> tuple[list[int], list[int]]:
    """MiniRocket's dilations for a sequence length and its count of biases per kernel at each."""
    per_kernel = max(1, features // len(KERNELS))
    most = min(per_kernel, MAX_DILATIONS)
    exponent = math.log2(max(length - 1, 1) / (KERNEL_LENGTH - 1))
    values, counts = np.unique(np.floor(np.logspace(0, max(exponent, 0.0), most, base=2)).astype(int), return_counts=True)
    counts = (counts * per_kernel / most).astype(int)
    counts[: per_kernel - counts.sum()] += 1  # MiniRocket's remainder goes to the smallest dilations
    return values.tolist(), counts.tolist()


class MiniRocketFeatures(nn.Module):
    """(samples, time, channels) to (samples, features) proportions of positive values; nothing trained."""

    def __init__(self, length: int, channels: int, features: int, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.dilations, self.counts = dilations(length, features)
        pattern = -np.ones((len(KERNELS), KERNEL_LENGTH), dtype=np.float32)
        for index, positions in enumerate(KERNELS):
            pattern[index, list(positions)] = 2.0
        for number, count in enumerate(self.counts):
            # Each kernel reads 1 to 9 channels at this dilation, as many as MiniRocketMultivariate draws.
            mask = np.zeros((len(KERNELS), channels), dtype=np.float32)
            most = min(channels, KERNEL_LENGTH)
            for kernel in range(len(KERNELS)):
                chosen = int(2 ** rng.uniform(0, math.log2(most + 1)))
                mask[kernel, rng.choice(channels, size=max(1, min(chosen, most)), replace=False)] = 1.0
            weight = torch.from_numpy(pattern[:, None, :] * mask[:, :, None])
            self.register_buffer(f"weight{number}", weight)
            self.register_buffer(f"bias{number}", torch.zeros(len(KERNELS), count))
            start = sum(self.counts[:number])  # low-discrepancy quantile levels, across dilations too
            levels = (np.arange(start, start + count) + 1) * GOLDEN_RATIO % 1
            self.register_buffer(f"levels{number}", torch.from_numpy(levels.astype(np.float32)))
        self.register_buffer("fitted", torch.tensor(False))
        self.size = len(KERNELS) * sum(self.counts)

    def _convolve(self, sequences: torch.Tensor, number: int) -> torch.Tensor:
        dilation = self.dilations[number]
        padding = (KERNEL_LENGTH - 1) * dilation // 2
        return functional.conv1d(sequences, getattr(self, f"weight{number}"), padding=padding, dilation=dilation)

    @torch.no_grad()
    def fit(self, sequences: torch.Tensor) -> None:
        """Sets each kernel's biases at each dilation to quantiles of its output on one training
        sequence drawn at random, as MiniRocket does (the spread of examples varies the features)."""
        generator = torch.Generator().manual_seed(self.seed)
        sequences = sequences.transpose(1, 2)
        kernels = torch.arange(len(KERNELS), device=sequences.device)
        for number in range(len(self.dilations)):
            drawn = torch.randint(len(sequences), (len(KERNELS),), generator=generator)
            # (kernels, time); in half precision under autocast, which torch.quantile does not take
            outputs = self._convolve(sequences, number)[drawn.to(kernels.device), kernels].float()
            biases = torch.quantile(outputs, getattr(self, f"levels{number}"), dim=1).T
            getattr(self, f"bias{number}").copy_(biases)
        self.fitted.fill_(True)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        if self.training and not bool(self.fitted):
            self.fit(sequences)
        sequences = sequences.transpose(1, 2)
        features = []
        for number in range(len(self.dilations)):
            outputs = self._convolve(sequences, number).unsqueeze(2)  # (samples, kernels, 1, time)
            positive = outputs > getattr(self, f"bias{number}").unsqueeze(-1)
            features.append(positive.float().mean(dim=-1).flatten(1))
        return torch.cat(features, dim=1)


class RocketNetwork(nn.Module):
    """The fixed features, standardised by batch norm, then a linear head (``head_width`` 0) or one
    hidden layer of that width."""

    def __init__(self, input_shape, output_size: int, features: int, head_width: int, dropout: float) -> None:
        super().__init__()
        length, channels = input_shape
        self.transform = MiniRocketFeatures(int(length), int(channels), int(features))
        layers: list[nn.Module] = [nn.BatchNorm1d(self.transform.size), nn.Dropout(dropout)]
        size = self.transform.size
        if head_width:
            layers += [nn.Linear(size, head_width), nn.ReLU(), nn.Dropout(dropout)]
            size = head_width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, output_size)
        self.embedding_size = size

    def embed(self, sequences):
        """What the head sees (monitoring tests it for drift)."""
        return self.body(self.transform(sequences))

    def forward(self, sequences):
        return self.head(self.embed(sequences))


def build(input_shape, output_size: int, architecture: dict[str, Any], **_) -> nn.Module:
    return RocketNetwork(
        input_shape,
        output_size,
        int(architecture["features"]),
        int(architecture["head_width"]),
        float(architecture["dropout"]),
    )
