"""The deployable network: raw inputs in, probabilities (or predictions in target units) out.

The fitted preprocessing becomes torch operations in front of the trained network, so the exported
ONNX graph takes raw table rows (missing values as NaN) or raw pixel values (0-255), never
pre-normalised tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from components.data.preparation import Preprocessor


class DeployableModel(nn.Module):
    def __init__(self, network: nn.Module, preprocessor: Preprocessor, task_type: str) -> None:
        super().__init__()
        self.network = network
        self.modality = preprocessor.modality
        self.task_type = task_type
        view = (1, -1) if self.modality == "tabular" else (1, -1, 1, 1)
        self.register_buffer("fill_values", torch.tensor(preprocessor.fill_values, dtype=torch.float32).view(view))
        self.register_buffer("means", torch.tensor(preprocessor.means, dtype=torch.float32).view(view))
        self.register_buffer("scales", torch.tensor(preprocessor.scales, dtype=torch.float32).view(view))
        self.target_mean = float(preprocessor.target_mean)
        self.target_scale = float(preprocessor.target_scale)

    def preprocess(self, raw: torch.Tensor) -> torch.Tensor:
        if self.modality == "tabular":
            inputs = torch.where(torch.isnan(raw), self.fill_values, raw)
        else:
            inputs = raw / 255.0
        return (inputs - self.means) / self.scales

    @torch.no_grad()
    def embed(self, raw: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features of raw inputs (not exported; used by monitoring)."""
        return self.network.embed(self.preprocess(raw))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        outputs = self.network(self.preprocess(raw))
        if self.task_type == "classification":
            return torch.softmax(outputs, dim=1)
        return outputs * self.target_scale + self.target_mean

    @property
    def output_name(self) -> str:
        return "probabilities" if self.task_type == "classification" else "prediction"
