"""Multi-layer perceptron for tabular data, and its architecture search space."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}

ARCHITECTURE_KEYS = ("depth", "width", "activation", "dropout")

SEARCH_SPACE = {
    "depth": {"_type": "choice", "_value": [1, 2, 3]},
    "width": {"_type": "choice", "_value": [64, 128, 256]},
    "activation": {"_type": "choice", "_value": ["relu", "gelu", "silu"]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1, 0.3]},
    "learning_rate": {"_type": "loguniform", "_value": [3e-4, 3e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}


class MLP(nn.Module):
    """``depth`` blocks of Linear, LayerNorm, activation and dropout, then a linear head."""

    def __init__(self, input_size: int, output_size: int, depth: int, width: int, activation: str, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = input_size
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.LayerNorm(width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, output_size)

    def embed(self, features):
        """The penultimate layer: what the head sees (monitoring tests it for drift)."""
        return self.body(features.flatten(1))

    def forward(self, features):
        return self.head(self.embed(features))
