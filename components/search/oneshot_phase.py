"""The training stage's one-shot phase: NNI trains the family's model space as a supernet for a share of
the search's time and exports an architecture, which the multi-trial search then tunes (its operations
pinned, its width and training hyper-parameters searched)."""

from __future__ import annotations

from pathlib import Path

from components.models.families import build_network
from components.search.budget import Budget, duration
from components.search.constraints import Constraints, violations_of
from components.search.oneshot import OneShotRequest, finished_before, keep_finished, run_oneshot


def architecture_first(
    folder: Path,
    params,
    strategy: str,
    budget: Budget,
    family,
    splits,
    preprocessor,
    task_type,
    preparation,
    progress,
    fingerprint,
):
    """One-shot strategies: NNI trains the family's model space as a supernet for ``oneshot_share`` of
    the search's time and exports an architecture; the multi-trial search then tunes its training.
    None (and a line saying why) where the family has no model space or the architecture breaks a
    hardware limit: the multi-trial search then searches the whole space, limits enforced."""
    if family.space is None:
        progress(
            f"strategy {strategy} searches model spaces (the image, sequence and text families); {family.name} is searched by tpe"
        )
        return None
    result = finished_before(folder, fingerprint)
    if result is not None:
        progress("the same one-shot search finished in an earlier run: its architecture is reused")
        return result
    training_target = lambda split: preprocessor.training_target(task_type, splits.targets[split])  # noqa: E731
    result = run_oneshot(
        OneShotRequest(
            strategy=strategy,
            space=family.space,
            space_options={"cardinalities": preprocessor.cardinalities},
            task_type=task_type,
            input_shape=preparation.input_shape,
            output_size=preparation.output_size,
            train=(preprocessor.transform(splits.features["train"]), training_target("train")),
            validation=(preprocessor.transform(splits.features["validation"]), training_target("validation")),
            working_folder=folder,
            deadline=budget.started + budget.search_seconds * params.oneshot_share,
            max_epochs=params.trial_max_epochs,
            batch_size=params.batch_size,
            seed=params.seed,
            progress=progress,
        )
    )
    keep_finished(folder, fingerprint, result)
    progress(f"one-shot search chose {result.architecture} in {duration(result.seconds)} ({result.epochs} supernet epoch(s))")
    constraints = Constraints(**params.constraints())
    if constraints.active:
        network = build_network(family.name, preparation.input_shape, preparation.output_size, result.architecture)
        over = violations_of(network, preprocessor, task_type, splits.features["train"], constraints)
        if over:
            progress(f"the one-shot architecture breaks {', '.join(over)}: the multi-trial search takes the whole space")
            return None
    return result
