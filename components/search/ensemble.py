"""Weighted ensembles of the networks a search trained, chosen by greedy ensemble selection on the
validation split, and kept only when they score higher there than the single final network.

Greedy selection with replacement (Caruana et al., "Ensemble selection from libraries of models",
ICML 2004) is written here: scikit-learn's voting and stacking ensembles refit their members, and
the libraries that implement this selection (auto-sklearn's, AutoGluon's) come with their whole
framework. Ours is a few lines over predictions the platform already has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from components.training.fit import predict

ROUNDS = 20  # members drawn, with replacement: weights are multiples of 1/20
MAX_CANDIDATES = 8


class Ensemble(nn.Module):
    """Members' outputs averaged with fixed weights: class probabilities (returned as their logarithm,
    so that the softmax of the serving wrapper gives them back) or standardised regression values."""

    def __init__(self, members: list[nn.Module], weights: list[float], task_type: str) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))
        self.task_type = task_type

    def embed(self, features):
        """The heaviest member's penultimate layer (monitoring's drift features)."""
        return self.members[int(torch.argmax(self.weights))].embed(features)

    def forward(self, features):
        outputs = torch.stack([member(features) for member in self.members])
        weights = self.weights.view(-1, *([1] * (outputs.dim() - 1)))
        if self.task_type == "classification":
            return torch.log((torch.softmax(outputs, dim=-1) * weights).sum(dim=0) + 1e-12)
        return (outputs * weights).sum(dim=0)


def _loss(task_type: str, outputs: np.ndarray, targets: np.ndarray) -> float:
    """Negative log-likelihood of averaged probabilities, or the mean squared error."""
    if task_type == "classification":
        return float(-np.mean(np.log(outputs[np.arange(len(targets)), targets.astype(int)] + 1e-12)))
    return float(np.mean((outputs.reshape(len(targets), -1)[:, 0] - targets.reshape(-1)) ** 2))


def greedy_selection(predictions: list[np.ndarray], targets: np.ndarray, task_type: str, rounds: int = ROUNDS) -> list[int]:
    """How often each candidate is drawn: starting from the best single one, each round adds the
    candidate (again, possibly) whose addition lowers the validation loss of the average most.

    Args:
        predictions: per candidate, class probabilities or standardised regression outputs.
        targets: encoded validation targets (class indices, or standardised values).
    """
    counts = [0] * len(predictions)
    total = np.zeros_like(predictions[0])
    for drawn in range(rounds):
        losses = [_loss(task_type, (total + prediction) / (drawn + 1), targets) for prediction in predictions]
        best = int(np.argmin(losses))
        counts[best] += 1
        total = total + predictions[best]
    return counts


@dataclass
class EnsembleChoice:
    network: nn.Module | None  # None: the single network stays
    single_score: float
    ensemble_score: float
    members: list[dict[str, Any]] = field(default_factory=list)  # {"label", "configuration", "weight"}
    reason: str = ""


def choose_ensemble(
    candidates: list[tuple[str, dict[str, Any], nn.Module]],
    features: np.ndarray,
    targets: np.ndarray,
    task_type: str,
    score: Callable[[np.ndarray], float],
    fits_limits: Callable[[nn.Module], bool] = lambda network: True,
    margin: Callable[[float], float] = lambda single: 0.0,
) -> EnsembleChoice:
    """Greedy selection over ``candidates`` (label, configuration, trained network; the first is the
    single final network); the ensemble is chosen when its validation ``score`` (the task metric of
    raw outputs) beats the first candidate's by more than ``margin(single score)`` (the stage passes
    one standard error of that score: on a small validation split, a selection that fits it closely
    is partly luck) and ``fits_limits`` accepts it."""
    raw = [predict(network, features) for _, _, network in candidates]
    predictions = [_probabilities(output) if task_type == "classification" else output for output in raw]
    single = float(score(raw[0]))
    counts = greedy_selection(predictions, targets, task_type)
    chosen = [index for index, count in enumerate(counts) if count]
    if len(chosen) < 2:
        return EnsembleChoice(None, single, single, reason="greedy selection kept the single network alone")
    weights = [counts[index] / sum(counts) for index in chosen]
    network = Ensemble([candidates[index][2] for index in chosen], weights, task_type).eval()
    combined = float(score(predict(network, features)))
    members = [
        {"label": candidates[index][0], "configuration": candidates[index][1], "weight": weight}
        for index, weight in zip(chosen, weights)
    ]
    needed = single + margin(single)
    if combined <= needed:
        return EnsembleChoice(
            None, single, combined, members, f"the ensemble scored {combined:.4f} on validation, not above {needed:.4f}"
        )
    if not fits_limits(network):
        return EnsembleChoice(None, single, combined, members, "the ensemble breaks a hardware limit")
    return EnsembleChoice(network, single, combined, members, f"validation score {combined:.4f} against {single:.4f}")


def trial_networks(
    trials: list, build, weights_for, exclude: str, limit: int = MAX_CANDIDATES
) -> list[tuple[str, dict, nn.Module]]:
    """The best trials (by validation score) that left their weights and met the hardware limits, as
    (label, configuration, network with those weights); ``exclude``: a trial id already a candidate."""
    ranked = sorted(
        (t for t in trials if t.status == "SUCCEEDED" and t.score is not None and t.meets_constraints and t.trial_id != exclude),
        key=lambda trial: trial.score,
        reverse=True,
    )
    networks = []
    for trial in ranked:
        path = weights_for(trial)
        if not path.is_file():
            continue
        network = build(trial.parameters)
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        networks.append((f"trial {trial.sequence + 1}", trial.parameters, network))
        if len(networks) == limit:
            break
    return networks


def closing_passes(trials: int, test_rows: int, validation_rows: int, ensemble: bool) -> float:
    """What follows the final training within the budget, in validation passes of the final network:
    each ensemble candidate's validation outputs (the final network and up to MAX_CANDIDATES trials),
    and the test split scored by the single network and an ensemble."""
    candidates = 1 + min(MAX_CANDIDATES, max(trials - 1, 0)) if ensemble else 0
    return candidates + 2.0 * test_rows / max(validation_rows, 1)


def _probabilities(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
