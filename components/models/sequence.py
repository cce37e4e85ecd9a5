"""Networks for sequences and sensor data, shaped (samples, time, channels), and their search space.

Two alternatives the search chooses between: a temporal convolutional network (dilated 1-D
convolutions, residual, dilation doubling per block) and a GRU. Both end in average pooling over time
(the GRU: over its outputs), which is the embedding the head and the drift detector see. Padded
steps arrive as zeros (the mean, after standardisation).
"""

from __future__ import annotations

from torch import nn

ARCHITECTURE_KEYS = ("cell", "depth", "width", "kernel_size", "dropout")

SEARCH_SPACE = {
    "cell": {"_type": "choice", "_value": ["tcn", "gru"]},
    "depth": {"_type": "choice", "_value": [1, 2, 3]},
    "width": {"_type": "choice", "_value": [32, 64, 128]},
    "kernel_size": {"_type": "choice", "_value": [3, 5]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1, 0.3]},
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 1e-2]},
    "weight_decay": {"_type": "choice", "_value": [0.0, 1e-4, 1e-3]},
}


class TemporalBlock(nn.Module):
    """Two dilated convolutions over time with a residual connection."""

    def __init__(self, width: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        padding = (kernel_size - 1) * dilation // 2
        self.layers = nn.Sequential(
            nn.Conv1d(width, width, kernel_size, padding=padding, dilation=dilation),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(width, width, kernel_size, padding=padding, dilation=dilation),
            nn.BatchNorm1d(width),
        )
        self.activation = nn.ReLU()

    def forward(self, features):
        return self.activation(self.layers(features) + features)


class SequenceNet(nn.Module):
    def __init__(
        self, input_shape: tuple[int, int], output_size: int, cell: str, depth: int, width: int, kernel_size: int, dropout: float
    ) -> None:
        super().__init__()
        _, channels = input_shape
        self.cell = cell
        if cell == "tcn":
            self.stem = nn.Conv1d(channels, width, 1)
            self.blocks = nn.Sequential(*(TemporalBlock(width, kernel_size, 2**index, dropout) for index in range(depth)))
        elif cell == "gru":
            self.recurrent = nn.GRU(channels, width, num_layers=depth, batch_first=True, dropout=dropout if depth > 1 else 0.0)
        else:
            raise ValueError(f"unknown sequence cell '{cell}': use tcn or gru")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, output_size)

    def embed(self, features):
        """Average over time of the last layer's features: what the head sees."""
        if self.cell == "tcn":
            return self.blocks(self.stem(features.transpose(1, 2))).mean(dim=2)
        outputs, _ = self.recurrent(features)
        return outputs.mean(dim=1)

    def forward(self, features):
        return self.head(self.dropout(self.embed(features)))


def build(input_shape, output_size: int, architecture: dict, **_) -> nn.Module:
    return SequenceNet(tuple(input_shape), output_size, **architecture)
