"""Convolutional network for images, with plain or residual blocks, and its search space."""

from __future__ import annotations

from torch import nn

ARCHITECTURE_KEYS = ("depth", "width", "block", "kernel_size", "dropout")

SEARCH_SPACE = {
    "depth": {"_type": "choice", "_value": [1, 2, 3]},
    "width": {"_type": "choice", "_value": [16, 32, 64]},
    "block": {"_type": "choice", "_value": ["plain", "residual"]},
    "kernel_size": {"_type": "choice", "_value": [3, 5]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.2, 0.4]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 1e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}

MINIMUM_SIDE = 4


def _convolution(width: int, kernel_size: int) -> list[nn.Module]:
    return [nn.Conv2d(width, width, kernel_size, padding=kernel_size // 2, bias=False), nn.BatchNorm2d(width)]


class Block(nn.Module):
    """Two convolutions; with ``residual`` the input is added back before the activation."""

    def __init__(self, width: int, kernel_size: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(*_convolution(width, kernel_size), nn.ReLU(), *_convolution(width, kernel_size))
        self.activation = nn.ReLU()

    def forward(self, features):
        output = self.layers(features)
        return self.activation(output + features if self.residual else output)


class CNN(nn.Module):
    """A stem convolution, ``depth`` blocks each followed by 2x2 pooling while the map is larger
    than 4x4, global average pooling and a linear head."""

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
        layers: list[nn.Module] = [
            nn.Conv2d(channels, width, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        side = min(height, width_pixels)
        for _ in range(depth):
            layers.append(Block(width, kernel_size, residual=block == "residual"))
            if side > MINIMUM_SIDE:
                layers.append(nn.MaxPool2d(2))
                side //= 2
        self.body = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, output_size))

    def embed(self, images):
        """The penultimate layer: pooled features that the head sees (monitoring tests it for drift)."""
        return self.pool(self.body(images))

    def forward(self, images):
        return self.head(self.embed(images))
