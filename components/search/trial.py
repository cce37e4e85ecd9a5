"""One search trial: NNI hands it a configuration; it trains, reports, and logs to MLflow.

Run by NNI's manager as ``python -m components.search.trial --settings FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from components.data.preparation import Preprocessor, Splits
from components.models.families import FAMILIES, build_network, split_parameters
from components.models.joint_space import resolve
from components.search.constraints import PENALTY_SCORE, Constraints, measure_cost
from components.search.fidelity import logged_parameters, split_fidelity, weights_file
from components.search.records import PARAMETERS_FILE
from components.search.sampling import within_time
from components.search.settings import TrialSettings
from components.training.batches import TransformedRows
from components.training.fit import evaluation_metrics, fit_network, predict
from components.training.init_from import load_matching


@dataclass
class TrialOutcome:
    score: float
    loss: float
    history: list[dict[str, float]]
    seconds: float
    reached_deadline: bool = False
    cost: dict[str, float] = field(default_factory=dict)  # parameters, MFLOPs, ONNX Runtime latency at batch 1
    violations: list[str] = field(default_factory=list)  # the hardware limits it broke (it was not trained)
    test_score: float | None = None  # only for benchmarks (TrialSettings.report_test_score)
    sampled_rows: int | None = None  # the training rows it learnt from when its time cap called for a sample


def train_configuration(
    settings: TrialSettings,
    parameters: dict[str, Any],
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    started: float | None = None,
) -> TrialOutcome:
    """Trains one searched configuration on the train split and scores it on validation, stopping at
    the trial's deadline (its cap from ``started``, or the search's) with the best epoch reached."""
    started = time.time() if started is None else started
    torch.set_num_threads(settings.threads)
    splits = Splits.load(settings.splits_file)
    preprocessor = Preprocessor.load(settings.preprocessor_file)
    targets = {
        split: preprocessor.training_target(settings.task_type, splits.targets[split]) for split in ("train", "validation")
    }
    configuration, fidelity = split_fidelity(parameters)
    family, own = resolve(configuration, settings.family)  # a joint space's configuration trains its family
    architecture, hyperparameters = split_parameters(FAMILIES[family], own)
    torch.manual_seed(settings.seed)
    network = build_network(family, settings.input_shape, settings.output_size, architecture, preprocessor)
    if settings.init_weights:  # training.init_from: a registered network's weights, its head new
        load_matching(network, settings.init_weights)
    constraints = Constraints(**settings.constraints)
    cost = measure_cost(network, preprocessor, settings.task_type, splits.features["train"][:2], constraints)
    violations = cost.violations(constraints)
    if violations:  # not trained: the tuner learns that this region is out of bounds
        return TrialOutcome(PENALTY_SCORE, float("inf"), [], time.time() - started, False, cost.figures(), violations)
    epochs = int(fidelity.get("epochs", settings.max_epochs))
    checkpoint = weights_file(settings.checkpoint_folder, configuration, fidelity) if settings.checkpoint_folder else None
    if checkpoint is not None and fidelity.get("resume_epochs") and checkpoint.is_file():
        # A promoted configuration goes on from where its lower rung stopped.
        network.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        epochs = max(1, epochs - int(fidelity["resume_epochs"]))
    train_features, train_targets = TransformedRows(splits.features["train"], preprocessor.transform), targets["train"]
    share = float(fidelity.get("share", 1.0))
    if share < 1.0:  # a lower rung trains on a seeded random share of the training split
        chosen = np.random.default_rng(settings.seed).permutation(len(train_targets))[: max(1, round(share * len(train_targets)))]
        train_features, train_targets = train_features.subset(np.sort(chosen)), train_targets[np.sort(chosen)]
    validation = (TransformedRows(splits.features["validation"], preprocessor.transform), targets["validation"])
    deadline = settings.trial_deadline(started)
    whole = (train_features, train_targets)
    train, validation = within_time(
        network,
        whole,
        validation,
        settings.batch_size,
        epochs,
        float("inf") if deadline is None else deadline - time.time(),
        settings.seed,
        settings.task_type == "classification",
    )
    result = fit_network(
        network,
        settings.task_type,
        train,
        validation,
        hyperparameters,
        max_epochs=epochs,
        batch_size=settings.batch_size,
        seed=settings.seed,
        on_epoch=on_epoch,
        loss=settings.loss,
        class_weights=settings.class_weights,
        balancing=settings.balancing,
        augmentation=settings.augmentation,
        deadline=settings.trial_deadline(started),
        schedule=settings.learning_rate_schedule,
    )
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save(result.network.state_dict(), checkpoint)
    test_score = None
    if settings.report_test_score:  # a benchmark's anytime curve: never seen by the search
        outputs = predict(result.network, TransformedRows(splits.features["test"], preprocessor.transform))
        if settings.task_type == "regression":
            outputs = preprocessor.decode_target(outputs)
        test_score = evaluation_metrics(settings.task_type, outputs, splits.targets["test"])[
            "accuracy" if settings.task_type == "classification" else "r2"
        ]
    return TrialOutcome(
        result.best_score,
        result.best_loss,
        result.history,
        time.time() - started,
        result.reached_deadline,
        cost.figures(),
        test_score=test_score,
        sampled_rows=None if train is whole else len(train[1]),
    )


def _die_by_signal(number, frame) -> None:
    """NNI stops a trial (its assessor, or a user in the web UI) with SIGINT. Python would turn that
    into KeyboardInterrupt and exit with status 1, which NNI records as FAILED; dying by the signal
    itself lets NNI record EARLY_STOPPED or USER_CANCELED."""
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)


def main(argv: list[str] | None = None) -> None:
    import mlflow
    import nni
    import psutil

    from components.search.knowledge import CONFIGURATION_TAG
    from components.system_metrics import SystemSampler
    from components.tracking import log_finished_run

    parser = argparse.ArgumentParser(description="Run one NNI search trial.")
    parser.add_argument("--settings", required=True, help="trial settings JSON written by the training stage")
    parser.add_argument("--first-trial", type=int, default=1, help="the number of NNI's trial 0 (a resumed search goes on)")
    arguments = parser.parse_args(argv)
    started = psutil.Process().create_time()  # the cap counts the trial's start-up (imports: seconds) too
    settings = TrialSettings.load(arguments.settings)
    signal.signal(signal.SIGINT, _die_by_signal)
    parameters = nni.get_next_parameter()
    if os.environ.get("NNI_OUTPUT_DIR"):  # the search reads what this trial really trains from here
        (Path(os.environ["NNI_OUTPUT_DIR"]) / PARAMETERS_FILE).write_text(json.dumps(parameters))

    def report(epoch: int, row: dict[str, float]) -> None:
        nni.report_intermediate_result(row.get("val_score", float("nan")))

    with SystemSampler() as machine:
        outcome = train_configuration(settings, parameters, on_epoch=report, started=started)
    nni.report_final_result(
        {
            "default": outcome.score,
            "val_loss": outcome.loss if outcome.history else None,
            "reached_deadline": float(outcome.reached_deadline),
            "seconds": outcome.seconds,  # the log, trials.csv and the MLflow run all show this one
            **({"sampled_rows": outcome.sampled_rows} if outcome.sampled_rows else {}),
            "violates_constraints": float(bool(outcome.violations)),
            "trained_parameters": parameters,  # NNI's own record of them can be another trial's (records.py)
            **outcome.cost,
            **({"test_score": outcome.test_score} if outcome.test_score is not None else {}),
        }
    )
    mlflow.set_tracking_uri(settings.tracking_uri)
    configuration, fidelity = split_fidelity(parameters)
    family, own = resolve(configuration, settings.family)  # logged: what the trial trained
    run_id = log_finished_run(
        settings.experiment_id,
        run_name=f"trial-{arguments.first_trial + nni.get_sequence_id()}",  # as the log and search.png number it
        parent_run_id=settings.parent_run_id,
        parameters={"family": family, **logged_parameters(own, fidelity)},
        history=outcome.history,
        final_metrics={
            **({} if outcome.violations else {"best_val_score": outcome.score}),
            "trial_seconds": outcome.seconds,
            **({"sampled_rows": outcome.sampled_rows} if outcome.sampled_rows else {}),
            **outcome.cost,
        },
        started=started,
        series=machine.series(),
        tags={
            **settings.tags,
            "nni.trial_id": nni.get_trial_id(),
            "nni.sequence_id": str(nni.get_sequence_id()),
            "nni.experiment_id": nni.get_experiment_id(),
            "nni.platform": os.environ.get("NNI_PLATFORM", "local"),  # remote: a trial run over SSH
            CONFIGURATION_TAG: json.dumps(configuration),  # the knowledge base's copy, with its types
            "reached_deadline": str(outcome.reached_deadline).lower(),
            **({"violates_constraints": "; ".join(outcome.violations)} if outcome.violations else {}),
        },
    )
    weights = weights_file(settings.checkpoint_folder, configuration, fidelity) if settings.checkpoint_folder else None
    if settings.weights_to_tracking and weights is not None and weights.is_file():  # a remote trial: back to the search's machine
        from components.search.remote import WEIGHTS_ARTIFACT

        mlflow.MlflowClient().log_artifact(run_id, str(weights), WEIGHTS_ARTIFACT)


if __name__ == "__main__":
    main()
