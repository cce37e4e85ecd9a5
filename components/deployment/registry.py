"""Registering the ONNX model in the MLflow model registry, with aliases."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import onnx
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
CHECKSUM_TAG = "registration_checksum"  # SHA-256 of the ONNX file and the tags: one version per model


@dataclass
class Registration:
    name: str
    version: str
    alias: str
    uri: str


def onnx_signature(onnx_path: Path, input_example: np.ndarray) -> ModelSignature:
    """The model's named input and outputs with their types and shapes, from ONNX Runtime's answer to
    the example: MLflow does not infer one for an ONNX model, and the registry then shows an empty
    schema."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = session.run(None, {name: input_example.astype(np.float32)})
    answers = {output.name: value for output, value in zip(session.get_outputs(), outputs)}
    return infer_signature({name: input_example.astype(np.float32)}, answers)


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
    A model already registered (same ONNX file and tags: a run killed after registering it, run
    again) is not registered twice: its version is returned with the alias it holds.
    """
    checksum = hashlib.sha256(Path(onnx_path).read_bytes() + json.dumps(tags, sort_keys=True).encode()).hexdigest()
    client = MlflowClient()
    existing = client.search_model_versions(f"name = '{name}' and tags.{CHECKSUM_TAG} = '{checksum}'")
    if existing:
        version = str(max(int(found.version) for found in existing))
        held = client.get_model_version(name, version).aliases
        alias = next((name_ for name_ in (CHAMPION, CHALLENGER) if name_ in held), "")
        return Registration(name, version, alias, f"models:/{name}@{alias}" if alias else f"models:/{name}/{version}")
    info = mlflow.onnx.log_model(
        onnx.load(str(onnx_path)),
        name="model",
        registered_model_name=name,
        input_example=input_example.astype(np.float32),
        signature=onnx_signature(onnx_path, input_example),
        metadata={**tags, "serving": metadata or {}},
    )
    version = str(info.registered_model_version)
    for key, value in {**tags, CHECKSUM_TAG: checksum}.items():
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
