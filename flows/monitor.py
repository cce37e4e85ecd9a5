"""The monitoring flow: check new inputs against what the deployed model was trained on."""

from __future__ import annotations

from prefect import flow
from pydantic.json_schema import SkipJsonSchema

from tasks.monitoring import drift_check


@flow(name="monitor", log_prints=True)
def monitor(
    data_path: str | None = None, workspace: SkipJsonSchema[str] = ".", params_file: SkipJsonSchema[str] = "params.yaml"
) -> dict:
    """Drift (embeddings; per feature for tables), uncertainty and the prediction distribution of the
    inputs at ``data_path``, or of every request the endpoint logged since the last check.

    Args:
        data_path: new inputs (a table with the training feature columns, or a folder of images); empty: the
            requests the serving endpoint logged since the last check.
        workspace: the project folder on the worker; set by the deployment.
        params_file: the parameters file in the workspace; set by the deployment.
    """
    return drift_check(data_path, workspace, params_file)
