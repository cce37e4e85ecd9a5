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
