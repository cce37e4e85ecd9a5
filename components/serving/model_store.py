"""Loading a registered ONNX model version and what the server needs to read its inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import mlflow
import numpy as np
import onnxruntime as ort
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from components.deployment.onnx_export import INPUT_NAME, inference_session
from components.errors import UserInputError


@dataclass
class ServingMetadata:
    modality: str
    task_type: str
    class_names: list[str]
    feature_names: list[str]
    input_shape: list[int]
    categories: dict[str, list[str]] = field(default_factory=dict)
    text_length: int = 0
    image_shape: list[int] = field(default_factory=list)  # multimodal rows that end with an image

    @cached_property
    def category_index(self) -> dict[str, dict[str, int]]:
        """Per categorical (or text) column, each value's code: built once per loaded version, not per request."""
        from components.data.text import vocabulary_index

        return {column: vocabulary_index(values) for column, values in self.categories.items()}

    serving_threads: int = 1
    max_batch_size: int = 32


@dataclass
class LoadedModel:
    name: str
    version: str
    session: ort.InferenceSession
    metadata: ServingMetadata

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {INPUT_NAME: batch.astype(np.float32)})[0]


def alias_version(name: str, alias: str) -> str:
    """The version an alias points at.

    Raises:
        UserInputError: the model or the alias does not exist in the registry.
    """
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        raise UserInputError(
            f"no version of model '{name}' has the alias '{alias}' in {mlflow.get_tracking_uri()}: run `dlautoml run` first"
        ) from error


def load_version(name: str, version: str, threads: int | None = None) -> LoadedModel:
    """Downloads a registered version and opens an ONNX Runtime session for it."""
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))
    description = Model.load(str(folder))
    metadata = ServingMetadata(**(description.metadata or {}).get("serving", {}))
    onnx_files = sorted(folder.glob("*.onnx"))
    if not onnx_files:
        raise UserInputError(f"model '{name}' version {version} holds no ONNX file")
    session = inference_session(onnx_files[0], threads or metadata.serving_threads)
    return LoadedModel(name, version, session, metadata)
