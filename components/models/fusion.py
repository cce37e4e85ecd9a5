"""Late fusion for tables that hold a free-text column or an image next to numeric and categorical
columns: one encoder per modality (the tabular MLP body with its embeddings; the text encoder or a
CNN), their embeddings concatenated, and a fusion head. The input row is the table's columns followed
by the text's token codes (``text_length`` of them) or the image's pixels (``image_shape``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from components.models.cnn import CNN
from components.models.mlp import MLP
from components.models.text import TextNet

ARCHITECTURE_KEYS = ("depth", "width", "activation", "encoder", "embedding_size", "text_width", "fusion_width", "dropout")

SEARCH_SPACE = {
    "depth": {"_type": "choice", "_value": [1, 2]},
    "width": {"_type": "choice", "_value": [32, 64, 128]},
    "activation": {"_type": "choice", "_value": ["relu", "gelu"]},
    "encoder": {"_type": "choice", "_value": ["cnn", "gru", "transformer"]},
    "embedding_size": {"_type": "choice", "_value": [32, 64]},
    "text_width": {"_type": "choice", "_value": [32, 64]},
    "fusion_width": {"_type": "choice", "_value": [32, 64]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1, 0.3]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 1e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}


class LateFusion(nn.Module):
    """A row split into the table's columns and a second part shaped ``second_shape``, each encoded
    on its own (the table by an MLP, the second part by a network with ``embed`` giving
    ``second_width`` features), the two embeddings concatenated and fused, then the head."""

    def __init__(
        self,
        table: MLP,
        second: nn.Module,
        table_size: int,
        second_shape: tuple[int, ...],
        second_width: int,
        fusion_width: int,
        dropout: float,
        output_size: int,
    ) -> None:
        super().__init__()
        self.table_size = table_size
        self.second_shape = tuple(int(size) for size in second_shape)
        self.table = table
        self.second = second
        self.fusion = nn.Sequential(
            nn.Linear(table.head.in_features + second_width, fusion_width), nn.ReLU(), nn.Dropout(dropout)
        )
        self.head = nn.Linear(fusion_width, output_size)

    def embed(self, features):
        table = features[:, : self.table_size]
        second = features[:, self.table_size :].reshape(-1, *self.second_shape)
        return self.fusion(torch.cat([self.table.embed(table), self.second.embed(second)], dim=1))

    def forward(self, features):
        return self.head(self.embed(features))


class FusionNet(LateFusion):
    """The table's MLP and a text encoder (``encoder``: CNN, GRU or transformer), fused."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        text_length: int,
        categorical: list[int],
        cardinalities: list[int],
        depth: int,
        width: int,
        activation: str,
        encoder: str,
        embedding_size: int,
        text_width: int,
        fusion_width: int,
        dropout: float,
    ) -> None:
        table_size = input_size - text_length
        # The last cardinality is the text vocabulary's; the others belong to categorical columns.
        table = MLP(table_size, 1, depth, width, activation, dropout, categorical, cardinalities[:-1])
        text = TextNet((text_length,), 1, cardinalities[-1], encoder, embedding_size, 1, text_width, dropout)
        super().__init__(table, text, table_size, (text_length,), text_width, fusion_width, dropout, output_size)


def build(input_shape, output_size: int, architecture: dict, categorical=None, cardinalities=None, text_length: int = 0, **_):
    return FusionNet(
        int(input_shape[0]), output_size, text_length, list(categorical or []), list(cardinalities or [2]), **architecture
    )


IMAGE_ARCHITECTURE_KEYS = (
    "depth",
    "width",
    "activation",
    "convolutions",
    "channels",
    "block",
    "kernel_size",
    "fusion_width",
    "dropout",
)

IMAGE_SEARCH_SPACE = {
    "depth": {"_type": "choice", "_value": [0, 1, 2]},  # 0: the table's columns (and embeddings) enter the fusion as they are
    "width": {"_type": "choice", "_value": [32, 64, 128]},
    "activation": {"_type": "choice", "_value": ["relu", "gelu"]},
    "convolutions": {"_type": "choice", "_value": [1, 2, 3]},
    "channels": {"_type": "choice", "_value": [16, 32, 64]},
    "block": {"_type": "choice", "_value": ["plain", "residual"]},
    "kernel_size": {"_type": "choice", "_value": [3, 5]},
    "fusion_width": {"_type": "choice", "_value": [32, 64]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1, 0.3]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 1e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}


class ImageFusionNet(LateFusion):
    """The table's MLP and a CNN over the image (``convolutions`` blocks of ``channels``), fused."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        image_shape: tuple[int, int, int],
        categorical: list[int],
        cardinalities: list[int],
        depth: int,
        width: int,
        activation: str,
        convolutions: int,
        channels: int,
        block: str,
        kernel_size: int,
        fusion_width: int,
        dropout: float,
    ) -> None:
        table_size = input_size - math.prod(image_shape)
        table = MLP(table_size, 1, depth, width, activation, dropout, categorical, cardinalities)
        image = CNN(tuple(image_shape), 1, convolutions, channels, block, kernel_size, dropout)
        super().__init__(table, image, table_size, tuple(image_shape), image.embedding_size, fusion_width, dropout, output_size)


def build_with_images(
    input_shape, output_size: int, architecture: dict, categorical=None, cardinalities=None, image_shape=(), **_
):
    return ImageFusionNet(
        int(input_shape[0]), output_size, tuple(image_shape), list(categorical or []), list(cardinalities or []), **architecture
    )
