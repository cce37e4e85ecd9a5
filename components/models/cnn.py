"""Convolutional network for images with plain or residual blocks: the image encoder of the image
fusion family (the image family itself is the model space of :mod:`components.models.cnn_space`)."""

from __future__ import annotations

from torch import nn

MINIMUM_SIDE = 4
# Above this side the stem pools once before the first block: the full-resolution convolutions are
# where a CNN's time goes, and a 64x64 image keeps its shapes at 32x32.
STEM_POOLING_SIDE = 32


def _convolution(inputs: int, outputs: int, kernel_size: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, kernel_size, padding=kernel_size // 2, bias=False), nn.BatchNorm2d(outputs)]


class Block(nn.Module):
    """Two convolutions from ``inputs`` to ``outputs`` channels; with ``residual`` the input (through
    a 1x1 convolution when the widths differ) is added back before the activation."""

    def __init__(self, inputs: int, outputs: int, kernel_size: int, residual: bool) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *_convolution(inputs, outputs, kernel_size), nn.ReLU(), *_convolution(outputs, outputs, kernel_size)
        )
        self.shortcut = None
        if residual:
            self.shortcut = nn.Identity() if inputs == outputs else nn.Sequential(*_convolution(inputs, outputs, 1))
        self.activation = nn.ReLU()

    def forward(self, features):
        output = self.layers(features)
        return self.activation(output + self.shortcut(features) if self.shortcut is not None else output)


class CNN(nn.Module):
    """A stem convolution, ``depth`` blocks each followed by 2x2 pooling while the map is larger than
    4x4 (the width doubles at each pooling, so each block costs about the same), global average
    pooling and a linear head."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        output_size: int,
        depth: int,
        width: int,
        block: str,
        kernel_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        channels, height, width_pixels = input_shape
        layers: list[nn.Module] = [*_convolution(channels, width, kernel_size), nn.ReLU()]
        side = min(height, width_pixels)
        if side > STEM_POOLING_SIDE:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        current = width
        for _ in range(depth):
            layers.append(Block(current, width, kernel_size, residual=block == "residual"))
            current = width
            if side > MINIMUM_SIDE:
                layers.append(nn.MaxPool2d(2))
                side //= 2
                width *= 2
        self.embedding_size = current
        self.body = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(current, output_size))

    def embed(self, images):
        """The penultimate layer: pooled features that the head sees (monitoring tests it for drift)."""
        return self.pool(self.body(images))

    def forward(self, images):
        return self.head(self.embed(images))
