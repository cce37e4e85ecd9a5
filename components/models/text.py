"""Networks for free text (rows of token codes, 0 for padding and unknown words), and their search
space: a learned embedding, then a 1-D CNN, a GRU or a small transformer encoder (the search picks),
then the average over the real tokens, which is the embedding the head and the drift detector see."""

from __future__ import annotations

import torch
from torch import nn

ARCHITECTURE_KEYS = ("encoder", "embedding_size", "depth", "width", "dropout")

SEARCH_SPACE = {
    "encoder": {"_type": "choice", "_value": ["cnn", "gru", "transformer"]},
    "embedding_size": {"_type": "choice", "_value": [32, 64]},
    "depth": {"_type": "choice", "_value": [1, 2]},
    "width": {"_type": "choice", "_value": [32, 64, 128]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1, 0.3]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 1e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}


class TextNet(nn.Module):
    def __init__(
        self,
        input_shape: tuple[int],
        output_size: int,
        vocabulary_size: int,
        encoder: str,
        embedding_size: int,
        depth: int,
        width: int,
        dropout: float,
    ) -> None:
        super().__init__()
        (length,) = input_shape
        self.encoder_kind = encoder
        self.embedding = nn.Embedding(vocabulary_size, embedding_size, padding_idx=0)
        self.position = nn.Parameter(torch.zeros(1, length, width)) if encoder == "transformer" else None
        if encoder == "cnn":
            layers: list[nn.Module] = []
            size = embedding_size
            for _ in range(depth):
                layers += [nn.Conv1d(size, width, 3, padding=1), nn.ReLU(), nn.Dropout(dropout)]
                size = width
            self.encoder = nn.Sequential(*layers)
        elif encoder == "gru":
            self.encoder = nn.GRU(
                embedding_size, width, num_layers=depth, batch_first=True, dropout=dropout if depth > 1 else 0.0
            )
        elif encoder == "transformer":
            self.project = nn.Linear(embedding_size, width)
            layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=2 * width, dropout=dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        else:
            raise ValueError(f"unknown text encoder '{encoder}': use cnn, gru or transformer")
        self.head = nn.Linear(width, output_size)

    def embed(self, codes):
        tokens = codes.long()
        mask = (tokens > 0).unsqueeze(2).float()
        vectors = self.embedding(tokens)
        if self.encoder_kind == "cnn":
            hidden = self.encoder(vectors.transpose(1, 2)).transpose(1, 2)
        elif self.encoder_kind == "gru":
            hidden, _ = self.encoder(vectors)
        else:
            padding = tokens == 0
            # A row of padding or unknown words alone would mask every key, and attention over no key
            # is NaN: such a row attends over its first position instead (its pooled features are 0).
            alone = padding.all(dim=1, keepdim=True)
            padding = torch.cat([padding[:, :1] & ~alone, padding[:, 1:]], dim=1)
            hidden = self.encoder(self.project(vectors) + self.position, src_key_padding_mask=padding)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)

    def forward(self, codes):
        return self.head(self.embed(codes))


def build(input_shape, output_size: int, architecture: dict, cardinalities=None, **_) -> nn.Module:
    return TextNet(tuple(input_shape), output_size, int((cardinalities or [2])[0]), **architecture)
