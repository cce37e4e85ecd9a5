"""The Lightning module: the loss, the optimiser and per-epoch validation scores."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from components.training.augmentation import AugmentationPolicy, augment
from components.training.schedule import BudgetSchedule


def validation_score(task_type: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Accuracy for classification, R^2 for regression: higher is better for both."""
    if task_type == "classification":
        return (outputs.argmax(dim=1) == targets).float().mean()
    residual = torch.sum((targets - outputs.squeeze(1)) ** 2)
    total = torch.sum((targets - targets.mean()) ** 2).clamp_min(1e-12)
    return 1.0 - residual / total


class SupervisedModule(pl.LightningModule):
    """Wraps any network; the loss is given (components.training.losses) or follows the task
    (cross-entropy or mean squared error)."""

    def __init__(
        self,
        network: nn.Module,
        task_type: str,
        learning_rate: float,
        weight_decay: float = 0.0,
        loss: nn.Module | None = None,
        augmentation: AugmentationPolicy | None = None,
        schedule: BudgetSchedule | None = None,
        backbone_learning_rate_ratio: float = 1.0,  # pretrained families: their backbone's step, relative to the head's
    ) -> None:
        super().__init__()
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.network = network
        self.task_type = task_type
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.backbone_learning_rate_ratio = backbone_learning_rate_ratio
        self.loss = loss or (nn.CrossEntropyLoss() if task_type == "classification" else nn.MSELoss())
        self._validation_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)

    def loss_of(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.task_type == "classification":
            return self.loss(outputs, targets)
        return self.loss(outputs.squeeze(1), targets)

    def training_step(self, batch, batch_index):
        inputs, targets = batch
        if self.augmentation is not None:
            inputs = augment(inputs, self.augmentation)
        loss = self.loss_of(self(inputs), targets)
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True)  # DDP: the mean over processes
        return loss

    def validation_step(self, batch, batch_index):
        inputs, targets = batch
        outputs = self(inputs)
        self._validation_outputs.append((outputs.detach(), targets))
        self.log("val_loss", self.loss_of(outputs, targets), on_step=False, on_epoch=True, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        if not self._validation_outputs:
            return
        outputs = torch.cat([output for output, _ in self._validation_outputs])
        targets = torch.cat([target for _, target in self._validation_outputs])
        self._validation_outputs.clear()
        self.log("val_score", validation_score(self.task_type, outputs, targets), sync_dist=True)

    def configure_optimizers(self):
        groups = getattr(self.network, "parameter_groups", None)  # a pretrained backbone learns at its own rate
        trained = (
            groups(self.learning_rate, self.backbone_learning_rate_ratio)
            if groups
            else [parameter for parameter in self.parameters() if parameter.requires_grad]
        )
        optimizer = torch.optim.AdamW(trained, lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.schedule is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
