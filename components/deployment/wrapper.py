"""The deployable network: raw inputs in, probabilities (or predictions in target units) out.

The fitted preprocessing becomes torch operations in front of the trained network, so the exported
ONNX graph takes raw table rows (missing values as NaN, categories as their codes in the dataset's
vocabulary, which the server looks up), raw pixel values (0-255), or multimodal rows (the table's
columns, then the text's codes or the image's pixels), never pre-normalised tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from components.data.preparation import Preprocessor


def _remap(codes: torch.Tensor, remap: torch.Tensor) -> torch.Tensor:
    """Dataset codes to training codes; codes outside the table (and negative ones) become 0."""
    codes = codes.long()
    known = (codes >= 0) & (codes < remap.shape[0])
    return torch.where(known, remap[codes.clamp(0, remap.shape[0] - 1)], torch.zeros_like(remap[:1]))


class Preprocessing(nn.Module):
    """:meth:`Preprocessor.transform` of one modality (tabular, image, sequence, text) as torch operations."""

    def __init__(self, preprocessor: Preprocessor) -> None:
        super().__init__()
        self.modality = preprocessor.modality
        self.input_shape = tuple(preprocessor.input_shape)
        view = {"tabular": (1, -1), "sequence": (1, 1, -1), "text": (1, -1)}.get(self.modality, (1, -1, 1, 1))
        self.register_buffer("fill_values", torch.tensor(preprocessor.fill_values, dtype=torch.float32).view(view))
        self.register_buffer("means", torch.tensor(preprocessor.means, dtype=torch.float32).view(view))
        self.register_buffer("scales", torch.tensor(preprocessor.scales, dtype=torch.float32).view(view))
        self.categorical = list(preprocessor.categorical)
        for index, remap in enumerate(preprocessor.remaps):
            self.register_buffer(f"remap_{index}", torch.tensor(remap, dtype=torch.float32))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        if self.modality == "text":
            return _remap(raw, self.remap_0)
        if self.modality == "sequence":
            standardised = (raw - self.means) / self.scales
            return torch.where(torch.isnan(standardised), torch.zeros_like(standardised), standardised)
        if self.modality == "image":
            return (raw / 255.0 - self.means) / self.scales
        encoded = (torch.where(torch.isnan(raw), self.fill_values, raw) - self.means) / self.scales
        if not self.categorical:
            return encoded
        columns = list(encoded.unbind(dim=1))
        for index, position in enumerate(self.categorical):
            columns[position] = _remap(columns[position], getattr(self, f"remap_{index}"))
        return torch.stack(columns, dim=1)


class DeployableModel(nn.Module):
    def __init__(self, network: nn.Module, preprocessor: Preprocessor, task_type: str) -> None:
        super().__init__()
        self.network = network
        for module in network.modules():  # a pretrained encoder computes every input (components.models.minilm)
            if getattr(module, "keeps_frozen_outputs", False):
                module.keeps_frozen_outputs = False
        self.modality = preprocessor.modality
        self.task_type = task_type
        self.target_mean = float(preprocessor.target_mean)
        self.target_scale = float(preprocessor.target_scale)
        if self.modality == "multimodal":
            table, other = preprocessor.parts()
            self.table_width = table.input_shape[0]
            self.parts = nn.ModuleList([Preprocessing(table), Preprocessing(other)])
        else:
            self.parts = nn.ModuleList([Preprocessing(preprocessor)])

    def preprocess(self, raw: torch.Tensor) -> torch.Tensor:
        if self.modality != "multimodal":
            return self.parts[0](raw)
        table, other = self.parts
        second = raw[:, self.table_width :].reshape(-1, *other.input_shape)
        return torch.cat([table(raw[:, : self.table_width]), other(second).flatten(1)], dim=1)

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
