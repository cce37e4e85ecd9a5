"""The loss, chosen from the task and the training targets, with the reason.

Classification: cross-entropy; class-weighted cross-entropy when the largest class outnumbers the
smallest by ``imbalance_ratio`` or more (weights inversely proportional to class frequency, mean 1),
or plain cross-entropy with a weighted sampler that draws every class equally often (``balancing:
sampler``); focal loss when asked for. Regression (on the standardised target): mean squared error; Huber
when the target's excess kurtosis shows heavy tails, so that a few extreme targets do not dominate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as functional
from scipy import stats
from torch import nn

CLASSIFICATION_LOSSES = ("cross_entropy", "weighted_cross_entropy", "focal")
REGRESSION_LOSSES = ("mse", "huber")
FOCAL_GAMMA = 2.0


@dataclass
class LossChoice:
    name: str
    reason: str
    class_weights: list[float] | None = None
    balancing: str = "none"  # none | loss (class weights in the loss) | sampler (class weights draw the batches)


def class_weights(targets: np.ndarray, classes: int) -> list[float]:
    """Inverse class frequencies, scaled to a mean of 1 over the classes present."""
    counts = np.bincount(targets.astype(int), minlength=classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (classes * np.maximum(counts, 1)), 0.0)
    present = weights[counts > 0]
    return (weights / present.mean()).round(6).tolist()


def choose_loss(
    task_type: str,
    train_targets: np.ndarray,
    classes: int,
    requested: str = "auto",
    imbalance_ratio: float = 3.0,
    heavy_tail_kurtosis: float = 3.0,
    balancing: str = "loss",
) -> LossChoice:
    """Picks the loss from the training targets, or honours ``requested`` when it fits the task.

    ``balancing`` (classification above ``imbalance_ratio``): ``loss`` weights the loss by class,
    ``sampler`` leaves the loss unweighted and has a weighted sampler draw the training batches.
    """
    allowed = CLASSIFICATION_LOSSES if task_type == "classification" else REGRESSION_LOSSES
    if requested != "auto" and requested not in allowed:
        raise ValueError(f"loss '{requested}' does not fit a {task_type} task: choose one of {', '.join(allowed)}")
    if task_type == "classification":
        counts = np.bincount(train_targets.astype(int), minlength=classes)
        ratio = counts.max() / max(counts[counts > 0].min(), 1)
        imbalance = f"the largest class has {ratio:.1f}x the samples of the smallest (threshold {imbalance_ratio:g})"
        sampled = balancing == "sampler" and ratio >= imbalance_ratio
        if sampled and requested == "weighted_cross_entropy":
            raise ValueError("weighted_cross_entropy and balancing 'sampler' would both correct the imbalance: choose one")
        if sampled:
            name = "cross_entropy" if requested == "auto" else requested
            reason = f"{name.replace('_', ' ')}, unweighted; a weighted sampler draws every class equally often: {imbalance}"
            return LossChoice(name, reason, class_weights(train_targets, classes), "sampler")
        if requested == "auto":
            if ratio < imbalance_ratio:
                return LossChoice("cross_entropy", f"softmax with cross-entropy: {imbalance}")
            requested = "weighted_cross_entropy"
            return LossChoice(
                requested, f"class-weighted cross-entropy: {imbalance}", class_weights(train_targets, classes), "loss"
            )
        weights = class_weights(train_targets, classes) if requested != "cross_entropy" else None
        reason = f"{requested.replace('_', ' ')}: set in params.yaml ({imbalance})"
        return LossChoice(requested, reason, weights, "loss" if weights else "none")
    kurtosis = float(stats.kurtosis(train_targets.astype(np.float64))) if len(train_targets) > 3 else 0.0
    tails = f"the target's excess kurtosis is {kurtosis:.1f} (heavy tails from {heavy_tail_kurtosis:g})"
    if requested == "auto":
        if kurtosis >= heavy_tail_kurtosis:
            return LossChoice("huber", f"Huber loss on the standardised target: {tails}")
        return LossChoice("mse", f"mean squared error on the standardised target: {tails}")
    return LossChoice(requested, f"{requested}: set in params.yaml ({tails})")


class FocalLoss(nn.Module):
    """Multi-class focal loss (Lin et al., 2017): cross-entropy scaled by (1 - p_true)^gamma, so easy
    examples weigh less; class weights act as the alpha factor."""

    def __init__(self, weight: torch.Tensor | None = None, gamma: float = FOCAL_GAMMA) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probabilities = functional.log_softmax(logits, dim=1)
        true_log_probability = log_probabilities.gather(1, targets.unsqueeze(1)).squeeze(1)
        loss = -((1.0 - true_log_probability.exp()) ** self.gamma) * true_log_probability
        if self.weight is not None:
            loss = loss * self.weight[targets]
        return loss.mean()


def build_loss(name: str, weights: list[float] | None = None) -> nn.Module:
    weight = torch.tensor(weights, dtype=torch.float32) if weights else None
    if name == "cross_entropy":
        return nn.CrossEntropyLoss()
    if name == "weighted_cross_entropy":
        return nn.CrossEntropyLoss(weight=weight)
    if name == "focal":
        return FocalLoss(weight)
    if name == "huber":
        return nn.HuberLoss(delta=1.0)
    if name == "mse":
        return nn.MSELoss()
    raise ValueError(f"unknown loss '{name}'")
