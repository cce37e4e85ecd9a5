"""Registering the ONNX model in the MLflow model registry, with aliases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import onnx
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass
class Registration:
    name: str
    version: str
    alias: str
    uri: str


def register_onnx_model(
    onnx_path: Path,
    name: str,
    input_example: np.ndarray,
    tags: dict[str, str],
    metadata: dict | None = None,
    set_alias: bool = True,
) -> Registration:
    """Logs the ONNX model to the active MLflow run and registers a new version of ``name``.

    The first version becomes ``champion``; later ones become ``challenger`` until promoted.
    Without ``set_alias`` the version is registered (and traceable) but not offered for serving.
    """
    info = mlflow.onnx.log_model(
        onnx.load(str(onnx_path)),
        name="model",
        registered_model_name=name,
        input_example=input_example.astype(np.float32),
        metadata={**tags, "serving": metadata or {}},
    )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if not set_alias:
        return Registration(name, version, "", f"models:/{name}/{version}")
    try:
        client.get_model_version_by_alias(name, CHAMPION)
        alias = CHALLENGER
    except MlflowException:
        alias = CHAMPION
    client.set_registered_model_alias(name, alias, version)
    return Registration(name, version, alias, f"models:/{name}@{alias}")
