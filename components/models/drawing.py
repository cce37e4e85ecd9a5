"""The chosen network drawn as a chain of blocks, in the order they run, each with its output shape and
parameter count (``network.png`` next to the model, and on the training run in MLflow).

Written here because the libraries that draw PyTorch graphs need Graphviz, a system package that the
default install does not have, and draw every tensor operation: a few dozen boxes is what a reader
wants to see of a searched network."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

# Layers folded into the block before them: they change neither the shape nor the story.
FOLDED = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.ReLU, nn.GELU, nn.SiLU, nn.Dropout, nn.Flatten, nn.Identity)
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class Block:
    label: str
    shape: tuple[int, ...] = ()
    parameters: int = 0
    folded: list[str] = field(default_factory=list)


def describe(module: nn.Module) -> str:
    """A layer in a few words ("conv 5x5 → 32, depthwise", "linear 64 → 3", "GRU 64, bidirectional");
    a composite module (a searched cell) as its class name and the layers inside it."""
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        kernel = "x".join(str(size) for size in module.kernel_size)
        dilation = f", dilation {module.dilation[0]}" if max(module.dilation) > 1 else ""
        depthwise = ", depthwise" if module.groups > 1 and module.groups == module.in_channels else ""
        return f"conv {kernel} → {module.out_channels}{depthwise}{dilation}"
    if isinstance(module, nn.Linear):
        return f"linear {module.in_features} → {module.out_features}"
    if isinstance(module, nn.Embedding):
        return f"embedding {module.num_embeddings} × {module.embedding_dim}"
    if isinstance(module, nn.GRU | nn.LSTM | nn.RNN):
        return f"{type(module).__name__} {module.hidden_size}{', bidirectional' if module.bidirectional else ''}"
    if isinstance(module, nn.TransformerEncoderLayer):
        return f"transformer layer ({module.self_attn.num_heads} heads, feed-forward {module.linear1.out_features})"
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d):
        return "max pool"
    if isinstance(module, nn.AdaptiveAvgPool1d | nn.AdaptiveAvgPool2d):
        return "global average pool"
    named = [describe(layer) for layer in _layers(module) if _count(layer)]
    return f"{type(module).__name__}: {', '.join(named)}" if named else type(module).__name__


def _layers(module: nn.Module):
    """The layers :func:`describe` has words for inside ``module`` (not looking inside those)."""
    for child in module.children():
        if isinstance(child, FOLDED):
            continue
        if not list(child.children()) or isinstance(child, nn.TransformerEncoderLayer):
            yield child
        else:
            yield from _layers(child)


def network_blocks(network: nn.Module, features: np.ndarray) -> list[Block]:
    """The blocks of ``network`` that its forward pass on ``features`` (network-ready inputs; the first
    row is used) calls, in order: the layers inside its containers (Sequential and the like), with
    custom modules (a searched cell) kept whole and normalisation or activation layers folded into
    the block before them."""
    chosen = list(_walk(network, root=True))
    calls: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = [module.register_forward_hook(lambda module, _, output: calls.append((module, _shape(output)))) for module in chosen]
    try:
        network.eval()
        with torch.no_grad():
            network(torch.from_numpy(np.ascontiguousarray(features[:1])))
    finally:
        for hook in hooks:
            hook.remove()
    blocks = [Block("input", tuple(features[:1].shape))]
    for module, shape in calls:
        if isinstance(module, FOLDED) and len(blocks) > 1:
            blocks[-1].folded.append(type(module).__name__)
            blocks[-1].shape = shape
            blocks[-1].parameters += _count(module)
            continue
        blocks.append(Block(describe(module), shape, _count(module)))
    own = sum(parameter.numel() for parameter in network.parameters(recurse=False))  # a learned position table
    if own and len(blocks) > 1:
        blocks[1].parameters += own
        blocks[1].folded += [name for name, _ in network.named_parameters(recurse=False)]
    return blocks


def draw_network(blocks: list[Block], path: Path, title: str) -> Path:
    """A vertical chain of boxes, input at the top."""
    from components.plotting import pyplot

    plt = pyplot()
    height = 0.55 * len(blocks) + 1.2
    figure, axes = plt.subplots(figsize=(8.5, height))
    axes.set_xlim(0, 10)
    axes.set_ylim(-len(blocks) - 0.3, 0.8)
    axes.axis("off")
    for row, block in enumerate(blocks):
        y = -row - 0.5
        folded = f" (+ {', '.join(dict.fromkeys(block.folded))})" if block.folded else ""
        axes.text(
            0.2, y, block.label + folded, va="center", ha="left", fontsize=8.5, wrap=True,
            bbox={"boxstyle": "round,pad=0.35", "facecolor": "#dbe8f6" if block.parameters else "#eeeeee", "edgecolor": "#4a6fa5"},
        )  # fmt: skip
        detail = " × ".join(str(size) for size in block.shape[1:]) or "-"
        axes.text(9.8, y, f"{detail}   {block.parameters:,} params", va="center", ha="right", fontsize=8, color="#444444")
        if row:
            axes.annotate("", xy=(0.45, y + 0.28), xytext=(0.45, y + 0.72), arrowprops={"arrowstyle": "->", "color": "#4a6fa5"})
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _walk(module: nn.Module, root: bool = False):
    children = list(module.children())
    if not children or (not root and not isinstance(module, CONTAINERS)):
        yield module
        return
    for child in children:
        yield from _walk(child)


def _count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _shape(output) -> tuple[int, ...]:
    while isinstance(output, tuple | list) and output:
        output = output[0]
    return tuple(output.shape) if isinstance(output, torch.Tensor) else ()


def draw_chosen_network(network: nn.Module, features: np.ndarray, path: Path, title: str) -> Path:
    """``network`` drawn (:func:`draw_network`) as it runs on ``features``."""
    return draw_network(network_blocks(network, features), path, title)
