"""The sequence family's architectures as an NNI model space (``nni.nas``): sequences shaped
(samples, time, channels) go through a 1x1 convolution to the searched width, then 1–3 blocks,
each an operation chosen per block (``LayerChoice``: a dilated convolution of 3 or 5 steps, whose
dilation doubles from block to block as in a temporal convolutional network, or a bidirectional GRU)
with or without a residual skip (``InputChoice``), the number of blocks a ``Repeat``; then the
average over time (the embedding the head and the drift detector see), dropout and a linear head.

The width is a constructor argument, not a choice inside the space: a GRU has no weight-sharing
form across widths in NNI 3.0, so one-shot strategies search the operations at :data:`SUPERNET_WIDTH`
and the multi-trial search tunes the width afterwards, as it does for the image family.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from components.models.spaces import (  # noqa: F401 - the functions every model-space module offers
    BLOCK_SUPERNET_WIDTH,
    BLOCK_TRAINING_SPACE,
    SKIP_CHOICES,
    InputChoice,
    LayerChoice,
    ModelSpace,
    Repeat,
    json_choices,
    model_context,
    nni_sample,
    readable,
)
from components.models.spaces import block_label as choice_label  # noqa: F401
from components.models.spaces import blocks_summary as summary  # noqa: F401
from components.models.spaces import describe_blocks as describe  # noqa: F401
from components.models.spaces import no_proxy as proxy_shape  # noqa: F401

MAX_BLOCKS = 3
OPERATIONS = ("conv3", "conv5", "gru")
SUPERNET_WIDTH = BLOCK_SUPERNET_WIDTH
TRAINING_SPACE = BLOCK_TRAINING_SPACE


class _Convolution(nn.Module):
    """A dilated convolution over time that keeps the length, then batch norm and ReLU."""

    def __init__(self, width: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        padding = (kernel_size - 1) * dilation // 2
        self.layers = nn.Sequential(
            nn.Conv1d(width, width, kernel_size, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(),
        )

    def forward(self, features):
        return self.layers(features)


class _Recurrent(nn.Module):
    """A bidirectional GRU whose two directions together keep the width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.gru = nn.GRU(width, width // 2, batch_first=True, bidirectional=True)

    def forward(self, features):  # (samples, width, time) in and out
        outputs, _ = self.gru(features.transpose(1, 2))
        return outputs.transpose(1, 2)


def operation(name: str, width: int, index: int) -> nn.Module:
    """One candidate operation of block ``index`` (from 0); each keeps the width and the length."""
    if name == "conv3":
        return _Convolution(width, 3, 2**index)
    if name == "conv5":
        return _Convolution(width, 5, 2**index)
    if name == "gru":
        return _Recurrent(width)
    raise ValueError(f"unknown sequence operation '{name}'")


class Block(nn.Module):
    def __init__(self, width: int, index: int) -> None:
        super().__init__()
        label = f"block{index + 1}"
        self.operation = LayerChoice({name: operation(name, width, index) for name in OPERATIONS}, label=f"{label}_op")
        self.skip = InputChoice(n_candidates=2, n_chosen=1, reduction="sum", label=f"{label}_skip")

    def forward(self, features):
        output = self.operation(features)
        return self.skip([output, output + features])


class SequenceSpace(ModelSpace):
    def __init__(self, input_shape, output_size: int, width: int = SUPERNET_WIDTH, dropout: float = 0.0) -> None:
        super().__init__()
        _, channels = input_shape
        self.stem = nn.Conv1d(channels, width, 1)
        self.blocks = Repeat(lambda index: Block(width, index), (1, MAX_BLOCKS), label="depth")
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, output_size))

    def embed(self, features):
        """Average over time of the last block's features: what the head sees."""
        return self.blocks(self.stem(features.transpose(1, 2))).mean(dim=2)

    def forward(self, features):
        return self.head(self.embed(features))


def model_space(input_shape, output_size: int, **_) -> ModelSpace:
    """The supernet that one-shot strategies train."""
    return SequenceSpace(tuple(input_shape), output_size)


def json_search_space(input_shape=(8, 1)) -> dict[str, dict[str, Any]]:
    """The space's choices in NNI's JSON format (skip choices by name); the same for every shape."""
    return json_choices(SequenceSpace(tuple(input_shape), 2))


LABELS = tuple(json_search_space())
ARCHITECTURE_KEYS = (*LABELS, "width", "dropout")
# The first trial of every search of the family: two residual dilated convolutions of width 64, a
# mid-sized network that learns most sequence sets (benchmarks/transfer.py's from-scratch network).
PORTFOLIO = (
    {
        "depth": 2,
        "block1_op": "conv5",
        "block1_skip": "residual",
        "block2_op": "conv5",
        "block2_skip": "residual",
        "block3_op": "conv3",
        "block3_skip": "none",
        "width": 64,
        "dropout": 0.1,
        "learning_rate": 3e-3,
        "weight_decay": 1e-4,
    },
)


def build(input_shape, output_size: int, architecture: dict[str, Any], **_) -> nn.Module:
    """The plain network of one architecture (the space's labels, plus ``width`` and ``dropout``)."""
    sample = nni_sample(architecture, LABELS)
    with model_context(sample):
        network = SequenceSpace(
            tuple(input_shape),
            output_size,
            int(architecture.get("width", SUPERNET_WIDTH)),
            float(architecture.get("dropout", 0.0)),
        )
    network.embedding_size = network.head[-1].in_features
    return network


if __name__ == "__main__":  # pragma: no cover - a look at the space
    print(json_search_space())
    net = build((16, 3), 2, {key: spec["_value"][-1] for key, spec in json_search_space().items()} | {"width": 16})
    print(net, net(torch.zeros(2, 16, 3)).shape)
