"""Multi-trial search with NNI's experiment manager: trials run as local processes.

The search space is NNI's JSON format and holds both the architecture choices of a network family
and the training hyper-parameters; the tuner (TPE, random or evolution) proposes configurations and
each trial (:mod:`components.search.trial`) trains one and reports its validation score.
"""

from __future__ import annotations

import json
import logging
import re
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
        "components.search.tuners.RegularisedEvolutionTuner",
        lambda seed: {"optimize_mode": "maximize", "population_size": 8, "sample_size": 3, "seed": seed},
    ),
}
STALL_SECONDS = 90
JOURNAL_FILE = "search_journal.json"
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
    early_stopping_start: int = 0  # epochs before NNI's median-stop assessor judges a trial; 0: off
    fingerprint: str = ""  # identifies the search for resuming (space, data, settings); empty: never resume
    progress: Callable[[str], None] = print


@dataclass
class TrialRecord:
    trial_id: str
    sequence: int
    status: str
    parameters: dict[str, Any]
    score: float | None
    seconds: float
    intermediate: list[float] = field(default_factory=list)
    loss: float | None = None  # validation loss at the best epoch: breaks ties between equal scores

    def row(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "trial_id": self.trial_id,
            "status": self.status,
            "score": self.score,
            "val_loss": self.loss,
            "seconds": round(self.seconds, 2),
            **{f"param_{key}": value for key, value in self.parameters.items()},
        }


@dataclass
class SearchResult:
    experiment_id: str
    web_url: str
    trials: list[TrialRecord] = field(default_factory=list)
    resumed: int = 0  # how many of the trials come from an interrupted earlier search

    def ranked(self) -> list[TrialRecord]:
        """Successful trials, best first (the earlier of equal scores first)."""
        scored = [trial for trial in self.trials if trial.score is not None and trial.status == "SUCCEEDED"]
        return sorted(
            scored, key=lambda trial: (-trial.score, trial.loss if trial.loss is not None else float("inf"), trial.sequence)
        )

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


def _number(data: Any, key: str = "default") -> float | None:
    """A trial's reported figure: the number itself, or ``key`` of a reported dict."""
    while isinstance(data, str):
        data = json.loads(data)
    if isinstance(data, dict):
        data = data.get(key)
    elif key != "default":
        return None
    return None if data is None else float(data)


def _records(experiment, offset: int = 0, curves: bool = False) -> list[TrialRecord]:
    """The experiment's trials; ``offset`` numbers them after the trials of a resumed search."""
    intermediate: dict[str, list[float]] = {}
    if curves:
        for trial_id, metrics in experiment.get_job_metrics().items():
            periodic = sorted((m for m in metrics if m.type == "PERIODICAL"), key=lambda m: m.sequence)
            intermediate[trial_id] = [value for value in (_number(m.data) for m in periodic) if value is not None]
    records = []
    for job in experiment.list_trial_jobs():
        parameters = job.hyperParameters[0].parameters if job.hyperParameters else {}
        score = _number(job.finalMetricData[0].data) if job.finalMetricData else None
        loss = _number(job.finalMetricData[0].data, "val_loss") if job.finalMetricData else None
        seconds = max(0.0, (job.endTime - job.startTime) / 1000.0) if job.endTime and job.endTime > 0 else 0.0
        records.append(
            TrialRecord(
                job.trialJobId,
                offset + int(job.sequenceId),
                job.status,
                parameters,
                score,
                seconds,
                intermediate.get(job.trialJobId, []),
                loss,
            )
        )
    return sorted(records, key=lambda record: record.sequence)


def _mark_assessor_stopped(records: list[TrialRecord], log_file: Path) -> None:
    """Marks EARLY_STOPPED the trials that the assessor stopped, found in the manager's log of the
    dispatcher's kill commands.

    NNI 3.0's local training service records them as USER_CANCELED: its compatibility layer sets
    the early-stop flag only after the trial has ended.
    """
    if not log_file.is_file():
        return
    killed = set(re.findall(r'received command from dispatcher: KI, "([^"]+)"', log_file.read_text(errors="replace")))
    for record in records:
        if record.trial_id in killed and record.status == "USER_CANCELED":
            record.status = "EARLY_STOPPED"


class Journal:
    """The search's finished trials, written as each one finishes, so that a search whose process was
    killed resumes with them on the next run instead of training them again."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.trials: list[TrialRecord] = []
        self.manager_pid: int | None = None
        self.spent_seconds = 0.0

    @classmethod
    def open(cls, path: Path, fingerprint: str) -> Journal:
        """The unfinished journal of the same search, or a new one."""
        journal = cls(path, fingerprint)
        if not fingerprint or not journal.path.is_file():
            return journal
        try:
            data = json.loads(journal.path.read_text())
        except (OSError, ValueError):
            return journal
        if data.get("fingerprint") == fingerprint and not data.get("complete"):
            journal.trials = [TrialRecord(**row) for row in data["trials"]]
            journal.manager_pid = data.get("manager_pid")
            journal.spent_seconds = float(data.get("spent_seconds", 0.0))
        return journal

    def save(self, complete: bool = False) -> None:
        if not self.fingerprint:
            return
        data = {
            "fingerprint": self.fingerprint,
            "complete": complete,
            "manager_pid": self.manager_pid,
            "spent_seconds": self.spent_seconds,
            "trials": [vars(trial) for trial in self.trials],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_suffix(".writing")
        staging.write_text(json.dumps(data, indent=1))
        staging.replace(self.path)


def _stop_leftover_manager(pid: int | None) -> bool:
    """Ends the NNI manager (and its trials) that a killed search left running; True if there was one."""
    import psutil

    if not pid:
        return False
    try:
        manager = psutil.Process(pid)
        if "nni" not in " ".join(manager.cmdline()):
            return False
        processes = [manager, *manager.children(recursive=True)]
    except psutil.Error:
        return False
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=10)
    return True


def run_search(request: SearchRequest) -> SearchResult:
    """Runs the experiment to its trial or time budget and returns every trial's outcome.

    NNI's manager serves its web UI on the chosen port while the search runs. With a
    ``fingerprint``, an earlier search of the same fingerprint that did not finish (its process was
    killed) is resumed: its finished trials count against the budget, are handed to the tuner as
    history, and are not trained again.
    """
    from nni.experiment import AlgorithmConfig, CustomAlgorithmConfig, Experiment, ExperimentConfig

    logging.getLogger("nni").setLevel(logging.WARNING)
    journal = Journal.open(Path(request.working_folder) / JOURNAL_FILE, request.fingerprint)
    resumed = list(journal.trials)
    if resumed:
        stopped = _stop_leftover_manager(journal.manager_pid)
        request.progress(
            f"resuming an interrupted search: {len(resumed)} finished trial(s) kept"
            + ("; stopped the NNI manager it left running" if stopped else "")
        )
    remaining_trials = request.max_trials - len(resumed)
    remaining_seconds = request.max_minutes * 60 - journal.spent_seconds
    if remaining_trials <= 0 or remaining_seconds < 1:
        journal.save(complete=True)
        return SearchResult("resumed", "", resumed, len(resumed))

    tuner, tuner_arguments = TUNERS[request.strategy]
    tried = [trial.parameters for trial in resumed]
    arguments = {
        **tuner_arguments(request.seed + len(resumed)),
        "warm_start": [configuration for configuration in request.warm_start if configuration not in tried],
        "history": [{"parameter": trial.parameters, "value": trial.score} for trial in resumed if trial.score is not None],
    }
    config = ExperimentConfig("local")
    config.experiment_name = "dlautoml-training"
    config.search_space = request.search_space
    config.trial_command = f"{shlex.quote(sys.executable)} -m components.search.trial --settings {shlex.quote(str(Path(request.settings_file).resolve()))}"
    config.trial_code_directory = str(Path(request.code_folder).resolve())
    config.trial_concurrency = request.concurrency
    config.max_trial_number = remaining_trials
    config.max_experiment_duration = f"{max(1, round(remaining_seconds))}s"
    config.experiment_working_directory = str(Path(request.working_folder).resolve())
    config.tuner = CustomAlgorithmConfig(class_name=tuner, code_directory=config.trial_code_directory, class_args=arguments)
    if request.early_stopping_start:
        # NNI's median-stop assessor: a trial whose best validation score after some epochs is below
        # the median running average of finished trials at that epoch is stopped.
        config.assessor = AlgorithmConfig(
            name="Medianstop", class_args={"optimize_mode": "maximize", "start_step": request.early_stopping_start}
        )
    config.training_service.use_active_gpu = True

    experiment = Experiment(config)
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    started, spent_before = time.monotonic(), journal.spent_seconds
    experiment.start(port)
    journal.manager_pid = experiment._proc.pid if experiment._proc is not None else None
    journal.save()
    request.progress(f"NNI experiment {experiment.id}: web UI at {web_url} while the search runs")
    manager_log = Path(config.experiment_working_directory) / experiment.id / "log" / "nnimanager.log"
    offset = len(resumed)
    try:
        reported: set[str] = set()
        last_activity = time.monotonic()
        while True:
            status = experiment.get_status()
            records = _records(experiment, offset)
            if any(record.status == "USER_CANCELED" and record.trial_id not in reported for record in records):
                _mark_assessor_stopped(records, manager_log)
            for record in records:
                if record.status in FINISHED_STATES and record.trial_id not in reported:
                    reported.add(record.trial_id)
                    outcome = "no score" if record.score is None else f"validation score {record.score:.4f}"
                    request.progress(
                        f"trial {record.sequence + 1} {record.status.lower().replace('_', ' ')} "
                        f"({offset + len(reported)}/{request.max_trials} done) in {record.seconds:.1f}s: {outcome}"
                    )
                    journal.trials.append(record)
                    journal.spent_seconds = spent_before + time.monotonic() - started
                    journal.save()
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
        records = _records(experiment, offset, curves=True)
        _mark_assessor_stopped(records, manager_log)
        stopped = sum(record.status == "EARLY_STOPPED" for record in records)
        if request.early_stopping_start:
            request.progress(f"the median-stop assessor stopped {stopped} of {len(records)} trial(s) early")
        journal.trials = resumed + records
        journal.spent_seconds = spent_before + time.monotonic() - started
        journal.save(complete=True)
        return SearchResult(experiment.id, web_url, resumed + records, len(resumed))
    finally:
        experiment.stop()
