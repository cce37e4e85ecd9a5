"""What every search trial needs to know, written once to a JSON file that each trial reads."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

BENCHMARK_VARIABLE = "DLAUTOML_BENCHMARK_TEST_SCORES"
"""Set (to 1) by benchmarks/search_quality.py: each trial also scores the test split, for anytime curves."""


class TrialSettings(BaseModel):
    splits_file: str
    preprocessor_file: str
    family: str
    task_type: str
    input_shape: list[int]
    output_size: int
    max_epochs: int
    batch_size: int
    seed: int
    threads: int = 1
    loss: str | None = None
    class_weights: list[float] | None = None
    balancing: str = "none"
    augmentation: dict | None = None
    learning_rate_schedule: str = "budget_cosine"  # components.training.schedule
    tracking_uri: str
    experiment_id: str
    parent_run_id: str | None = None
    tags: dict[str, str] = {}
    deadline: float | None = None  # the search's deadline (time.time()): every trial stops by then
    trial_seconds: float | None = None  # each trial's own cap, counted from its start
    constraints: dict[str, float | int | None] = {}  # components.search.constraints.Constraints as a dict
    report_test_score: bool = False  # benchmarks' anytime curves only: each trial also scores the test split
    init_weights: str | None = None  # training.init_from: the source network's state dict, loaded where names and shapes match
    checkpoint_folder: str | None = None  # multi-fidelity: where a configuration's weights wait for its next rung
    weights_to_tracking: bool = False  # a remote trial: its weights go back with its MLflow run (components/search/remote.py)

    def trial_deadline(self, started: float) -> float | None:
        """When a trial that started at ``started`` must stop: its cap or the search's deadline."""
        limits = [limit for limit in (self.deadline, started + self.trial_seconds if self.trial_seconds else None) if limit]
        return min(limits) if limits else None

    def save(self, path: Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrialSettings:
        return cls.model_validate_json(Path(path).read_text())
