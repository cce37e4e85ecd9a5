"""A search's history in a workspace: what identifies a search (to resume one that was killed), the
previous search's best configurations and the family's defaults (the next one's first trials), and
MLflow runs for the trials that never logged themselves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from components.manifests import ModelManifest, TrainingManifest
from components.models.joint_space import resolve
from components.search.fidelity import logged_parameters
from components.search.settings import TrialSettings
from components.search.tuners import compatible_configurations
from components.tracking import log_finished_run


def training_code_digest() -> str:
    """SHA-256 of the code the training stage runs (its code dependencies in dvc.yaml): a search
    finished or killed under other code is not resumed."""
    from components.code_dependencies import PROJECT, listed_code

    digest = hashlib.sha256()
    listed = PROJECT / "dvc.yaml"
    for entry in listed_code(listed)["training"] if listed.is_file() else ["components", "tasks/training.py"]:
        path = PROJECT / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            if "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(PROJECT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def search_fingerprint(settings: TrialSettings, search_space: dict, model: ModelManifest, params) -> str:
    """What makes two searches the same search (for resuming one that was killed): the space, the
    data, and everything a trial's score depends on; the budget may differ."""
    digest = hashlib.sha256(Path(settings.splits_file).read_bytes()).hexdigest()
    identity = {
        "space": search_space,
        "family": model.families or model.family,
        "loss": [model.loss, model.class_weights, model.balancing],
        "augmentation": settings.augmentation,
        "splits": digest,
        "trial": [settings.max_epochs, settings.batch_size, settings.seed],
        "search": [params.strategy, params.seed, params.early_stopping_start],
        "code": training_code_digest(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def log_stopped_trials(search, settings: TrialSettings) -> None:
    """Trials that did not finish (stopped early by the assessor, or failed) never logged themselves:
    each still gets its MLflow run with its configuration and learning curve so far."""
    for trial in search.trials[search.resumed :]:
        if trial.status == "SUCCEEDED":
            continue
        family, own = resolve(trial.parameters, settings.family)
        log_finished_run(
            settings.experiment_id,
            run_name=f"trial-{trial.sequence + 1}",
            parent_run_id=settings.parent_run_id,
            parameters={"family": family, **logged_parameters(own, trial.fidelity)},
            history=[{"val_score": value} for value in trial.intermediate],
            final_metrics={"trial_seconds": trial.seconds},
            tags={**settings.tags, "nni.trial_id": trial.trial_id, "nni.status": trial.status},
            started=trial.ended - trial.seconds if trial.ended else None,
        )


def previous_best(root: Path, search_space: dict, count: int) -> list[dict]:
    """The best configurations of this workspace's last search that are points of the current search
    space (none when the family or its space changed, or warm starts are off)."""
    if count == 0:
        return []
    try:
        previous = TrainingManifest.read(root)
    except FileNotFoundError:
        return []
    candidates = previous.top_configurations or [{**previous.architecture, **previous.hyperparameters}]
    return compatible_configurations(candidates, search_space)[:count]


def first_trials(
    root: Path,
    search_space: dict,
    portfolio: tuple[dict, ...],
    warm_start: int,
    max_trials: int,
    learned: tuple[dict, ...] = (),
    families: int = 1,
) -> tuple[list[dict], str]:
    """The configurations a search tries first, and a line that says which: the previous search's
    best (at most ``warm_start``), then the best of the nearest datasets (``learned``, from the
    knowledge base), then the families' portfolios (those in the space and not already there); together
    at most half the trials, so that the rest of the budget explores, but at least one per family
    where several compete (the portfolios take them in turns), so that a small budget tries each."""
    limit = min(max(1, families, max_trials // 2), max_trials)
    previous = previous_best(root, search_space, min(warm_start, limit))
    chosen, parts = list(previous), []
    if previous:
        parts.append(f"the previous search's {len(previous)} best configuration(s)")
    for source, label in (
        (learned, "of the nearest datasets' best configuration(s)"),
        (portfolio, "of the families' default configuration(s)" if families > 1 else "of the family's default configuration(s)"),
    ):
        added = [
            configuration
            for configuration in compatible_configurations(list(source), search_space)
            if configuration not in chosen
        ]
        added = added[: limit - len(chosen)]
        chosen += added
        if added:
            parts.append(f"{len(added)} {label}")
    return chosen, (" and ".join(parts) + " are the first trials") if parts else ""


def mark_chosen_trial(experiment_id: str, trial_id: str) -> int:
    """Tags the MLflow run of the trial the search chose (``dlautoml.chosen``), so that the runs table
    shows which one was retrained; returns how many runs were tagged (0 when it has none)."""
    client = MlflowClient()
    runs = client.search_runs([experiment_id], f"tags.`nni.trial_id` = '{trial_id}'", max_results=5)
    for run in runs:
        client.set_tag(run.info.run_id, "dlautoml.chosen", "true")
    return len(runs)
