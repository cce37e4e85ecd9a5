"""The pipeline: six stages, in order, as one Prefect flow run and one MLflow parent run."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow
from pydantic.json_schema import SkipJsonSchema

from components.config import Strategy
from tasks.data_preparation import data_preparation
from tasks.deployment import deployment
from tasks.model_formulation import model_formulation
from tasks.monitoring import monitoring
from tasks.run_setup import prepare_run
from tasks.stage_runner import pipeline_run, workspace_lock
from tasks.summary import pipeline_summary
from tasks.task_formulation import task_formulation
from tasks.training import training
from tasks.versioning import push_to_remote


@flow(name="automl", log_prints=True)
def automl(
    workspace: SkipJsonSchema[str] = ".",
    params_file: SkipJsonSchema[str] = "params.yaml",
    data_path: str | None = None,
    target: str | None = None,
    task_type: Literal["auto", "classification", "regression"] | None = None,
    max_trials: int | None = None,
    max_minutes: float | None = None,
    strategy: Strategy | None = None,
    modality: Literal["auto", "tabular", "image", "sequence", "text", "multimodal"] | None = None,
    init_from: str | None = None,
) -> str:
    """Runs the whole pipeline and returns a printed summary; options left empty keep params.yaml's.

    ``workspace`` and ``params_file`` are fixed by the deployment, so the Prefect form leaves them out
    (``SkipJsonSchema``): a run started from the UI cannot be pointed at another project by mistake.

    Args:
        workspace: the project folder on the worker (it holds params.yaml and dvc.yaml); set by the deployment.
        params_file: the parameters file in the workspace; set by the deployment.
        data_path: a CSV or Parquet table, sequences (.npz), or a folder of images; empty: params.yaml's task_formulation.data_path.
        target: the target column of a table; empty: params.yaml's task_formulation.target.
        task_type: classification or regression, or auto to infer it; empty: params.yaml's task_formulation.task_type.
        max_trials: NNI search trials; empty: params.yaml's training.max_trials.
        max_minutes: the training stage's budget, search and final training together; empty: params.yaml's training.max_minutes.
        strategy: the search strategy (tpe, random, evolution, successive_halving, darts, auto); empty: params.yaml's training.strategy.
        modality: tabular, image, sequence, text or multimodal, or auto to detect it; empty: params.yaml's task_formulation.modality.
        init_from: a registered model to start from, models:/NAME@ALIAS or models:/NAME/VERSION (same modality and input shape; its head is replaced); empty: params.yaml's training.init_from.
    """
    root = Path(workspace)
    with workspace_lock(root):  # before the options are written: a second run changes nothing
        prepare_run(
            root,
            root / params_file,
            data_path,
            target,
            task_type,
            max_trials,
            max_minutes,
            strategy,
            modality,
            init_from=init_from,
        )
        with pipeline_run(workspace, params_file) as run:
            task_formulation(run)
            data_preparation(run)
            model_formulation(run)
            training(run)
            deployment(run)
            monitoring(run)
        pushed = push_to_remote(root)  # a team's remote: another machine can reproduce this run's models
        if pushed:
            print(pushed)
    return pipeline_summary(workspace, params_file)
