"""Multi-trial search with NNI's experiment manager: trials run as local processes.

The search space is NNI's JSON format and holds both the architecture choices of a network family
and the training hyper-parameters; the tuner (TPE, random or evolution) proposes configurations and
each trial (:mod:`components.search.trial`) trains one and reports its validation score.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.networking import free_port

TUNERS: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    "tpe": ("components.search.tuners.OrderTolerantTpeTuner", lambda seed: {"optimize_mode": "maximize", "seed": seed}),
    "random": ("components.search.tuners.WarmRandomTuner", lambda seed: {"optimize_mode": "maximize", "seed": seed}),
    "evolution": (
        "components.search.tuners.WarmEvolutionTuner",
        lambda seed: {"optimize_mode": "maximize", "population_size": 8, "seed": seed},
    ),
}
STALL_SECONDS = 90
FINISHED_STATES = {"SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"}


@dataclass
class SearchRequest:
    search_space: dict[str, Any]
    settings_file: Path
    code_folder: Path
    working_folder: Path
    strategy: str = "tpe"
    max_trials: int = 8
    max_minutes: float = 4.0
    concurrency: int = 2
    seed: int = 0
    warm_start: list[dict[str, Any]] = field(default_factory=list)
    progress: Callable[[str], None] = print


@dataclass
class TrialRecord:
    trial_id: str
    sequence: int
    status: str
    parameters: dict[str, Any]
    score: float | None
    seconds: float

    def row(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "trial_id": self.trial_id,
            "status": self.status,
            "score": self.score,
            "seconds": round(self.seconds, 2),
            **{f"param_{key}": value for key, value in self.parameters.items()},
        }


@dataclass
class SearchResult:
    experiment_id: str
    web_url: str
    trials: list[TrialRecord] = field(default_factory=list)

    def ranked(self) -> list[TrialRecord]:
        """Successful trials, best first (the earlier of equal scores first)."""
        scored = [trial for trial in self.trials if trial.score is not None and trial.status == "SUCCEEDED"]
        return sorted(scored, key=lambda trial: (-trial.score, trial.sequence))

    @property
    def best(self) -> TrialRecord:
        scored = self.ranked()
        if not scored:
            failed = [trial for trial in self.trials if trial.status == "FAILED"]
            raise RuntimeError(
                f"no search trial finished successfully ({len(failed)} failed): "
                f"see the trial logs under NNI experiment {self.experiment_id}"
            )
        return scored[0]


def _number(data: Any) -> float | None:
    while isinstance(data, str):
        data = json.loads(data)
    if isinstance(data, dict):
        data = data.get("default")
    return None if data is None else float(data)


def _records(experiment) -> list[TrialRecord]:
    records = []
    for job in experiment.list_trial_jobs():
        parameters = job.hyperParameters[0].parameters if job.hyperParameters else {}
        score = _number(job.finalMetricData[0].data) if job.finalMetricData else None
        seconds = max(0.0, (job.endTime - job.startTime) / 1000.0) if job.endTime and job.endTime > 0 else 0.0
        records.append(TrialRecord(job.trialJobId, int(job.sequenceId), job.status, parameters, score, seconds))
    return sorted(records, key=lambda record: record.sequence)


def run_search(request: SearchRequest) -> SearchResult:
    """Runs the experiment to its trial or time budget and returns every trial's outcome.

    NNI's manager serves its web UI on the chosen port while the search runs.
    """
    from nni.experiment import CustomAlgorithmConfig, Experiment, ExperimentConfig

    logging.getLogger("nni").setLevel(logging.WARNING)
    tuner, tuner_arguments = TUNERS[request.strategy]
    config = ExperimentConfig("local")
    config.experiment_name = "dlautoml-training"
    config.search_space = request.search_space
    config.trial_command = f"{shlex.quote(sys.executable)} -m components.search.trial --settings {shlex.quote(str(Path(request.settings_file).resolve()))}"
    config.trial_code_directory = str(Path(request.code_folder).resolve())
    config.trial_concurrency = request.concurrency
    config.max_trial_number = request.max_trials
    config.max_experiment_duration = f"{max(1, round(request.max_minutes * 60))}s"
    config.experiment_working_directory = str(Path(request.working_folder).resolve())
    arguments = {**tuner_arguments(request.seed), "warm_start": request.warm_start}
    config.tuner = CustomAlgorithmConfig(class_name=tuner, code_directory=config.trial_code_directory, class_args=arguments)
    config.training_service.use_active_gpu = True

    experiment = Experiment(config)
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    experiment.start(port)
    request.progress(f"NNI experiment {experiment.id}: web UI at {web_url} while the search runs")
    try:
        reported: set[str] = set()
        last_activity = time.monotonic()
        while True:
            status = experiment.get_status()
            records = _records(experiment)
            for record in records:
                if record.status in FINISHED_STATES and record.trial_id not in reported:
                    reported.add(record.trial_id)
                    outcome = "no score" if record.score is None else f"validation score {record.score:.4f}"
                    request.progress(
                        f"trial {record.sequence + 1} {record.status.lower()} ({len(reported)}/{request.max_trials} done) "
                        f"in {record.seconds:.1f}s: {outcome}"
                    )
            if status == "ERROR":
                raise RuntimeError(
                    f"NNI experiment {experiment.id} failed: see {config.experiment_working_directory}/{experiment.id}/log"
                )
            all_finished = all(record.status in FINISHED_STATES for record in records)
            if not all_finished or not records:
                last_activity = time.monotonic()
            elif time.monotonic() - last_activity > STALL_SECONDS:
                request.progress(f"no trial started for {STALL_SECONDS}s although the budget is not spent: ending the search")
                break
            if status in ("DONE", "STOPPED") or (status in ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL") and all_finished):
                break
            time.sleep(1.0)
        return SearchResult(experiment.id, web_url, _records(experiment))
    finally:
        experiment.stop()
