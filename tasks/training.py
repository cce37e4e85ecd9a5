"""Stage 4, training: NNI architecture and hyper-parameter search, then the best configuration
retrained with early stopping and scored on the test split."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import torch

import components
from components.data.preparation import Preprocessor, Splits
from components.manifests import ModelManifest, PreparationManifest, TaskManifest, TrainingManifest
from components.models.drawing import draw_chosen_network
from components.models.families import FAMILIES, architecture_of, build_network, joint_portfolio, network_for
from components.models.pretrained import encoder_tags
from components.search.budget import Budget, EpochLines, duration
from components.search.constraints import Constraints
from components.search.ensemble import closing_passes
from components.search.fidelity import checkpoint_folder, trial_epochs, weights_file
from components.search.history import first_trials, log_stopped_trials, mark_chosen_trial, search_fingerprint
from components.search.knowledge import FAMILIES_JOIN, consult, record_knowledge
from components.search.nni_search import SearchRequest, run_search
from components.search.oneshot import STRATEGIES as ONESHOT_STRATEGIES
from components.search.oneshot import architecture_table, choose_strategy, pin_architecture
from components.search.oneshot_phase import architecture_first
from components.search.pareto import measure_latencies, write_search_report
from components.search.remote import bring_back, check_machines, trial_folder
from components.search.selection import family_race, family_scores, select_configuration
from components.search.settings import BENCHMARK_VARIABLE, TrialSettings
from components.search.trial_ensemble import ensemble_of_trials
from components.tracking import flatten
from components.training.batches import TransformedRows, split_rows
from components.training.distributed import devices_for, fit_on_devices
from components.training.fit import evaluation_metrics, predict
from components.training.init_from import fetch_source, load_matching, pinned_space
from components.training.plots import write_final_reports
from tasks.stage_runner import RunContext, StageInputs, execute_stage, run_standalone, stage_task

STAGE = "training"
NNI_FOLDER = ".nni"


def train(inputs: StageInputs) -> TrainingManifest:
    params = inputs.params.training
    budget = Budget(params.max_minutes * 60, params.final_share)
    root = inputs.workspace
    task = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    model = ModelManifest.read(root)
    epochs = trial_epochs(
        params.trial_max_epochs, preparation.split_sizes.get("train", 0), params.batch_size, params.trial_min_steps
    )
    # training.init_from: a registered network of the same modality and shape, its head replaced
    source = (
        fetch_source(params.init_from, inputs.output / "init_from", task.modality, preparation.input_shape)
        if params.init_from
        else None
    )
    default = source.family if source else model.family
    settings = TrialSettings(
        splits_file=str(PreparationManifest.file(preparation.splits_file, root).resolve()),
        preprocessor_file=str(PreparationManifest.file(preparation.preprocessor_file, root).resolve()),
        family=default,
        init_weights=str(source.weights.resolve()) if source else None,
        task_type=task.task_type,
        input_shape=preparation.input_shape,
        output_size=preparation.output_size,
        max_epochs=epochs,
        batch_size=params.batch_size,
        seed=params.seed,
        threads=max(1, (torch.get_num_threads() or 1) // params.trial_concurrency),
        loss=model.loss,
        class_weights=model.class_weights,
        balancing=model.balancing,
        augmentation=preparation.augmentation or None,
        learning_rate_schedule=params.learning_rate_schedule,
        tracking_uri=mlflow.get_tracking_uri(),
        experiment_id=mlflow.active_run().info.experiment_id,
        parent_run_id=inputs.run_id,
        tags={**inputs.context.tags(STAGE), "dlautoml.trial": "true"},
        deadline=budget.search_deadline,
        trial_seconds=budget.trial_seconds(params.trial_concurrency, params.trial_max_minutes),
        constraints=params.constraints(),
        report_test_score=os.environ.get(BENCHMARK_VARIABLE) == "1",
    )

    def progress(message: str) -> None:
        inputs.say(f"[{STAGE}] {message}")

    check_machines(params.remote_machines, settings.tracking_uri)
    if params.remote_machines:
        progress(f"search trials over SSH on {', '.join(machine.host for machine in params.remote_machines)}")
    progress(budget.describe(params.trial_concurrency, params.trial_max_minutes))
    if epochs > params.trial_max_epochs:
        progress(
            f"a small training split: each trial trains {epochs} epochs ({params.trial_min_steps} optimiser steps), and the "
            "median-stop assessor stays off (a trial costs little more than its start-up, and a slow starter such as a "
            "linear model is often what small data calls for)"
        )
    family = FAMILIES[default]
    competing = [family] if source else [FAMILIES[name] for name in model.families or [model.family]]
    searched = FAMILIES_JOIN.join(candidate.name for candidate in competing)  # the knowledge base's name for what was searched
    splits = Splits.load(settings.splits_file)
    preprocessor = Preprocessor.load(settings.preprocessor_file)
    oneshot = None
    strategy, reason = choose_strategy(
        params.strategy, family.space is not None and source is None, len(splits.targets["train"]), len(competing)
    )
    progress(f"strategy {strategy} ({reason})")
    search_space = model.search_space
    if source is not None:
        search_space = pinned_space(family.search_space_for(preparation.input_shape), source.architecture)
        mlflow.set_tags(source.lineage_tags())
        network = build_network(default, preparation.input_shape, preparation.output_size, source.architecture, preprocessor)
        loaded, new = load_matching(network, source.weights)
        progress(
            f"starting from {source.uri} (version {source.version}, {source.family}, data version {source.data_version[:12]}): "
            f"{loaded} tensors loaded, {new} new (the head); its architecture is kept and the search tunes its training"
        )
    if strategy in ONESHOT_STRATEGIES:
        identity = {"one-shot": strategy, "budget": [params.max_minutes, params.oneshot_share], "space": search_space}
        oneshot = architecture_first(
            root / NNI_FOLDER,
            params,
            strategy,
            budget,
            family,
            splits,
            preprocessor,
            task.task_type,
            preparation,
            progress,
            search_fingerprint(settings, identity, model, params),
        )
        if oneshot is not None:
            search_space = pin_architecture(search_space, oneshot.architecture)
    tuner = "tpe" if strategy in ONESHOT_STRATEGIES else strategy  # after a one-shot search, TPE tunes its training
    learned, _, line = consult(
        params.meta, task.meta_features, task.modality, task.task_type, searched, search_space, params.max_trials
    )
    progress(line)
    portfolio = tuple(joint_portfolio(competing, search_space, params.seed)) if params.portfolio else ()
    warm_start, first = first_trials(
        root, search_space, portfolio, params.warm_start, params.max_trials, tuple(learned), len(competing)
    )
    if first:
        progress(f"warm start: {first}")
    identity = {"space": search_space, "init_from": source.lineage_tags()} if source else search_space
    fingerprint = search_fingerprint(settings, identity, model, params)
    settings.checkpoint_folder = str(checkpoint_folder(root / NNI_FOLDER, fingerprint).resolve())
    settings_file = inputs.output / "trial_settings.json"
    settings.save(settings_file)
    project = Path(components.__file__).resolve().parent.parent
    settings_file, code_folder = trial_folder(params.remote_machines, settings, settings_file, project, root / NNI_FOLDER)

    search = run_search(
        SearchRequest(
            search_space=search_space,
            settings_file=settings_file,
            code_folder=code_folder,
            working_folder=root / NNI_FOLDER,
            strategy=tuner,
            max_trials=params.max_trials,
            max_minutes=params.max_minutes,
            concurrency=params.trial_concurrency,
            seed=params.seed,
            warm_start=warm_start,
            early_stopping_start=params.early_stopping_start if epochs == params.trial_max_epochs else 0,
            fingerprint=fingerprint,
            progress=progress,
            deadline=budget.search_deadline,
            trial_seconds=settings.trial_seconds,
            max_epochs=epochs,
            train_rows=preparation.split_sizes.get("train", 0),
            machines=params.remote_machines,
            manager_address=params.manager_address,
        )
    )
    for line in bring_back(params.remote_machines, search, settings):  # trials over SSH: their weights, and clean-up
        progress(line)
    search_seconds = budget.elapsed()
    # The search's web UI closes with it: the tag says how to open it again.
    mlflow.set_tags(
        {"nni.experiment_id": search.experiment_id, "nni.view": f"dlautoml ui nni (experiment {search.experiment_id})"}
    )
    log_stopped_trials(search, settings)
    top = search.best  # raises, naming the trials' fate, when none succeeded
    record_knowledge(task.meta_features, task.modality, task.task_type, searched, Path(task.data_path).name)

    def build(parameters: dict):
        return network_for(parameters, default, preparation.input_shape, preparation.output_size, preprocessor)

    def size_of(parameters: dict) -> int:
        return sum(parameter.numel() for parameter in build(parameters).parameters())

    selection = select_configuration(
        search.ranked(), len(splits.targets["validation"]), task.task_type, size_of, params.selection
    )
    best = selection.trial
    chosen, architecture, hyperparameters = architecture_of(best.parameters, default)
    family = FAMILIES[chosen]
    progress(f"chose trial {best.sequence + 1} ({selection.reason}): validation score {best.score:.4f}, {chosen} {architecture}")
    if len(competing) > 1:
        progress(family_race(search.trials, default, chosen))

    measure_latencies(
        search.trials,
        build,
        lambda parameters: architecture_of(parameters, default)[:2],
        preprocessor,
        task.task_type,
        splits.features["train"][:2],
    )
    artefacts = write_search_report(search.trials, inputs.output, params.max_latency_ms)
    mlflow.log_params(flatten("chosen", {"family": chosen, **architecture, **hyperparameters}))
    mlflow.set_tags({"search.strategy": params.strategy, "search.strategy_run": strategy, "chosen_trial": str(best.sequence + 1)})
    mlflow.set_tags(encoder_tags(family))
    mark_chosen_trial(settings.experiment_id, best.trial_id)
    if family.space is not None:
        table = architecture_table(
            family.space, architecture, preparation.input_shape, oneshot.probabilities if oneshot else None
        )
        table.to_csv(inputs.output / "architecture.csv", index=False, float_format="%.4f")
        artefacts.append("architecture.csv")
        progress(
            "chosen cells: " + "; ".join(f"{row.stage}.{row.cell} {row.operation} ({row.skip})" for row in table.itertuples())
        )
    if oneshot is not None:
        mlflow.set_tags({"search.nni_strategy": oneshot.strategy})
    constraints = Constraints(**params.constraints())
    if constraints.active:
        over = sum(not trial.meets_constraints for trial in search.trials)
        progress(f"hardware limits ({constraints.describe()}): {over} candidate(s) over them were not trained")

    # With the budgeted schedule the final training runs its whole cycle (a cycle cut by early
    # stopping would end on a high learning rate) and keeps its epoch of lowest validation loss.
    patience = params.patience if params.learning_rate_schedule == "constant" else None
    progress(
        f"search done in {duration(search_seconds)}; retraining the chosen configuration for up to "
        f"{params.final_max_epochs} epochs{' with early stopping' if patience else ''}, "
        f"within the {duration(budget.remaining(budget.final_deadline))} left"
    )

    torch.manual_seed(params.seed)
    network = build_network(chosen, preparation.input_shape, preparation.output_size, architecture, preprocessor)
    trained_weights = weights_file(settings.checkpoint_folder, best.parameters, best.fidelity)
    from_trial = trained_weights.is_file()
    if source is not None and not from_trial:
        load_matching(network, source.weights)
    if from_trial:
        # The chosen trial left its weights: the final training goes on from them (with early
        # stopping on the validation loss) instead of spending its share of the budget starting again.
        network.load_state_dict(torch.load(trained_weights, map_location="cpu", weights_only=True))
        progress(
            f"the final training goes on from trial {best.sequence + 1}'s weights ({len(best.intermediate)} epoch(s) trained)"
        )
    devices, line = devices_for(params.devices, budget.remaining(budget.final_deadline))
    if line:
        progress(line)
    fitted = fit_on_devices(
        devices,
        network,
        EpochLines(progress, budget, params.final_max_epochs),
        task_type=task.task_type,
        train=split_rows(splits, preprocessor, task.task_type, "train"),
        validation=split_rows(splits, preprocessor, task.task_type, "validation"),
        hyperparameters=hyperparameters,
        max_epochs=params.final_max_epochs,
        batch_size=params.batch_size,
        seed=params.seed,
        patience=patience,
        keep_best=True,
        starting_weights_compete=from_trial,
        closing_passes=closing_passes(
            len(search.trials), len(splits.targets["test"]), len(splits.targets["validation"]), params.ensemble
        ),
        loss=model.loss,
        class_weights=model.class_weights,
        balancing=model.balancing,
        augmentation=preparation.augmentation or None,
        deadline=budget.final_deadline,
        schedule=params.learning_rate_schedule,
    )
    if fitted.reached_deadline:
        progress(
            f"final training stopped at the budget after {len(fitted.history)} epoch(s), "
            f"keeping epoch {fitted.best_epoch + 1} (lowest validation loss)"
        )
    if fitted.kept_starting_weights:
        progress(f"no epoch of the final training beat trial {best.sequence + 1}'s weights on validation loss: they are kept")
    final_network, ensemble = fitted.network, None
    if params.ensemble and len(search.trials) > 1:
        ensemble = ensemble_of_trials(search, best, fitted.network, build, settings, splits, preprocessor, task, params, progress)
        final_network = ensemble.network or fitted.network

    def test_outputs(network):
        outputs = predict(network, TransformedRows(splits.features["test"], preprocessor.transform))
        return preprocessor.decode_target(outputs) if task.task_type == "regression" else outputs

    outputs = test_outputs(final_network)
    scores = evaluation_metrics(task.task_type, outputs, splits.targets["test"])
    if final_network is not fitted.network:  # what the single network scores beside the ensemble that replaced it
        scores[f"{task.metric}_of_single_network"] = evaluation_metrics(
            task.task_type, test_outputs(fitted.network), splits.targets["test"]
        )[task.metric]
    torch.save(final_network.state_dict(), inputs.output / "model.pt")
    draw_chosen_network(
        fitted.network,
        preprocessor.transform(splits.features["train"][:1]),
        inputs.output / "network.png",
        f"{chosen} of trial {best.sequence + 1}: {sum(p.numel() for p in fitted.network.parameters()):,} parameters",
    )
    artefacts.append("network.png")
    written, worst = write_final_reports(
        fitted.history,
        outputs,
        splits.targets["test"],
        (task.class_names or []) if task.task_type == "classification" else None,
        inputs.output,
        f"{chosen}: chosen configuration",
    )
    artefacts += written
    if worst is not None:
        progress(f"weakest class on the test split: '{worst['class']}' (F1 {worst['f1']:.3f}, recall {worst['recall']:.3f})")
    for name in artefacts:
        mlflow.log_artifact(str(inputs.output / name), artifact_path=STAGE)
    test_score = scores[task.metric]
    warnings = []
    if test_score < task.success_threshold:
        warnings.append(f"test {task.metric} {test_score:.4f} is below the success threshold {task.success_threshold:.4f}")
    single = scores.get(f"{task.metric}_of_single_network")
    progress(
        f"test {task.metric} {test_score:.4f} (success threshold {task.success_threshold:.4f})"
        + ("" if single is None else f"; the single final network's: {single:.4f}")
    )
    return TrainingManifest(
        family=chosen,
        architecture=architecture,
        hyperparameters=hyperparameters,
        best_trial=best.trial_id,
        trial_count=len(search.trials),
        nni_experiment_id=search.experiment_id,
        test_metric=task.metric,
        test_score=test_score,
        lineage=source.lineage_tags() if source else {},
        top_configurations=[trial.parameters for trial in search.ranked()[: max(params.warm_start, 1)]],
        warm_started=len(warm_start),
        ensemble=ensemble.members if ensemble and ensemble.network is not None else [],
        warnings=warnings,
        metrics={
            **{f"test_{name}": value for name, value in scores.items()},
            "best_validation_score": float(top.score),
            **{
                f"best_validation_score_{name}": float(best_score)
                for name, (best_score, _) in family_scores(search.trials, default).items()
                if best_score is not None and len(competing) > 1
            },
            "chosen_validation_score": float(best.score),
            "chosen_parameters": float(selection.parameters),
            **{f"chosen_{key}": value for key, value in best.cost.items() if key in ("mflops", "latency_ms")},
            "trials_within_one_standard_error": float(selection.pool),
            "trials": float(len(search.trials)),
            "warm_started_trials": float(len(warm_start)),
            "final_epochs": float(len(fitted.history)),
            "final_devices": float(fitted.devices),
            "final_reached_deadline": float(fitted.reached_deadline),
            "final_from_trial_weights": float(from_trial),
            "final_kept_trial_weights": float(fitted.kept_starting_weights),
            **(
                {"single_validation_score": ensemble.single_score, "ensemble_validation_score": ensemble.ensemble_score}
                if ensemble
                else {}
            ),
            "search_seconds": search_seconds,
            **({"oneshot_seconds": oneshot.seconds, "oneshot_epochs": float(oneshot.epochs)} if oneshot else {}),
            "training_seconds": budget.elapsed(),
            "budget_seconds": budget.total_seconds,
        },
    )


@stage_task(STAGE, task_run_name=STAGE)
def training(context: RunContext) -> TrainingManifest:
    """Searches architectures and hyper-parameters with NNI, then retrains and tests the best."""
    return execute_stage(STAGE, TrainingManifest, context, train)


if __name__ == "__main__":
    run_standalone(STAGE, TrainingManifest, train)
