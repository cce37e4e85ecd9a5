"""The text family's architectures as an NNI model space (``nni.nas``): rows of token codes (0 for
padding and unknown words) become learned embeddings of the searched width plus a learned position,
then 1–2 blocks, each an operation chosen per block (``LayerChoice``: a convolution over 3 tokens, a
bidirectional GRU, or a transformer encoder layer that attends over the real tokens) with or without
a residual skip (``InputChoice``), the number of blocks a ``Repeat``; then the average over the real
tokens (the embedding the head and the drift detector see), dropout and a linear head.

As in the sequence family, the width is a constructor argument (a GRU and an attention layer have no
weight-sharing form across widths in NNI 3.0): one-shot strategies search the operations at
:data:`SUPERNET_WIDTH`, and the multi-trial search tunes the width afterwards. The multimodal
``fusion`` family keeps its own text encoder (components.models.text).
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

MAX_BLOCKS = 2
OPERATIONS = ("conv3", "gru", "attention")
SUPERNET_WIDTH = BLOCK_SUPERNET_WIDTH
TRAINING_SPACE = BLOCK_TRAINING_SPACE


class _Convolution(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv1d(width, width, 3, padding=1), nn.ReLU())

    def forward(self, hidden, padding):  # (samples, tokens, width) in and out
        return self.layers(hidden.transpose(1, 2)).transpose(1, 2)


class _Recurrent(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.gru = nn.GRU(width, width // 2, batch_first=True, bidirectional=True)

    def forward(self, hidden, padding):
        return self.gru(hidden)[0]


class _Attention(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=2 * width, dropout=0.0, batch_first=True)

    def forward(self, hidden, padding):
        # A text with no known word attends over its first position rather than over nothing (NaN).
        padding = padding & ~padding.all(dim=1, keepdim=True)
        return self.layer(hidden, src_key_padding_mask=padding)


def operation(name: str, width: int) -> nn.Module:
    """One candidate operation; each takes the hidden tokens and the padding mask, keeps the shape."""
    if name == "conv3":
        return _Convolution(width)
    if name == "gru":
        return _Recurrent(width)
    if name == "attention":
        return _Attention(width)
    raise ValueError(f"unknown text operation '{name}'")


class Block(nn.Module):
    """One searched block. Its input and output carry the real-token mask as a last channel: one
    tensor, so that NNI's ``Repeat`` can mix depths (a weighted sum) in one-shot search, which keeps
    the mask as it is since the depths' weights sum to one."""

    def __init__(self, width: int, index: int) -> None:
        super().__init__()
        label = f"block{index + 1}"
        self.operation = LayerChoice({name: operation(name, width) for name in OPERATIONS}, label=f"{label}_op")
        self.skip = InputChoice(n_candidates=2, n_chosen=1, reduction="sum", label=f"{label}_skip")

    def forward(self, state):
        hidden, real = state[..., :-1], state[..., -1:]
        output = self.operation(hidden, real[..., 0] < 0.5)
        return torch.cat([self.skip([output, output + hidden]), real], dim=2)


class TextSpace(ModelSpace):
    def __init__(
        self, input_shape, output_size: int, vocabulary_size: int, width: int = SUPERNET_WIDTH, dropout: float = 0.0
    ) -> None:
        super().__init__()
        (length,) = input_shape
        self.embedding = nn.Embedding(vocabulary_size, width, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(1, length, width))
        self.blocks = Repeat(lambda index: Block(width, index), (1, MAX_BLOCKS), label="depth")
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, output_size))

    def embed(self, codes):
        """The average over the real tokens of the last block's features: what the head sees."""
        tokens = codes.long()
        real = (tokens > 0).unsqueeze(2).float()
        state = self.blocks(torch.cat([self.embedding(tokens) + self.position, real], dim=2))
        return (state[..., :-1] * real).sum(dim=1) / real.sum(dim=1).clamp_min(1.0)

    def forward(self, codes):
        return self.head(self.embed(codes))


def model_space(input_shape, output_size: int, cardinalities=None, **_) -> ModelSpace:
    """The supernet that one-shot strategies train (``cardinalities``: the vocabulary's size first)."""
    return TextSpace(tuple(input_shape), output_size, int((cardinalities or [2])[0]))


def json_search_space(input_shape=(8,)) -> dict[str, dict[str, Any]]:
    """The space's choices in NNI's JSON format (skip choices by name); the same for every length."""
    return json_choices(TextSpace(tuple(input_shape), 2, 2))


LABELS = tuple(json_search_space())
ARCHITECTURE_KEYS = (*LABELS, "width", "dropout")


def build(input_shape, output_size: int, architecture: dict[str, Any], cardinalities=None, **_) -> nn.Module:
    """The plain network of one architecture (the space's labels, plus ``width`` and ``dropout``)."""
    sample = nni_sample(architecture, LABELS)
    with model_context(sample):
        network = TextSpace(
            tuple(input_shape),
            output_size,
            int((cardinalities or [2])[0]),
            int(architecture.get("width", SUPERNET_WIDTH)),
            float(architecture.get("dropout", 0.0)),
        )
    network.embedding_size = network.head[-1].in_features
    return network
