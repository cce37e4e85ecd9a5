"""What the families' NNI model spaces (components.models.cnn_space, sequence_space, text_space)
share: skip choices by name, the translation between NNI's samples and readable architectures, the
JSON form the multi-trial tuners read, and the one-stage "blocks" rows that the sequence and text
spaces describe themselves with."""

from __future__ import annotations

import warnings
from typing import Any

from nni.mutable import Categorical, CategoricalMultiple

with warnings.catch_warnings():  # NNI 3.0 wraps every torch.nn class and warns about newer torch's non-modules
    warnings.simplefilter("ignore", RuntimeWarning)
    from nni.nas.nn.pytorch import (  # noqa: F401 - the spaces' building blocks, imported here once
        InputChoice,
        LayerChoice,
        ModelSpace,
        MutableBatchNorm2d,
        MutableConv2d,
        MutableLinear,
        Repeat,
    )
from nni.nas.space import model_context  # noqa: F401

SKIP_CHOICES = ("none", "residual")
# The sequence and text spaces take their width as a constructor argument (NNI 3.0 shares no GRU or
# attention weights across widths): one-shot search trains their supernets at this width, and the
# multi-trial search tunes the width next to the training hyper-parameters.
BLOCK_SUPERNET_WIDTH = 32
BLOCK_TRAINING_SPACE = {
    "width": {"_type": "choice", "_value": [32, 64, 128]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1, 0.3]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 1e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}


def no_proxy(input_shape) -> None:
    """``proxy_shape`` of the spaces that have no smaller stand-in for one-shot search."""
    return None


def json_choices(space) -> dict[str, dict[str, Any]]:
    """A model space's choices in NNI's JSON format, for the multi-trial tuners (skip choices by name)."""
    choices = {}
    for label, mutable in space.simplify().items():
        if isinstance(mutable, CategoricalMultiple):
            choices[label] = {"_type": "choice", "_value": list(SKIP_CHOICES)}
        elif isinstance(mutable, Categorical):
            choices[label] = {"_type": "choice", "_value": list(mutable.values)}
    return choices


def readable(sample: dict[str, Any]) -> dict[str, Any]:
    """An architecture as NNI samples it (a skip choice is a list of chosen inputs) with names instead."""
    return {
        key: SKIP_CHOICES[value[0]] if key.endswith("_skip") and isinstance(value, list) else value
        for key, value in sample.items()
    }


def nni_sample(architecture: dict[str, Any], labels) -> dict[str, Any]:
    """The inverse of :func:`readable`, for the space's own ``labels`` only."""
    return {
        key: [SKIP_CHOICES.index(value)] if key.endswith("_skip") else value
        for key, value in architecture.items()
        if key in labels
    }


def describe_blocks(architecture: dict[str, Any], input_shape=None) -> list[dict[str, Any]]:
    """A one-stage space's chosen operations as rows a person reads: a row per block."""
    width = int(architecture.get("width", BLOCK_SUPERNET_WIDTH))
    return [
        {
            "stage": 1,
            "cell": block,
            "operation": architecture[f"block{block}_op"],
            "skip": architecture[f"block{block}_skip"],
            "channels": width,
        }
        for block in range(1, int(architecture["depth"]) + 1)
    ]


def block_label(row) -> str:
    """The label of a described block's operation choice (its skip's adds ``_skip``)."""
    return f"block{row.cell}"


def blocks_summary(architecture: dict[str, Any], input_shape=None) -> str:
    """One line: the blocks (number, operation, skip), the width and the dropout."""
    blocks = "; ".join(f"{row['cell']} {row['operation']} ({row['skip']})" for row in describe_blocks(architecture))
    width = architecture.get("width", BLOCK_SUPERNET_WIDTH)
    return f"blocks {blocks}; width {width}, dropout {architecture.get('dropout', 0.0)}"
