"""Transfer from the platform's own models: a new search starts from a registered model version's
network (``training.init_from: models:/NAME@ALIAS`` or ``models:/NAME/VERSION``), its head replaced.

The registry holds the served ONNX graph; next to it, the deployment stage logs the PyTorch network it
was exported from (``pytorch/network.pt``: the state dict; ``pytorch/network.json``: family,
architecture, shapes), which is what a new network can start from. A source of another modality or
input shape, an ensemble, or a version without that record ends the run with a line saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from components.config import MODEL_URI_PATTERN
from components.errors import ConfigurationError

ARTIFACT_FOLDER = "pytorch"
WEIGHTS_FILE, RECORD_FILE = "network.pt", "network.json"
URI = re.compile(MODEL_URI_PATTERN)


@dataclass
class SourceModel:
    uri: str
    name: str
    version: str
    run_id: str
    data_version: str
    family: str
    architecture: dict[str, Any]
    modality: str
    input_shape: list[int]
    weights: Path  # the state dict, downloaded

    def lineage_tags(self) -> dict[str, str]:
        """What a run (and the version it registers) records of the model it started from."""
        return {
            "dlautoml.init_from": self.uri,
            "dlautoml.init_from_version": f"{self.name}/{self.version}",
            "dlautoml.init_from_run": self.run_id,
            "dlautoml.init_from_data_version": self.data_version,
        }


def network_record(family: str, architecture: dict, modality: str, input_shape: list[int], ensemble: bool) -> dict:
    return {
        "family": family,
        "architecture": architecture,
        "modality": modality,
        "input_shape": list(input_shape),
        "ensemble": ensemble,
    }


def log_network(state_dict_file: Path, record: dict) -> None:
    """Logs the PyTorch network next to the ONNX model, to the active MLflow run (deployment's)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="dlautoml-network-") as folder:
        (Path(folder) / RECORD_FILE).write_text(json.dumps(record, indent=2))
        shutil.copyfile(state_dict_file, Path(folder) / WEIGHTS_FILE)
        mlflow.log_artifacts(folder, artifact_path=ARTIFACT_FOLDER)


def fetch_source(uri: str, folder: Path, modality: str, input_shape: list[int]) -> SourceModel:
    """The registered model version ``uri`` names, its network downloaded into ``folder``; checked to
    read data of this modality and shape."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    match = URI.match(uri.strip())
    if not match:
        raise ConfigurationError(f"training.init_from '{uri}' is not models:/NAME@ALIAS or models:/NAME/VERSION")
    client = MlflowClient()
    name = match["name"]
    try:
        version = (
            client.get_model_version_by_alias(name, match["alias"])
            if match["alias"]
            else client.get_model_version(name, match["version"])
        )
    except MlflowException as error:
        raise ConfigurationError(
            f"training.init_from '{uri}': no such registered model version in the tracking server"
        ) from error
    try:
        folder.mkdir(parents=True, exist_ok=True)
        local = Path(
            mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=ARTIFACT_FOLDER, dst_path=str(folder))
        )
        record = json.loads((local / RECORD_FILE).read_text())
    except (MlflowException, OSError) as error:
        raise ConfigurationError(
            f"training.init_from '{uri}': version {version.version} has no PyTorch network next to its ONNX model "
            "(registered before the deployment stage logged one): register a newer version"
        ) from error
    if record["ensemble"]:
        raise ConfigurationError(
            f"training.init_from '{uri}': version {version.version} is an ensemble; start from a single network "
            "(a version trained with training.ensemble: false)"
        )
    if record["modality"] != modality or list(record["input_shape"]) != list(input_shape):
        raise ConfigurationError(
            f"training.init_from '{uri}' reads {record['modality']} data of shape {record['input_shape']}, "
            f"but this data is {modality} of shape {list(input_shape)}"
        )
    return SourceModel(
        uri,
        name,
        str(version.version),
        version.run_id,
        (version.tags or {}).get("data_version", ""),
        record["family"],
        record["architecture"],
        record["modality"],
        list(record["input_shape"]),
        local / WEIGHTS_FILE,
    )


def pinned_space(search_space: dict[str, Any], architecture: dict[str, Any]) -> dict[str, Any]:
    """The family's space with the source's architecture fixed: what is left to search is training."""
    return {
        key: {"_type": "choice", "_value": [architecture[key]]} if key in architecture else spec
        for key, spec in search_space.items()
    }


def load_matching(network: nn.Module, weights: Path | str) -> tuple[int, int]:
    """Loads the source's tensors whose names and shapes match (the head, sized for other classes, stays
    new); returns (loaded, left new)."""
    source = torch.load(weights, map_location="cpu", weights_only=True)
    own = network.state_dict()
    matching = {key: value for key, value in source.items() if key in own and own[key].shape == value.shape}
    network.load_state_dict(matching, strict=False)
    return len(matching), len(own) - len(matching)
