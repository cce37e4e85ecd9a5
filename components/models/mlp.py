"""Multi-layer perceptron for tabular data, and its architecture search space."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}

ARCHITECTURE_KEYS = ("depth", "width", "activation", "dropout")

SEARCH_SPACE = {
    "depth": {"_type": "choice", "_value": [0, 1, 2, 3]},  # 0: a linear (or logistic) model on the inputs
    "width": {"_type": "choice", "_value": [64, 128, 256]},
    "activation": {"_type": "choice", "_value": ["relu", "gelu", "silu"]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1, 0.3]},
    "learning_rate": {"_type": "loguniform", "_value": [3e-4, 3e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3, 1e-2]},
}

# Tried first in every search of this family (training.portfolio), as AutoGluon's default models and
# auto-sklearn's warm starts are: a linear (or logistic) model, which the tuners rarely sample with a
# learning rate that lets it converge and which small noisy tables often call for (the one-standard-
# error selection then prefers it), and a mid-sized network that suits most larger tables.
PORTFOLIO = (
    {"depth": 0, "width": 64, "activation": "relu", "dropout": 0.0, "learning_rate": 0.01, "weight_decay": 1e-3},
    {"depth": 2, "width": 128, "activation": "gelu", "dropout": 0.1, "learning_rate": 3e-3, "weight_decay": 1e-4},
)


def embedding_size(cardinality: int) -> int:
    """A common rule of thumb: grows with the number of categories, at most 16."""
    return int(min(16, max(2, round(1.6 * cardinality**0.56))))


class MLP(nn.Module):
    """``depth`` blocks of Linear, LayerNorm, activation and dropout, then a linear head (depth 0:
    the head alone, a linear or logistic model, which small noisy tables often call for).

    Categorical columns (``categorical``: their positions; ``cardinalities``: categories per column,
    the unknown one included) enter through learned embeddings instead of as numbers.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        depth: int,
        width: int,
        activation: str,
        dropout: float,
        categorical: list[int] | None = None,
        cardinalities: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.categorical = list(categorical or [])
        self.numeric = [position for position in range(input_size) if position not in self.categorical]
        self.embeddings = nn.ModuleList(nn.Embedding(size, embedding_size(size)) for size in (cardinalities or []))
        layers: list[nn.Module] = []
        size = len(self.numeric) + sum(embedding.embedding_dim for embedding in self.embeddings)
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.LayerNorm(width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, output_size)

    def _inputs(self, features):
        features = features.flatten(1)
        if not self.categorical:
            return features
        parts = [features[:, self.numeric]] + [
            embedding(features[:, position].long()) for position, embedding in zip(self.categorical, self.embeddings)
        ]
        return torch.cat(parts, dim=1)

    def embed(self, features):
        """The penultimate layer: what the head sees (monitoring tests it for drift)."""
        return self.body(self._inputs(features))

    def forward(self, features):
        return self.head(self.embed(features))
