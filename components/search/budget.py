"""The training stage's time budget: one clock for the search and the final training together.

``training.max_minutes`` is a promise: the search gets the budget less the final training's share
(and ends at its deadline with what its trials reached), each trial has its own cap within the
search's deadline, and the final training gets what is left and stops on the stage's deadline with
its best checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Kept back from the final training for what follows it: scoring the test split, plots, logging.
CLOSING_SECONDS = 5.0
# No trial starts with less than this left before the search's deadline (a process start, the data
# loaded, one epoch at least).
MINIMUM_TRIAL_SECONDS = 20.0


def duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``8.2`` -> ``8s``."""
    seconds = max(0, round(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@dataclass
class Budget:
    """Wall-clock deadlines (``time.time()``, shared with trial processes) of the training stage."""

    total_seconds: float
    final_share: float = 0.3
    started: float = field(default_factory=time.time)

    @property
    def search_seconds(self) -> float:
        return self.total_seconds * (1.0 - self.final_share)

    @property
    def search_deadline(self) -> float:
        return self.started + self.search_seconds

    @property
    def deadline(self) -> float:
        return self.started + self.total_seconds

    @property
    def final_deadline(self) -> float:
        """The final training stops here, leaving the stage's closing work its few seconds."""
        return self.deadline - min(CLOSING_SECONDS, 0.05 * self.total_seconds)

    def elapsed(self) -> float:
        return time.time() - self.started

    def remaining(self, until: float | None = None) -> float:
        return max(0.0, (self.deadline if until is None else until) - time.time())

    def trial_seconds(self, concurrency: int, cap_minutes: float | None = None) -> float:
        """A trial's own time cap: as set, or room for three rounds of ``concurrency`` trials in the
        search, so that one slow configuration cannot take the whole search."""
        if cap_minutes is not None:
            return cap_minutes * 60.0
        return max(MINIMUM_TRIAL_SECONDS, self.search_seconds * concurrency / 3.0)

    def describe(self, concurrency: int, cap_minutes: float | None = None) -> str:
        return (
            f"budget {duration(self.total_seconds)}: search {duration(self.search_seconds)} "
            f"(each trial at most {duration(self.trial_seconds(concurrency, cap_minutes))}), "
            f"final training the rest (at least {duration(self.total_seconds * self.final_share)})"
        )


def nni_duration(deadline: float) -> str:
    """NNI's ``max_experiment_duration`` so that no trial starts with less than a trial's minimum
    left: NNI stops submitting trials at its duration and lets running ones finish."""
    left = deadline - time.time()
    lead = min(MINIMUM_TRIAL_SECONDS, 0.2 * left)
    return f"{max(1, math.floor(left - lead))}s"


class EpochLines:
    """Progress of the final training: epoch, validation score and loss, time spent and left; at most
    one line every few seconds (and the first epoch's)."""

    def __init__(self, say: Callable[[str], None], budget: Budget, max_epochs: int, every_seconds: float = 5.0) -> None:
        self.say, self.budget, self.max_epochs, self.every_seconds = say, budget, max_epochs, every_seconds
        self.last_line = 0.0

    def __call__(self, epoch: int, row: dict[str, float]) -> None:
        if time.time() - self.last_line < self.every_seconds:
            return
        self.last_line = time.time()
        self.say(
            f"final training epoch {epoch + 1}/{self.max_epochs}: validation score {row.get('val_score', float('nan')):.4f}, "
            f"loss {row.get('val_loss', float('nan')):.4f}; {duration(self.budget.elapsed())} of the stage's "
            f"{duration(self.budget.total_seconds)} spent, {duration(self.budget.remaining(self.budget.final_deadline))} left"
        )
