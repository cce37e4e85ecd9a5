"""The pipeline: six stages, in order, as one Prefect flow run and one MLflow parent run."""

from __future__ import annotations

from prefect import flow

from tasks.data_preparation import data_preparation
from tasks.deployment import deployment
from tasks.model_formulation import model_formulation
from tasks.monitoring import monitoring
from tasks.stage_runner import pipeline_run
from tasks.summary import pipeline_summary
from tasks.task_formulation import task_formulation
from tasks.training import training


@flow(name="automl", log_prints=True)
def automl(workspace: str = ".", params_file: str = "params.yaml") -> str:
    """Runs the whole pipeline on the data named in params.yaml and returns a printed summary."""
    with pipeline_run(workspace, params_file) as run:
        task_formulation(run)
        data_preparation(run)
        model_formulation(run)
        training(run)
        deployment(run)
        monitoring(run)
    return pipeline_summary(workspace, params_file)
