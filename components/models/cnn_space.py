"""The image family's architectures as an NNI model space (``nni.nas``): stages of cells, each cell an
operation chosen per layer (``LayerChoice``) with or without a skip connection (``InputChoice``),
each stage's depth a ``Repeat``, and one searched width that doubles at every reduction.

The same space serves every strategy. One-shot strategies (DARTS, random one-shot) train it as a
weight-sharing supernet; the multi-trial tuners see its labels and values as NNI's JSON search space
(:func:`json_search_space`); and every chosen architecture, a dict of those labels, becomes a plain
PyTorch network (:func:`build`) that trains, exports to ONNX and serves like any other.
"""

from __future__ import annotations

from typing import Any

import nni
import torch
from torch import nn

from components.models.spaces import (  # noqa: F401 - this space's vocabulary
    SKIP_CHOICES,
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableLinear,
    Repeat,
    json_choices,
    model_context,
    readable,
)
from components.models.spaces import nni_sample as _nni_sample

WIDTHS = (8, 16, 32)  # channels of the first stage; each reduction doubles them
MAX_CELLS = 2  # per stage
MAX_STAGES = 3
MINIMUM_SIDE = 4  # no reduction below this side
STEM_POOLING_SIDE = 32  # above this side the stem pools once: full-resolution convolutions cost the most
OPERATIONS = ("conv3x3", "conv5x5", "separable5x5", "dilated3x3")
# Searched next to the model space's choices, by every strategy (the one-shot ones after it).
TRAINING_SPACE = {
    "dropout": {"_type": "choice", "_value": [0.0, 0.2, 0.4]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 1e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}


def _convolution(inputs, outputs, kernel_size: int, dilation: int = 1, groups=1) -> list[nn.Module]:
    padding = dilation * (kernel_size // 2)
    return [
        MutableConv2d(inputs, outputs, kernel_size, padding=padding, dilation=dilation, groups=groups, bias=False),
        MutableBatchNorm2d(outputs),
    ]


def operation(name: str, channels) -> nn.Module:
    """One candidate operation of a cell; each keeps the channels and the map's size."""
    if name == "conv3x3":
        layers = _convolution(channels, channels, 3)
    elif name == "conv5x5":
        layers = _convolution(channels, channels, 5)
    elif name == "separable5x5":  # depthwise 5x5, then pointwise: a wide view for few parameters
        layers = [*_convolution(channels, channels, 5, groups=channels), *_convolution(channels, channels, 1)]
    elif name == "dilated3x3":  # a 5x5 view with 3x3 weights
        layers = _convolution(channels, channels, 3, dilation=2)
    else:
        raise ValueError(f"unknown operation '{name}'")
    return nn.Sequential(*layers, nn.ReLU())


class Cell(nn.Module):
    """A chosen operation; with the residual choice its input is added back."""

    def __init__(self, channels, label: str) -> None:
        super().__init__()
        self.operation = LayerChoice({name: operation(name, channels) for name in OPERATIONS}, label=f"{label}_op")
        self.skip = InputChoice(n_candidates=2, n_chosen=1, reduction="sum", label=f"{label}_skip")

    def forward(self, features):
        output = self.operation(features)
        return self.skip([output, output + features])


def stage_count(input_shape) -> tuple[int, bool]:
    """How many stages (one more than the reductions that fit), and whether the stem pools."""
    side = min(input_shape[1:])
    stem_pools = side > STEM_POOLING_SIDE
    if stem_pools:
        side //= 2
    stages = 1
    while side > MINIMUM_SIDE and stages < MAX_STAGES:
        side //= 2
        stages += 1
    return stages, stem_pools


class CnnSpace(ModelSpace):
    """A stem convolution, then stages of 1–2 cells separated by reductions (2x2 pooling and a 1x1
    convolution that doubles the channels), global average pooling, dropout and a linear head."""

    def __init__(self, input_shape, output_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        channels = input_shape[0]
        width = nni.choice("width", list(WIDTHS))
        stages, stem_pools = stage_count(input_shape)
        stem: list[nn.Module] = [*_convolution(channels, width, 3), nn.ReLU()]
        if stem_pools:
            stem.append(nn.MaxPool2d(2))
        self.stem = nn.Sequential(*stem)
        body: list[nn.Module] = []
        for stage in range(stages):
            if stage:
                body += [nn.MaxPool2d(2), *_convolution(width, width * 2, 1), nn.ReLU()]
                width = width * 2
            body.append(
                Repeat(
                    lambda index, stage=stage, width=width: Cell(width, f"stage{stage + 1}_cell{index + 1}"),
                    (1, MAX_CELLS),
                    label=f"stage{stage + 1}_depth",
                )
            )
        self.body = nn.Sequential(*body)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), MutableLinear(width, output_size))

    def embed(self, images):
        """The penultimate layer: pooled features that the head sees (monitoring tests it for drift)."""
        return self.pool(self.body(self.stem(images)))

    def forward(self, images):
        return self.head(self.embed(images))


def model_space(input_shape, output_size: int, **_) -> ModelSpace:
    """The supernet that one-shot strategies train."""
    return CnnSpace(tuple(input_shape), output_size)


def proxy_shape(input_shape) -> list[int] | None:
    """A low-resolution proxy for one-shot search: the shape of the images pooled 2x2, where that
    keeps every label of the space (the same stages), so an architecture found on it is one of the
    full-size space's; None where the images are too small to halve. Each supernet epoch then costs
    about a quarter."""
    channels, height, width = (int(size) for size in input_shape)
    half = [channels, height // 2, width // 2]
    if min(half[1:]) < 2 * MINIMUM_SIDE or stage_count(half)[0] != stage_count(input_shape)[0]:
        return None
    return half


def json_search_space(input_shape) -> dict[str, dict[str, Any]]:
    """The space's choices in NNI's JSON format, for the multi-trial tuners (skip choices by name)."""
    return json_choices(CnnSpace(input_shape, 2))


def _all_labels() -> tuple[str, ...]:
    """Every label the space can hold (the largest images have all stages), and ``dropout``."""
    return (*json_search_space((1, 64, 64)), "dropout")


ARCHITECTURE_KEYS = _all_labels()


def smallest_architecture(input_shape, **choices) -> dict[str, Any]:
    """Each choice's first value (the narrowest, shallowest network), with ``choices`` overriding."""
    first = {key: spec["_value"][0] for key, spec in json_search_space(input_shape).items()}
    return {**first, "dropout": 0.0, **choices}


def nni_sample(architecture: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`readable`, without the keys the space does not hold (``dropout``)."""
    return _nni_sample(architecture, [key for key in ARCHITECTURE_KEYS if key != "dropout"])


def build(input_shape, output_size: int, architecture: dict[str, Any]) -> nn.Module:
    """The plain network of one architecture (the space's labels, plus ``dropout``)."""
    with model_context(nni_sample(architecture)):
        network = CnnSpace(tuple(input_shape), output_size, float(architecture.get("dropout", 0.0)))
    network.embedding_size = network.head[-1].in_features
    return network


def describe(architecture: dict[str, Any], input_shape) -> list[dict[str, Any]]:
    """The chosen operations as rows a person reads: stage, cell, operation, skip and channels."""
    stages, _ = stage_count(input_shape)
    rows = []
    width = int(architecture["width"])
    for stage in range(1, stages + 1):
        for cell in range(1, int(architecture[f"stage{stage}_depth"]) + 1):
            label = f"stage{stage}_cell{cell}"
            rows.append(
                {
                    "stage": stage,
                    "cell": cell,
                    "operation": architecture[f"{label}_op"],
                    "skip": architecture[f"{label}_skip"],
                    "channels": width,
                }
            )
        width *= 2
    return rows


def choice_label(row) -> str:
    """The label of a described row's operation choice (its skip's adds ``_skip``)."""
    return f"stage{row.stage}_cell{row.cell}"


def summary(architecture: dict[str, Any], input_shape) -> str:
    """One line: the cells (stage.cell operation, skip), the first stage's width and the dropout."""
    cells = "; ".join(
        f"{row['stage']}.{row['cell']} {row['operation']} ({row['skip']})" for row in describe(architecture, input_shape)
    )
    return f"cells {cells}; width {architecture['width']}, dropout {architecture.get('dropout', 0.0)}"


if __name__ == "__main__":  # pragma: no cover - a look at the space
    print(json_search_space((1, 28, 28)))
    net = build((1, 28, 28), 10, {key: spec["_value"][-1] for key, spec in json_search_space((1, 28, 28)).items()})
    print(net, net(torch.zeros(2, 1, 28, 28)).shape)
