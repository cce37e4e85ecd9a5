"""Gated promotion of a challenger to champion, and rollback to the previous champion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.deployment.optimisation import onnx_outputs
from components.deployment.registry import CHALLENGER, CHAMPION
from components.errors import UserInputError
from components.serving.model_store import alias_version, load_version
from components.training.fit import evaluation_metrics

PREVIOUS_CHAMPION_TAG = "previous_champion"


@dataclass
class PromotionDecision:
    promoted: bool
    champion_version: str
    challenger_version: str
    champion_score: float
    challenger_score: float
    metric: str
    holdout: str = "the same holdout"

    @property
    def reason(self) -> str:
        comparison = (
            f"challenger version {self.challenger_version} {self.metric} {self.challenger_score:.4f} against "
            f"champion version {self.champion_version} {self.champion_score:.4f} on {self.holdout}"
        )
        if self.promoted:
            return f"promoted: {comparison}"
        return f"kept the champion: {comparison}; the challenger must score strictly higher"


def score_version(name: str, version: str, inputs: np.ndarray, targets: np.ndarray, task_type: str, metric: str) -> float:
    model = load_version(name, version, threads=1)
    return evaluation_metrics(task_type, onnx_outputs(model.session, inputs), targets)[metric]


def promote_if_better(
    name: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    task_type: str,
    metric: str,
    challenger: str | None = None,
    holdout: str = "the same holdout",
) -> PromotionDecision:
    """Scores champion and challenger on the same holdout; the challenger takes over only if better.

    The decision is written to the challenger version's tags either way.
    """
    client = MlflowClient()
    champion = alias_version(name, CHAMPION)
    challenger = challenger or alias_version(name, CHALLENGER)
    if challenger == champion:
        raise UserInputError(f"version {challenger} of '{name}' is already the champion")
    decision = PromotionDecision(
        promoted=False,
        champion_version=champion,
        challenger_version=challenger,
        champion_score=score_version(name, champion, inputs, targets, task_type, metric),
        challenger_score=score_version(name, challenger, inputs, targets, task_type, metric),
        metric=metric,
        holdout=holdout,
    )
    decision.promoted = decision.challenger_score > decision.champion_score
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger)
        client.set_registered_model_tag(name, PREVIOUS_CHAMPION_TAG, champion)
        try:
            client.delete_registered_model_alias(name, CHALLENGER)
        except MlflowException:
            pass
    client.set_model_version_tag(name, challenger, "promotion_decision", decision.reason)
    return decision


def rollback(name: str) -> tuple[str, str]:
    """Moves the champion alias back to the version it replaced; returns (from, to)."""
    client = MlflowClient()
    current = alias_version(name, CHAMPION)
    previous = client.get_registered_model(name).tags.get(PREVIOUS_CHAMPION_TAG)
    if not previous or previous == current:
        raise UserInputError(f"'{name}' has no previous champion to roll back to")
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, PREVIOUS_CHAMPION_TAG, current)
    return current, previous
