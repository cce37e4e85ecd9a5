"""Stage 3, model_formulation: the network family, its search space and the loss, with reasons."""

from __future__ import annotations

import json

import mlflow

from components.data.preparation import Splits
from components.errors import ConfigurationError
from components.manifests import ModelManifest, PreparationManifest, TaskManifest
from components.models.families import choose_families, joint_search_space
from components.training.losses import choose_loss
from tasks.stage_runner import RunContext, StageInputs, execute_stage, run_standalone, stage_task

STAGE = "model_formulation"


def formulate_model(inputs: StageInputs) -> ModelManifest:
    params = inputs.params.model_formulation
    task = TaskManifest.read(inputs.workspace)
    preparation = PreparationManifest.read(inputs.workspace)
    families, family_reason = choose_families(task.modality, params.family, "image" if preparation.image_shape else "text")
    splits = Splits.load(PreparationManifest.file(preparation.splits_file, inputs.workspace))
    try:
        loss = choose_loss(
            task.task_type,
            splits.targets["train"],
            preparation.output_size,
            params.loss,
            params.imbalance_ratio,
            params.heavy_tail_kurtosis,
            params.balancing,
        )
    except ValueError as error:
        raise ConfigurationError(f"model_formulation.loss: {error}") from error
    search_space = joint_search_space(families, preparation.input_shape)
    manifest = ModelManifest(
        family=families[0].name,
        family_reason=family_reason,
        families=[family.name for family in families] if len(families) > 1 else [],
        loss=loss.name,
        loss_reason=loss.reason,
        class_weights=loss.class_weights,
        balancing=loss.balancing,
        search_space=search_space,
    )
    mlflow.set_tags({"loss": loss.name, "loss_reason": loss.reason, "balancing": loss.balancing})
    (inputs.output / manifest.search_space_file).write_text(json.dumps(search_space, indent=2) + "\n")
    inputs.say(f"[{STAGE}] family {family_reason}; loss {loss.reason}")
    return manifest


@stage_task(STAGE, task_run_name=STAGE)
def model_formulation(context: RunContext) -> ModelManifest:
    """Chooses the network family from the data's modality and writes its search space and loss."""
    return execute_stage(STAGE, ModelManifest, context, formulate_model)


if __name__ == "__main__":
    run_standalone(STAGE, ModelManifest, formulate_model)
