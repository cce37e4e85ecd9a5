"""What a search's trials left: their records, the search's result, and the journal that lets a
killed search resume without training its finished trials again."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.leftovers import kill_all
from components.search.fidelity import split_fidelity, top_rung

JOURNAL_FILE = "search_journal.json"
FINISHED_STATES = {"SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"}


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
    reached_deadline: bool = False  # stopped by its time cap or the search's deadline, with its best epoch
    fidelity: dict[str, Any] = field(default_factory=dict)  # multi-fidelity: rung, epochs, share of the data
    cost: dict[str, float] = field(default_factory=dict)  # parameters, mflops, latency_ms
    meets_constraints: bool = True  # False: over a hardware limit, not trained
    ended: float | None = None  # time.time() when it finished
    test_score: float | None = None  # benchmarks only (TrialSettings.report_test_score): never used to choose
    sampled_rows: int | None = None  # the training rows it learnt from when its time cap called for a sample

    def row(self) -> dict[str, Any]:
        return {
            "trial": self.sequence + 1,  # as the log, search.png and the MLflow run names number it
            "trial_id": self.trial_id,
            "status": self.status,
            "score": self.score,
            "val_loss": self.loss,
            "seconds": round(self.seconds, 2),
            "reached_deadline": self.reached_deadline,
            **{f"param_{key}": value for key, value in self.parameters.items()},
            **{f"fidelity_{key}": value for key, value in self.fidelity.items() if key in ("rung", "epochs", "share")},
            **self.cost,
            "meets_constraints": self.meets_constraints,
            "ended": self.ended,
            **({"test_score": self.test_score} if self.test_score is not None else {}),
            **({"sampled_rows": self.sampled_rows} if self.sampled_rows is not None else {}),
        }


@dataclass
class SearchResult:
    experiment_id: str
    web_url: str
    trials: list[TrialRecord] = field(default_factory=list)
    resumed: int = 0  # how many of the trials come from an interrupted earlier search

    def ranked(self) -> list[TrialRecord]:
        """Successful trials within the hardware limits, of the highest fidelity reached, best first
        (the earlier of equal scores first); a multi-fidelity search's lower rungs trained too
        briefly to compete."""
        scored = [
            trial for trial in self.trials if trial.score is not None and trial.status == "SUCCEEDED" and trial.meets_constraints
        ]
        top = top_rung(scored)
        scored = [trial for trial in scored if trial.fidelity.get("rung", 0) == top]
        return sorted(
            scored, key=lambda trial: (-trial.score, trial.loss if trial.loss is not None else float("inf"), trial.sequence)
        )

    @property
    def best(self) -> TrialRecord:
        scored = self.ranked()
        if not scored:
            failed = [trial for trial in self.trials if trial.status == "FAILED"]
            over = [trial for trial in self.trials if not trial.meets_constraints]
            if over:
                raise RuntimeError(
                    f"no searched network met the hardware limits: all {len(over)} trial(s) that reached them were over "
                    f"({min(over, key=lambda trial: trial.cost.get('parameters', 0)).cost}, the smallest): "
                    "relax training.max_parameters / max_mflops / max_latency_ms"
                )
            if failed:
                raise RuntimeError(
                    f"no search trial finished successfully ({len(failed)} failed): "
                    f"see the trial logs under NNI experiment {self.experiment_id}"
                )
            raise RuntimeError(
                f"no search trial reported a validation score before the search's deadline ({len(self.trials)} "
                "started, none failed): the budget is too short for this data on this machine; raise "
                "training.max_minutes (or lower training.trial_min_steps)"
            )
        return scored[0]


def _decoded(data: Any) -> Any:
    """A trial's report as NNI stores it (JSON, sometimes encoded twice), decoded."""
    while isinstance(data, str):
        data = json.loads(data)
    return data


def _reported(data: Any, key: str) -> Any:
    """``key`` of a trial's reported dict, or None."""
    data = _decoded(data)
    return data.get(key) if isinstance(data, dict) else None


def _number(data: Any, key: str = "default") -> float | None:
    """A trial's reported figure: the number itself, or ``key`` of a reported dict."""
    data = _decoded(data)
    if isinstance(data, dict):
        data = data.get(key)
    elif key != "default":
        return None
    return None if data is None else float(data)


PARAMETERS_FILE = "parameters.json"  # what a trial really trained, written into its NNI output folder


def trained_parameters(experiment_folder: Path | None, trial_id: str) -> dict[str, Any] | None:
    """The configuration a trial received, as the trial itself wrote it.

    NNI 3.0's local training service hands a parameter set to whichever trial asks first, so with
    trials starting together the manager's record of a trial's ``hyperParameters`` can be another
    trial's (microsoft/nni#5726; seen here: scores and costs reported by one network, recorded
    against the other's configuration). Scores, curves and costs are keyed by trial and are right.
    """
    if experiment_folder is None:
        return None
    for path in Path(experiment_folder).glob(f"environments/*/trials/{trial_id}/{PARAMETERS_FILE}"):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None
    return None


def read_records(experiment, offset: int = 0, curves: bool = False, experiment_folder: Path | None = None) -> list[TrialRecord]:
    """The experiment's trials; ``offset`` numbers them after the trials of a resumed search; with
    ``experiment_folder``, each trial's configuration is the one it wrote (see :func:`trained_parameters`)."""
    intermediate: dict[str, list[float]] = {}
    if curves:
        for trial_id, metrics in experiment.get_job_metrics().items():
            periodic = sorted((m for m in metrics if m.type == "PERIODICAL"), key=lambda m: m.sequence)
            intermediate[trial_id] = [value for value in (_number(m.data) for m in periodic) if value is not None]
    records = []
    for job in experiment.list_trial_jobs():
        final = job.finalMetricData[0].data if job.finalMetricData else None
        received = trained_parameters(experiment_folder, job.trialJobId)
        if received is None:  # a remote trial's folder is on its machine: what it reported
            received = _reported(final, "trained_parameters")
        if received is None:
            received = job.hyperParameters[0].parameters if job.hyperParameters else {}
        parameters, fidelity = split_fidelity(received)
        score = _number(final) if final else None
        loss = _number(final, "val_loss") if final else None
        cut = _number(final, "reached_deadline") if final else None
        cost = {key: _number(final, key) for key in ("parameters", "mflops", "latency_ms")} if final else {}
        # The trial's own measure (from its process's start), as its MLflow run shows it; NNI's job
        # times, a second or two longer, for a trial that never reported.
        seconds = _number(final, "seconds") if final else None
        if seconds is None:
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
                bool(cut),
                fidelity,
                {key: value for key, value in cost.items() if value is not None},
                not (final and _number(final, "violates_constraints")),
                job.endTime / 1000.0 if job.endTime and job.endTime > 0 else None,
                _number(final, "test_score") if final else None,
                int(rows) if final and (rows := _number(final, "sampled_rows")) is not None else None,
            )
        )
    return sorted(records, key=lambda record: record.sequence)


def mark_assessor_stopped(records: list[TrialRecord], log_file: Path) -> None:
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
        self.complete = False
        self.max_trials = 0  # the trial budget the search was asked for

    @classmethod
    def open(cls, path: Path, fingerprint: str) -> Journal:
        """The journal of the same search (finished or not), or a new one."""
        journal = cls(path, fingerprint)
        if not fingerprint or not journal.path.is_file():
            return journal
        try:
            data = json.loads(journal.path.read_text())
        except (OSError, ValueError):
            return journal
        if data.get("fingerprint") == fingerprint:
            journal.trials = [TrialRecord(**row) for row in data["trials"]]
            journal.manager_pid = data.get("manager_pid")
            journal.spent_seconds = float(data.get("spent_seconds", 0.0))
            journal.complete = bool(data.get("complete"))
            journal.max_trials = int(data.get("max_trials", 0))
        return journal

    def scored(self) -> bool:
        """Whether any of its trials reported a validation score."""
        return any(trial.score is not None for trial in self.trials)

    def save(self, complete: bool = False) -> None:
        if not self.fingerprint:
            return
        data = {
            "fingerprint": self.fingerprint,
            "complete": complete,
            "max_trials": self.max_trials,
            "manager_pid": self.manager_pid,
            "spent_seconds": self.spent_seconds,
            "trials": [vars(trial) for trial in self.trials],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_suffix(".writing")
        staging.write_text(json.dumps(data, indent=1))
        staging.replace(self.path)


def stop_leftover_manager(pid: int | None) -> bool:
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
    kill_all(processes)
    return True
