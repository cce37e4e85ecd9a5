"""Choosing the configuration to retrain from a finished search.

The highest validation score is an optimistic estimate: over many trials on a small validation
split, the winner is partly the luckiest. The one-standard-error rule (Breiman et al., 1984; the
default of glmnet's ``lambda.1se``) takes the smallest network among the trials whose score is
within one standard error of the best, which on small data often generalises better.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Selection:
    trial: object
    pool: int  # trials within one standard error of the best
    standard_error: float
    parameters: int
    reason: str


def score_standard_error(score: float, samples: int, task_type: str) -> float:
    """Standard error of a validation score: of a proportion for accuracy (at least that of one
    error in ``samples``), and for R^2 under Gaussian residuals, (1 - R^2) * sqrt(2 / n)."""
    samples = max(samples, 1)
    if task_type == "classification":
        return math.sqrt(max(score * (1.0 - score), 1.0 / samples) / samples)
    return max(1.0 - score, 0.0) * math.sqrt(2.0 / samples)


def select_configuration(
    ranked: list, validation_samples: int, task_type: str, size_of: Callable[[dict], int], rule: str = "one_standard_error"
) -> Selection:
    """``ranked``: successful trials, best first; ``size_of``: a configuration's parameter count."""
    best = ranked[0]
    if rule == "best":
        return Selection(best, 1, 0.0, size_of(best.parameters), "the best validation score")
    error = score_standard_error(best.score, validation_samples, task_type)
    # Scores are single-precision: one validation error less than the best is within one standard
    # error of it by construction, and must not fall out of the pool by a rounding.
    pool = [trial for trial in ranked if trial.score >= best.score - error - 1e-6]
    sizes = {id(trial): size_of(trial.parameters) for trial in pool}
    chosen = min(pool, key=lambda trial: (sizes[id(trial)], -trial.score, trial.sequence))
    reason = (
        f"the smallest of {len(pool)} trial(s) within one standard error ({error:.4f}) of the best validation "
        f"score {best.score:.4f}: {sizes[id(chosen)]:,} parameters"
    )
    return Selection(chosen, len(pool), error, sizes[id(chosen)], reason)


def family_scores(trials: list, default_family: str) -> dict[str, tuple[float | None, int]]:
    """Where several families competed in one search: each family's best validation score among its
    successful trials (None if none succeeded) and its number of trials, in the order they first ran."""
    from components.models.joint_space import resolve

    scores: dict[str, tuple[float | None, int]] = {}
    for trial in sorted(trials, key=lambda trial: trial.sequence):
        family = resolve(trial.parameters, default_family)[0]
        best, count = scores.get(family, (None, 0))
        if trial.status == "SUCCEEDED" and trial.score is not None and (best is None or trial.score > best):
            best = trial.score
        scores[family] = (best, count + 1)
    return scores


def family_race(trials: list, default_family: str, chosen: str) -> str:
    """One line: each competing family's best validation score and trials, best first (ties by name),
    and the family chosen."""
    ranked = sorted(family_scores(trials, default_family).items(), key=lambda item: (-(item[1][0] or -math.inf), item[0]))
    parts = [
        f"{family} {'no score' if best is None else f'{best:.4f}'} ({count} trial{'s' if count != 1 else ''})"
        for family, (best, count) in ranked
    ]
    return f"families on validation: {', '.join(parts)}; {chosen} is retrained"
