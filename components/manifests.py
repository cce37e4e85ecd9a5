"""Typed manifests that stages exchange: what a stage produced, where, and with which metrics.

Each manifest is a small JSON file, ``manifest.json``, inside the stage's output folder, which DVC
tracks. File names inside a manifest are relative to that folder, so a folder can be moved into
place atomically after it is complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

MANIFEST_FILE = "manifest.json"
OUTPUTS_FOLDER = Path("outputs")

ManifestType = TypeVar("ManifestType", bound="Manifest")


def stage_folder(stage: str, workspace: Path | str = ".") -> Path:
    """The folder that holds a stage's outputs (declared as the stage's ``outs`` in dvc.yaml)."""
    return Path(workspace) / OUTPUTS_FOLDER / stage


class Manifest(BaseModel):
    """Common shape: the stage's name, its headline metrics and any warnings for the user."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    stage: ClassVar[str] = ""

    metrics: dict[str, float] = {}
    warnings: list[str] = []

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path

    @classmethod
    def read(cls: type[ManifestType], workspace: Path | str = ".") -> ManifestType:
        """Reads the manifest of this stage from the workspace.

        Raises:
            FileNotFoundError: the stage has not produced outputs yet.
        """
        path = stage_folder(cls.stage, workspace) / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the '{cls.stage}' stage first")
        return cls.model_validate_json(path.read_text())

    @classmethod
    def file(cls, name: str, workspace: Path | str = ".") -> Path:
        """Path of a file that this stage wrote into its output folder."""
        return stage_folder(cls.stage, workspace) / name


class TaskManifest(Manifest):
    stage: ClassVar[str] = "task_formulation"

    data_path: str
    modality: str
    task_type: str
    target: str
    metric: str
    success_threshold: float
    class_names: list[str] | None = None
    sample_count: int
    reasons: list[str]
    meta_features: dict[str, float] = {}  # components/data/meta_features.py: how this dataset compares with others


class PreparationManifest(Manifest):
    stage: ClassVar[str] = "data_preparation"

    splits_file: str = "splits.npz"
    preprocessor_file: str = "preprocessor.json"
    split_sizes: dict[str, int]
    input_shape: list[int]
    output_size: int
    feature_names: list[str]
    categories: dict[str, list[str]] = {}  # categorical column -> its values; code i+1 is values[i]
    text_length: int = 0  # multimodal rows end with this many token codes
    image_shape: list[int] = []  # or with the pixels of an image shaped (channels, height, width)
    augmentation: dict[str, Any] = {}

    @property
    def categorical_positions(self) -> list[int]:
        """Positions of the categorical columns among the features (tables)."""
        return [self.feature_names.index(name) for name in self.categories if name in self.feature_names]


class ModelManifest(Manifest):
    stage: ClassVar[str] = "model_formulation"

    family: str  # the modality's default family; with several, the first
    family_reason: str
    families: list[str] = []  # the families the search chooses among (search_space is their joint space); empty: family alone
    loss: str
    loss_reason: str
    class_weights: list[float] | None = None
    balancing: str = "none"  # none | loss (class weights in the loss) | sampler (class weights draw the batches)
    search_space: dict[str, Any]
    search_space_file: str = "search_space.json"


class TrainingManifest(Manifest):
    stage: ClassVar[str] = "training"

    family: str
    architecture: dict[str, Any]
    hyperparameters: dict[str, Any]
    best_trial: str
    trial_count: int
    trials_file: str = "trials.csv"
    model_file: str = "model.pt"
    # A weighted ensemble replaced the single network: its members' labels, searched configurations
    # and weights, in the order of model_file's Ensemble.members.
    ensemble: list[dict[str, Any]] = []
    nni_experiment_id: str
    test_metric: str
    test_score: float
    top_configurations: list[dict[str, Any]] = []
    warm_started: int = 0
    lineage: dict[str, str] = {}  # training.init_from: the registered model version it started from, and its data version


class DeploymentManifest(Manifest):
    stage: ClassVar[str] = "deployment"

    onnx_file: str = "model.onnx"
    optimised_file: str = "model.optimised.onnx"
    int8_file: str = "model.int8.onnx"
    serving_file: str
    quantisation: str
    quantisation_settings: dict[str, str] = {}  # the INT8 settings and the processor they were checked on
    serving_threads: int
    max_batch_size: int
    sweep_file: str = "sweep.csv"
    input_name: str
    output_name: str
    registered_model: str
    registered_version: str
    alias: str
    model_uri: str
    promotion: str = ""


class MonitoringManifest(Manifest):
    stage: ClassVar[str] = "monitoring"

    detector: str
    detector_folder: str = "drift_detector"
    feature_detector_folder: str | None = None
    detector_checksums: dict[str, str] = {}  # folder -> SHA-256 of its files: only these are loaded again
    conformal_file: str = "conformal_scores.npy"
    conformal_confidence: float
    reference_shares: list[float] = []
    p_value_threshold: float
