"""The ensemble a finished search offers: the final network and the best trials' networks, combined by
greedy selection on the validation split (components.search.ensemble) within the hardware limits."""

from __future__ import annotations

from components.search.constraints import Constraints, violations_of
from components.search.ensemble import choose_ensemble, trial_networks
from components.search.fidelity import weights_file
from components.search.selection import score_standard_error
from components.training.fit import evaluation_metrics


def ensemble_of_trials(search, best, final_network, build, settings, splits, preprocessor, task, params, progress):
    """Greedy ensemble selection over the final network and the best trials' networks, on the
    validation split; the ensemble replaces the final network only if it scores higher there and
    meets the hardware limits."""
    candidates = [("final", best.parameters, final_network)] + trial_networks(
        search.trials,
        build,
        lambda trial: weights_file(settings.checkpoint_folder, trial.parameters, trial.fidelity),
        best.trial_id,
    )

    def score(outputs):
        if task.task_type == "regression":
            outputs = preprocessor.decode_target(outputs)
        return evaluation_metrics(task.task_type, outputs, splits.targets["validation"])[task.metric]

    constraints = Constraints(**params.constraints())

    def fits_limits(network) -> bool:
        return not violations_of(network, preprocessor, task.task_type, splits.features["train"], constraints)

    choice = choose_ensemble(
        candidates,
        preprocessor.transform(splits.features["validation"]),
        preprocessor.training_target(task.task_type, splits.targets["validation"]),
        task.task_type,
        score,
        fits_limits,
        margin=lambda single: (
            score_standard_error(single, len(splits.targets["validation"]), task.task_type)
            if params.selection == "one_standard_error"
            else 0.0
        ),
    )
    if choice.network is not None:
        weights = ", ".join(f"{member['label']} {member['weight']:.2f}" for member in choice.members)
        progress(f"ensemble of {len(choice.members)} networks chosen ({choice.reason}): {weights}")
    else:
        progress(f"the single final network stays ({choice.reason}; {len(candidates)} candidates)")
    return choice
