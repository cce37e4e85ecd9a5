"""Multi-trial search with NNI's experiment manager: trials run as local processes.

The search space is NNI's JSON format and holds both the architecture choices of a network family
and the training hyper-parameters; the tuner (TPE, random, evolution, or successive halving over
fidelities) proposes configurations and each trial (:mod:`components.search.trial`) trains one and
reports its validation score. The search keeps a deadline (:mod:`components.search.budget`).
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.errors import EnvironmentProblem
from components.networking import free_port, nni_bound_to
from components.search.budget import duration, nni_duration
from components.search.fidelity import FIDELITY_KEY
from components.search.records import (
    FINISHED_STATES,
    JOURNAL_FILE,
    Journal,
    SearchResult,
    TrialRecord,
    mark_assessor_stopped,
    read_records,
    stop_leftover_manager,
)

TUNERS: dict[str, tuple[str, Callable[[int, SearchRequest], dict[str, Any]]]] = {
    "tpe": ("components.search.tuners.OrderTolerantTpeTuner", lambda seed, _: {"optimize_mode": "maximize", "seed": seed}),
    "random": ("components.search.tuners.WarmRandomTuner", lambda seed, _: {"optimize_mode": "maximize", "seed": seed}),
    "evolution": (
        "components.search.tuners.RegularisedEvolutionTuner",
        lambda seed, _: {"optimize_mode": "maximize", "population_size": 8, "sample_size": 3, "seed": seed},
    ),
    "successive_halving": (
        "components.search.successive_halving.SuccessiveHalvingTuner",
        lambda seed, request: {
            "optimize_mode": "maximize",
            "seed": seed,
            "max_epochs": request.max_epochs,
            "train_rows": request.train_rows,
        },
    ),
}
STALL_SECONDS = 90
# Past the search's deadline, trials get this long to finish their cut epoch's validation and report
# before the experiment is stopped with them.
DEADLINE_GRACE_SECONDS = 15


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
    deadline: float | None = None  # time.time() at which the search ends; None: max_minutes from its start
    trial_seconds: float | None = None  # each trial's cap (the trials enforce it; NNI kills one far past it)
    heartbeat_seconds: float = 30.0  # a progress line at least this often while trials run
    max_epochs: int = 15  # a full trial's epochs: the top fidelity of successive halving
    train_rows: int = 0  # size of the training split: successive halving's lower rungs train on a share
    machines: list = field(default_factory=list)  # training.remote_machines: trials over SSH (components/search/remote.py)
    manager_address: str = "127.0.0.1"  # where the manager listens, and the machines reach it


def _training_service(request: SearchRequest, first_trial: int):
    """NNI's configuration of where trials run: as processes of this machine, or over SSH on
    ``request.machines``, in the folder NNI uploaded (:func:`components.search.remote.ship_trials`)
    with the machines' Python."""
    from nni.experiment import ExperimentConfig

    if request.machines:
        from components.search.remote import nni_machines

        config = ExperimentConfig("remote")
        config.training_service.machine_list = nni_machines(request.machines)
        config.nni_manager_ip = request.manager_address
        python = f"{request.machines[0].python_path.rstrip('/')}/python"
        settings = Path(request.settings_file).name  # inside the uploaded folder, the trial's working folder
        if request.machines[0].gpu:
            config.trial_gpu_number = 1
    else:
        config = ExperimentConfig("local")
        python, settings = sys.executable, str(Path(request.settings_file).resolve())
        config.training_service.use_active_gpu = True
        gpus = _gpu_count()
        if gpus:  # each trial gets a GPU of its own from NNI (CUDA_VISIBLE_DEVICES); several share one when there are more trials
            config.trial_gpu_number = 1
            config.training_service.max_trial_number_per_gpu = max(1, -(-request.concurrency // gpus))
    config.trial_command = (
        f"{shlex.quote(python)} -m components.search.trial --settings {shlex.quote(settings)} --first-trial {first_trial}"
    )
    config.trial_code_directory = str(Path(request.code_folder).resolve())
    return config


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class _ProgressLines:
    """What the search says while it runs: each finished trial with the best score so far, and a
    line every ``heartbeat_seconds`` while trials run, each with the time spent and left."""

    def __init__(self, request: SearchRequest, deadline: float, done_before: int) -> None:
        self.say = request.progress
        self.max_trials = request.max_trials
        self.heartbeat_seconds = request.heartbeat_seconds
        self.deadline = deadline
        self.started = time.time()
        self.last_line = self.started
        self.done = done_before
        self.best: TrialRecord | None = None

    def clock(self) -> str:
        left = self.deadline - time.time()
        return f"{duration(time.time() - self.started)} elapsed, " + (
            f"{duration(left)} of the search left" if left > 0 else "the search's time is up"
        )

    def best_so_far(self) -> str:
        return f"best so far {self.best.score:.4f} (trial {self.best.sequence + 1})" if self.best else "no score yet"

    def finished(self, record: TrialRecord) -> None:
        self.done += 1
        if record.score is not None and record.status == "SUCCEEDED" and (self.best is None or record.score > self.best.score):
            self.best = record
        outcome = "no score" if record.score is None else f"validation score {record.score:.4f}"
        cut = ", cut at its time limit" if record.reached_deadline else ""
        if record.sampled_rows:
            cut += f", on a sample of {record.sampled_rows:,} training rows that its time limit could hold"
        self.say(
            f"trial {record.sequence + 1} {record.status.lower().replace('_', ' ')} ({self.done}/{self.max_trials} done) "
            f"in {duration(record.seconds)}{cut}: {outcome}; {self.best_so_far()}; {self.clock()}"
        )
        self.last_line = time.time()

    def heartbeat(self, running: int) -> None:
        if running and time.time() - self.last_line >= self.heartbeat_seconds:
            self.say(f"{running} trial(s) running, {self.done}/{self.max_trials} done; {self.best_so_far()}; {self.clock()}")
            self.last_line = time.time()


# NNI 3.0 writes its list of experiments under a file lock with the API of filelock before 3.12 (its
# own pin); with a newer filelock the lock is never acquired and the search waits forever.
FILELOCK_LIMIT = (3, 12)


def require_nni_filelock() -> None:
    """Fails at once, saying what to do, where a filelock that NNI 3.0 hangs with is installed."""
    import filelock

    installed = tuple(int(part) for part in filelock.__version__.split(".")[:2] if part.isdigit())
    if installed >= FILELOCK_LIMIT:
        raise EnvironmentProblem(
            f"filelock {filelock.__version__} is installed, and NNI 3.0 waits forever on its lock with "
            "filelock 3.12 or newer: install the project's pinned versions (pip install -c constraints.txt "
            "-e ., or make install)"
        )


def run_search(request: SearchRequest) -> SearchResult:
    """Runs the experiment to its trial budget or its deadline and returns every trial's outcome.

    NNI's manager serves its web UI on the chosen port while the search runs. No trial starts in the
    last seconds before the deadline, running trials stop themselves at it with their best epoch,
    and any still running shortly after it are stopped with the experiment. With a ``fingerprint``,
    an earlier search of the same fingerprint that did not finish (its process was killed) is
    resumed: its finished trials count against the budget, are handed to the tuner as history, and
    are not trained again; one that finished is reused, unless none of its trials scored.
    """
    from nni.experiment import AlgorithmConfig, CustomAlgorithmConfig, Experiment

    require_nni_filelock()
    logging.getLogger("nni").setLevel(logging.WARNING)
    journal = Journal.open(Path(request.working_folder) / JOURNAL_FILE, request.fingerprint)
    if journal.complete and not journal.scored():  # reused, it would fail again whatever the new budget
        request.progress(
            "the same search finished in an earlier run without a scored trial (its budget was too short): searching again"
        )
        journal = Journal(journal.path, request.fingerprint)
    resumed = list(journal.trials)
    if journal.complete and journal.max_trials == request.max_trials:  # killed after its search, say
        request.progress(f"this search finished in an earlier run that was interrupted: its {len(resumed)} trial(s) are reused")
        return SearchResult("resumed", "", resumed, len(resumed))
    stopped = stop_leftover_manager(journal.manager_pid)
    if resumed:
        request.progress(
            f"resuming an interrupted search: {len(resumed)} finished trial(s) kept"
            + ("; stopped the NNI manager it left running" if stopped else "")
        )
    elif stopped:
        request.progress("stopped the NNI manager an interrupted search left running")
    journal.max_trials = request.max_trials
    deadline = request.deadline or time.time() + request.max_minutes * 60 - journal.spent_seconds
    remaining_trials = request.max_trials - len(resumed)
    if remaining_trials <= 0 or deadline - time.time() < 1:
        journal.save(complete=True)
        return SearchResult("resumed", "", resumed, len(resumed))

    tuner, tuner_arguments = TUNERS[request.strategy]
    tried = [trial.parameters for trial in resumed]
    arguments = {
        **tuner_arguments(request.seed + len(resumed), request),
        "warm_start": [configuration for configuration in request.warm_start if configuration not in tried],
        "history": [
            {
                "parameter": {**trial.parameters, **({FIDELITY_KEY: trial.fidelity} if trial.fidelity else {})},
                "value": trial.score,
            }
            for trial in resumed
            if trial.score is not None
        ],
    }
    config = _training_service(request, len(resumed) + 1)
    config.experiment_name = "dlautoml-training"
    config.search_space = request.search_space
    config.trial_concurrency = request.concurrency
    config.max_trial_number = remaining_trials
    config.max_experiment_duration = nni_duration(deadline)
    if request.trial_seconds:  # a safety net: trials stop themselves at their cap
        config.max_trial_duration = f"{round(request.trial_seconds + 60)}s"
    config.experiment_working_directory = str(Path(request.working_folder).resolve())
    config.tuner = CustomAlgorithmConfig(class_name=tuner, code_directory=config.trial_code_directory, class_args=arguments)
    if request.early_stopping_start:
        # NNI's median-stop assessor: a trial whose best validation score after some epochs is below
        # the median running average of finished trials at that epoch is stopped.
        config.assessor = AlgorithmConfig(
            name="Medianstop", class_args={"optimize_mode": "maximize", "start_step": request.early_stopping_start}
        )
    experiment = Experiment(config)
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    started, spent_before = time.monotonic(), journal.spent_seconds
    with nni_bound_to(request.manager_address):  # NNI's manager would listen on every interface
        experiment.start(port)
    journal.manager_pid = experiment._proc.pid if experiment._proc is not None else None
    journal.save()
    request.progress(f"NNI experiment {experiment.id}: web UI at {web_url} while the search runs")
    experiment_folder = Path(config.experiment_working_directory) / experiment.id
    manager_log = experiment_folder / "log" / "nnimanager.log"
    offset = len(resumed)
    lines = _ProgressLines(request, deadline, offset)
    for record in resumed:
        if record.score is not None and (lines.best is None or record.score > lines.best.score):
            lines.best = record
    try:
        reported: set[str] = set()
        last_activity = time.monotonic()
        while True:
            status = experiment.get_status()
            records = read_records(experiment, offset, experiment_folder=experiment_folder)
            if any(record.status == "USER_CANCELED" and record.trial_id not in reported for record in records):
                mark_assessor_stopped(records, manager_log)
            for record in records:
                if record.status in FINISHED_STATES and record.trial_id not in reported:
                    reported.add(record.trial_id)
                    journal.trials.append(record)  # kept before it is announced: a kill after the line loses nothing
                    journal.spent_seconds = spent_before + time.monotonic() - started
                    journal.save()
                    lines.finished(record)
            running = sum(record.status not in FINISHED_STATES for record in records)
            lines.heartbeat(running)
            if status == "ERROR":
                raise RuntimeError(
                    f"NNI experiment {experiment.id} failed: see {config.experiment_working_directory}/{experiment.id}/log"
                )
            if running and time.time() > deadline + DEADLINE_GRACE_SECONDS:
                request.progress(f"the search's deadline has passed: stopping {running} trial(s) still running")
                break
            all_finished = not running
            if not all_finished or not records:
                last_activity = time.monotonic()
            elif time.monotonic() - last_activity > STALL_SECONDS:
                request.progress(f"no trial started for {STALL_SECONDS}s although the budget is not spent: ending the search")
                break
            if status in ("DONE", "STOPPED") and all_finished and records:
                break
            if status in ("NO_MORE_TRIAL", "TUNER_NO_MORE_TRIAL") and all_finished:
                break
            if all_finished and time.time() > deadline:
                break
            time.sleep(1.0)
        records = read_records(experiment, offset, curves=True, experiment_folder=experiment_folder)
        mark_assessor_stopped(records, manager_log)
        for record in records:  # overran the deadline: stopped with the experiment below
            if record.status not in FINISHED_STATES:
                record.status = "USER_CANCELED"
        stopped = sum(record.status == "EARLY_STOPPED" for record in records)
        if request.early_stopping_start:
            request.progress(f"the median-stop assessor stopped {stopped} of {len(records)} trial(s) early")
        journal.trials = resumed + records
        journal.spent_seconds = spent_before + time.monotonic() - started
        journal.save(complete=True)
        return SearchResult(experiment.id, web_url, resumed + records, len(resumed))
    finally:
        experiment.stop()


def view_search(experiment_id: str, experiment_dir: Path, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serves NNI's web UI of a finished search on ``host:port`` until Ctrl-C (or SIGTERM), then stops
    its manager: `nnictl view` leaves the manager running in the background with no word of how to
    stop it."""
    from nni.experiment import Experiment
    from nni.experiment.launcher import get_stopped_experiment_config

    from components.networking import nni_bound_to

    config = get_stopped_experiment_config(experiment_id, exp_dir=experiment_dir)
    with nni_bound_to(host):
        Experiment(config, id=experiment_id).view(port=port)
