"""Stage 3, model_formulation: the network family, its search space and the loss, with reasons."""

from __future__ import annotations

import json

from prefect import task
from prefect.cache_policies import NONE

from components.manifests import ModelManifest, TaskManifest
from components.models.families import choose_family
from tasks.stage_runner import RunContext, StageInputs, execute_stage, run_standalone

STAGE = "model_formulation"

LOSSES = {
    "classification": ("cross_entropy", "classes are mutually exclusive: softmax with cross-entropy"),
    "regression": ("mse", "a continuous target: mean squared error on the standardised target"),
}


def formulate_model(inputs: StageInputs) -> ModelManifest:
    task = TaskManifest.read(inputs.workspace)
    family, family_reason = choose_family(task.modality, inputs.params.model_formulation.family)
    loss, loss_reason = LOSSES[task.task_type]
    manifest = ModelManifest(
        family=family.name,
        family_reason=family_reason,
        loss=loss,
        loss_reason=loss_reason,
        search_space=family.search_space,
    )
    (inputs.output / manifest.search_space_file).write_text(json.dumps(family.search_space, indent=2) + "\n")
    inputs.say(f"[{STAGE}] family {family_reason}; loss {loss}: {loss_reason}")
    return manifest


@task(name=STAGE, task_run_name=STAGE, cache_policy=NONE, log_prints=True)
def model_formulation(context: RunContext) -> ModelManifest:
    """Chooses the network family from the data's modality and writes its search space and loss."""
    return execute_stage(STAGE, ModelManifest, context, formulate_model)


if __name__ == "__main__":
    run_standalone(STAGE, ModelManifest, formulate_model)
