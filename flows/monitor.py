"""The monitoring flow: check new inputs against what the deployed model was trained on."""

from __future__ import annotations

from prefect import flow

from tasks.monitoring import drift_check


@flow(name="monitor", log_prints=True)
def monitor(data_path: str | None = None, workspace: str = ".", params_file: str = "params.yaml") -> dict:
    """Drift (embeddings; per feature for tables), uncertainty and the prediction distribution of the
    inputs at ``data_path``, or of every request the endpoint logged since the last check."""
    return drift_check(data_path, workspace, params_file)
