"""What the pretrained families share: the fine-tuning strategies, which layers learn under each,
frozen layers kept in evaluation mode, and the backbone's own learning rate.

- ``linear_probe``: the backbone is frozen (batch norms keep their pretraining statistics, dropout is
  off) and only the new head learns;
- ``top_blocks``: the backbone's last blocks learn too (each family says which);
- ``full``: everything learns.

The backbone's trained layers learn at ``learning_rate * backbone_learning_rate_ratio`` (a pretrained
layer wants smaller steps than a new head), the head at ``learning_rate``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import nn

STRATEGIES = ("linear_probe", "top_blocks", "full")


class FineTunedNetwork(nn.Module, ABC):
    """A pretrained ``backbone`` and a new ``head``. A subclass sets both and ``fine_tuning``, says
    which backbone modules its ``top_blocks`` strategy trains, then calls :meth:`freeze`."""

    backbone: nn.Module
    head: nn.Module
    fine_tuning: str

    def __init__(self, fine_tuning: str) -> None:
        super().__init__()
        if fine_tuning not in STRATEGIES:
            raise ValueError(f"unknown fine-tuning strategy '{fine_tuning}': one of {', '.join(STRATEGIES)}")
        self.fine_tuning = fine_tuning

    @abstractmethod
    def top_blocks(self) -> list[nn.Module]:
        """The backbone's modules that the ``top_blocks`` strategy trains."""

    def trained_backbone_parts(self) -> list[nn.Module]:
        """The backbone's modules that learn under the fine-tuning strategy."""
        if self.fine_tuning == "full":
            return [self.backbone]
        return self.top_blocks() if self.fine_tuning == "top_blocks" else []

    def freeze(self) -> None:
        """Only the strategy's layers (and the head) keep gradients."""
        for parameter in self.backbone.parameters():
            parameter.requires_grad = self.fine_tuning == "full"
        for module in self.trained_backbone_parts():
            for parameter in module.parameters():
                parameter.requires_grad = True
        # Lightning keeps each module's mode as it finds it (it calls no train() at the start of fitting):
        # the frozen layers must be in evaluation mode from the start.
        self.train()

    def train(self, mode: bool = True):
        """Frozen layers stay in evaluation mode: their batch norms keep their pretraining statistics
        and their dropout stays off."""
        super().train(mode)
        if mode and self.fine_tuning != "full":
            self.backbone.eval()
            for module in self.trained_backbone_parts():
                module.train()
        return self

    def parameter_groups(self, learning_rate: float, ratio: float) -> list[dict[str, Any]]:
        """The optimiser's groups: the head at ``learning_rate``, the backbone's trained layers at ``ratio`` of it."""
        backbone = [parameter for parameter in self.backbone.parameters() if parameter.requires_grad]
        groups = [{"params": list(self.head.parameters()), "lr": learning_rate}]
        if backbone:
            groups.append({"params": backbone, "lr": learning_rate * ratio})
        return groups
