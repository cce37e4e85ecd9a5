"""Random-convolution-kernel features of the MiniRocket kind (Dempster, Schmidt and Webb, KDD 2021) as
a network family for sequences: fixed kernels, fitted biases, a trained linear or MLP head.

MiniRocket's 84 kernels have 9 weights, three of them 2 and six -1 (every choice of the three); each
runs at dilations spaced exponentially up to the length of the sequence, over a random subset of the
channels (MiniRocketMultivariate); each output is compared with several biases, quantiles of its
values on training data at low-discrepancy levels; a feature is the proportion of positive values
(PPV) over time, over the whole padded output for half of the (dilation, kernel) pairs and over the
positions that need no padding for the other half, alternately, as MiniRocket does. sktime's and aeon's
MiniRocket compute the same transform with numba, outside the network: written here as fixed 1-D
convolutions, the transform is part of the PyTorch module, so the exported ONNX graph takes the raw
(standardised) sequence like every other family's and the served model needs no second runtime.

The biases are buffers, fitted from training data before training (data-dependent initialisation, as
Glow's ActNorm does; from the first training batch where nothing called ``initialise_from_data``), so the
network is built like the others, from shape and architecture alone, and its state dict carries them to
the final model, the checkpoint and the export. So is the features' standardisation; a linear head
starts as MiniRocket's ridge classifier on them and is fine-tuned with cross-entropy from there.
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
    "features": {"_type": "choice", "_value": [840, 2016, 4200, 9996]},  # 9,996: MiniRocket's default
    "head_width": {"_type": "choice", "_value": [0, 128]},  # 0: a linear (logistic) head, as MiniRocket's ridge
    "dropout": {"_type": "choice", "_value": [0.0, 0.2]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-4, 3e-2]},  # low: a ridge head starts near its best
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3, 1e-2]},
}

# Tried first (training.portfolio): MiniRocket's own recipe (a linear head that starts as its ridge
# classifier, see RocketNetwork.initialise_from_data) fine-tuned at a low learning rate, and a small MLP
# head on more features.
PORTFOLIO = (
    {"features": 2016, "head_width": 0, "dropout": 0.0, "learning_rate": 1e-3, "weight_decay": 1e-3},
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
            # Low-discrepancy quantile levels over every feature in MiniRocket's order (dilation, kernel,
            # bias), so that the kernels at one dilation compare with different quantiles.
            start = len(KERNELS) * sum(self.counts[:number])
            levels = (np.arange(start, start + len(KERNELS) * count) + 1) * GOLDEN_RATIO % 1
            self.register_buffer(f"levels{number}", torch.from_numpy(levels.reshape(len(KERNELS), count).astype(np.float32)))
            # MiniRocket's alternation: these kernels' proportions count only the unpadded positions.
            unpadded = (number + np.arange(len(KERNELS))) % 2 == 1
            self.register_buffer(f"unpadded{number}", torch.from_numpy(unpadded)[:, None])
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
            levels = getattr(self, f"levels{number}")
            biases = torch.stack([torch.quantile(row, level) for row, level in zip(outputs, levels)])
            getattr(self, f"bias{number}").copy_(biases)
        self.fitted.fill_(True)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        sequences = sequences.transpose(1, 2)
        features = []
        for number in range(len(self.dilations)):
            outputs = self._convolve(sequences, number).unsqueeze(2)  # (samples, kernels, 1, time)
            positive = (outputs > getattr(self, f"bias{number}").unsqueeze(-1)).float()
            proportions = positive.mean(dim=-1)
            padding = (KERNEL_LENGTH - 1) * self.dilations[number] // 2
            if padding and positive.shape[-1] > 2 * padding:
                inner = positive[..., padding : positive.shape[-1] - padding].mean(dim=-1)
                proportions = torch.where(getattr(self, f"unpadded{number}"), inner, proportions)
            features.append(proportions.flatten(1))
        return torch.cat(features, dim=1)


INITIALISATION_ROWS = 2048  # training rows that fit the biases, the standardisation and the ridge head
RIDGE_ALPHAS = np.logspace(-3, 3, 10)  # RidgeClassifierCV's penalties in the MiniRocket paper


class Standardise(nn.Module):
    """Fixed per-feature standardisation, fitted on training features (the features are fixed too, so
    statistics of the training split serve better than a batch's)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("scale", torch.ones(size))

    @torch.no_grad()
    def fit(self, features: torch.Tensor) -> None:
        self.mean.copy_(features.mean(dim=0))
        self.scale.copy_(1.0 / features.std(dim=0).clamp_min(1e-3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) * self.scale


class RocketNetwork(nn.Module):
    """The fixed features, standardised, then a linear head (``head_width`` 0) or one hidden layer of
    that width."""

    def __init__(self, input_shape, output_size: int, features: int, head_width: int, dropout: float) -> None:
        super().__init__()
        length, channels = input_shape
        self.transform = MiniRocketFeatures(int(length), int(channels), int(features))
        self.standardise = Standardise(self.transform.size)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        size = self.transform.size
        if head_width:
            layers += [nn.Linear(size, head_width), nn.ReLU(), nn.Dropout(dropout)]
            size = head_width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, output_size)
        self.embedding_size = size

    @torch.no_grad()
    def initialise_from_data(self, inputs: np.ndarray, targets: np.ndarray, task_type: str) -> None:
        """Data-dependent initialisation before training (``fit_network`` calls it), from up to
        ``INITIALISATION_ROWS`` training rows: the kernels' biases, the features' standardisation and,
        for a linear head, MiniRocket's own recipe as its starting weights: scikit-learn's ridge with the
        penalty chosen by leave-one-out (RidgeClassifierCV, RidgeCV for a regression), its decision
        values scaled to the temperature that fits the leave-one-out ones best under cross-entropy.
        Training then goes on from there. Nothing happens to weights that arrive trained (a trial's,
        a registered model's)."""
        if bool(self.transform.fitted):
            return
        rows = np.sort(np.random.default_rng(self.transform.seed).permutation(len(targets))[:INITIALISATION_ROWS])
        sequences = torch.as_tensor(np.asarray(inputs[rows]), dtype=torch.float32)
        self.transform.fit(sequences)
        features = torch.cat([self.transform(chunk) for chunk in sequences.split(256)])
        self.standardise.fit(features)
        if self.head.in_features == self.transform.size:
            ridge_head(self.head, self.standardise(features).numpy(), np.asarray(targets)[rows], task_type)

    def embed(self, sequences):
        """What the head sees (monitoring tests it for drift)."""
        if self.training and not bool(self.transform.fitted):  # nothing initialised it: the first batch does
            self.transform.fit(sequences)
            self.standardise.fit(self.transform(sequences))
        return self.body(self.standardise(self.transform(sequences)))

    def forward(self, sequences):
        return self.head(self.embed(sequences))


def ridge_head(head: nn.Linear, features: np.ndarray, targets: np.ndarray, task_type: str) -> None:
    """Sets a linear layer to ridge regression's solution on standardised features: one-vs-rest on
    ±1 targets for classes (scaled by the temperature that minimises the cross-entropy of the
    leave-one-out decision values), on the (standardised) target for a regression."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV

    if task_type != "classification":
        ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(features, targets.reshape(len(targets), -1))
        head.weight.copy_(torch.as_tensor(ridge.coef_.reshape(head.weight.shape), dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(np.ravel(ridge.intercept_), dtype=torch.float32))
        return
    present = np.unique(targets)
    if len(present) < 2:
        return  # nothing to separate: the head keeps its random start
    ridge = RidgeClassifierCV(alphas=RIDGE_ALPHAS, store_cv_results=True).fit(features, targets)
    weight, bias = ridge.coef_, ridge.intercept_
    chosen = list(RIDGE_ALPHAS).index(ridge.alpha_)
    held_out = ridge.cv_results_[..., chosen]  # leave-one-out decision values, (rows, outputs)
    if len(present) == 2:  # one decision value d: logits -d/2 and d/2 for the two classes
        weight, bias = np.vstack([-weight / 2, weight / 2]), np.concatenate([-bias / 2, bias / 2])
        held_out = np.hstack([-held_out / 2, held_out / 2])
    codes = np.searchsorted(present, targets)

    def loss(temperature: float) -> float:
        return -float(log_softmax(temperature * held_out, axis=1)[np.arange(len(codes)), codes].mean())

    temperature = minimize_scalar(loss, bounds=(0.1, 100.0), method="bounded").x
    full_weight = np.zeros(tuple(head.weight.shape), dtype=np.float32)
    full_bias = np.full(head.out_features, -temperature, dtype=np.float32)  # a class not in the rows: a ridge "no"
    full_weight[present] = temperature * weight
    full_bias[present] = temperature * bias
    head.weight.copy_(torch.from_numpy(full_weight))
    head.bias.copy_(torch.from_numpy(full_bias))


def build(input_shape, output_size: int, architecture: dict[str, Any], **_) -> nn.Module:
    return RocketNetwork(
        input_shape,
        output_size,
        int(architecture["features"]),
        int(architecture["head_width"]),
        float(architecture["dropout"]),
    )
