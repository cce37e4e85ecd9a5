"""The monitoring flow: test a batch of new inputs against the deployed model's reference data."""

from __future__ import annotations

from prefect import flow

from tasks.monitoring import drift_check


@flow(name="monitor", log_prints=True)
def monitor(data_path: str, workspace: str = ".", params_file: str = "params.yaml") -> dict:
    """Reports drift (p-value and decision) for the inputs at ``data_path`` to MLflow."""
    return drift_check(data_path, workspace, params_file)
