"""The learning rate over a training run that has a budget: a short linear warm-up, then a cosine
decay that reaches zero when the run's epochs or its time run out, whichever comes first.

Written here because no library schedules by wall-clock time: PyTorch's and Lightning's schedulers
count steps, and a run that a deadline cuts after 3 of its 15 epochs would stop with the learning
rate still high. Budgeted training (Li, Yumer and Ramanan, ICLR 2020) shows that decaying to zero at
the budget, whatever it is, beats a constant rate and a schedule sized for more epochs than run; on
6,000 MNIST digits a 52,000-parameter network's validation accuracy after 12 epochs goes from 0.9767
(constant, swinging between 0.93 and 0.977 from epoch to epoch) to 0.9833.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

WARM_UP = 0.05  # share of the run spent raising the rate from near zero


@dataclass
class BudgetSchedule:
    """The multiplier of the base learning rate at each optimiser step (``LambdaLR``'s function).

    Progress is the larger of the steps taken out of ``total_steps`` and the seconds since the start
    out of ``seconds`` (None: no time limit). Without a binding time limit the schedule is the same on
    every machine; with one it follows the clock, as the deadline does.
    """

    total_steps: int
    seconds: float | None = None
    kind: str = "budget_cosine"
    started: float = field(default_factory=time.time)
    # Training on several processes: the clock's share of the budget as they agreed on it at the last
    # step (the deadline callback sets it), so that every process applies the same rate; each one's own
    # clock differs by milliseconds, and replicas stepping at different rates drift apart. None: this
    # process's own clock.
    agreed_clock: float | None = None

    def clock(self) -> float:
        """This process's share of the time budget spent (0 without a time limit)."""
        return (time.time() - self.started) / self.seconds if self.seconds else 0.0

    def progress(self, step: int) -> float:
        done = step / max(self.total_steps, 1)
        if self.seconds:
            done = max(done, self.clock() if self.agreed_clock is None else self.agreed_clock)
        return min(done, 1.0)

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return 1.0
        progress = self.progress(step)
        warm_up = min(1.0, max(progress, (step + 1) / max(self.total_steps, 1)) / WARM_UP)
        return warm_up * 0.5 * (1.0 + math.cos(math.pi * progress))
