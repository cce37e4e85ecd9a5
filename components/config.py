"""Typed view of ``params.yaml``: one section per pipeline stage, parsed once at the boundary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from components.errors import ConfigurationError

TRACKING_URI_VARIABLE = "DLAUTOML_TRACKING_URI"
"""Overrides ``tracking.tracking_uri``. Not ``MLFLOW_TRACKING_URI``: MLflow itself sets that variable
whenever a process calls ``mlflow.set_tracking_uri``, so it would leak from one store to another."""

STAGES: tuple[str, ...] = (
    "task_formulation",
    "data_preparation",
    "model_formulation",
    "training",
    "deployment",
    "monitoring",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskFormulationParams(_Section):
    """What the user tells the platform about the task; ``auto`` lets it infer."""

    data_path: str = "data/digits"
    target: str = "label"
    task_type: Literal["auto", "classification", "regression"] = "auto"
    modality: Literal["auto", "tabular", "image", "sequence", "text", "multimodal"] = "auto"
    metric: Literal["auto", "accuracy", "macro_f1", "r2"] = "auto"
    success_threshold: float | None = None


class DataPreparationParams(_Section):
    seed: int = 0
    test_fraction: float = Field(0.25, gt=0.0, lt=0.9)
    validation_fraction: float = Field(0.15, gt=0.0, lt=0.9)
    max_image_size: int = Field(64, ge=4, le=512)
    feedback_path: str = "data/feedback.npz"
    split_column: str | None = "split"
    group_column: str | None = None

    def table_columns(self) -> dict[str, str | None]:
        """The load_dataset options that name special table columns."""
        return {"split_column": self.split_column, "group_column": self.group_column}

    duplicates: Literal["flag", "drop"] = "drop"
    conflicts: Literal["flag", "drop"] = "drop"
    outliers: Literal["flag", "drop"] = "flag"
    outlier_share: float = Field(0.01, gt=0.0, le=0.5)
    label_errors: Literal["flag", "drop", "off"] = "flag"
    label_error_filter: Literal["predicted_neq_given", "prune_by_noise_rate", "prune_by_class", "both", "confident_learning"] = (
        "predicted_neq_given"
    )
    report_examples: int = Field(8, ge=0)
    augmentation: Literal["auto", "off"] = "auto"
    rotation_degrees: float = Field(10.0, ge=0.0, le=180.0)
    shift: float = Field(0.1, ge=0.0, le=0.5)
    horizontal_flip: bool = False
    jitter: float = Field(0.03, ge=0.0)
    scaling: float = Field(0.1, ge=0.0)
    time_warp: float = Field(0.1, ge=0.0, lt=1.0)
    feedback_version: str | None = None


FamilyName = Literal["auto", "mlp", "cnn", "efficientnet", "sequence", "rocket", "text", "minilm", "fusion", "image_fusion"]


class ModelFormulationParams(_Section):
    # auto: every family that reads the data competes in one search (on a machine without a GPU, the
    # pretrained image backbone only when listed); one name: that family alone; a list: those compete
    family: FamilyName | list[FamilyName] = "auto"
    loss: Literal["auto", "cross_entropy", "weighted_cross_entropy", "focal", "mse", "huber"] = "auto"
    imbalance_ratio: float = Field(3.0, ge=1.0)
    balancing: Literal["loss", "sampler"] = "loss"
    heavy_tail_kurtosis: float = Field(3.0, gt=0.0)


# auto: one-shot NAS (darts) for model-space families on large enough data, tpe otherwise
# (components.search.oneshot.choose_strategy).
Strategy = Literal["auto", "tpe", "random", "evolution", "successive_halving", "darts"]


# A registered model version: models:/NAME@ALIAS or models:/NAME/VERSION (training.init_from).
MODEL_URI_PATTERN = r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$"


class RemoteMachine(_Section):
    """A machine that runs search trials over SSH (NNI's remote training service): the project installed
    there, its environment's bin folder as ``python_path`` (the same on every machine listed)."""

    host: str
    port: int = Field(22, gt=0, lt=65536)
    user: str
    ssh_key_file: str = "~/.ssh/id_ed25519"
    python_path: str
    gpu: bool = False  # each trial on it gets a GPU of its own


class TrainingParams(_Section):
    seed: int = 0
    strategy: Strategy = "auto"
    oneshot_share: float = Field(0.5, gt=0, lt=1)  # one-shot strategies: of the search's time, for the supernet
    max_trials: int = Field(8, ge=1)
    max_minutes: float = Field(4.0, gt=0)  # the whole stage: search and final training
    final_share: float = Field(0.3, ge=0.05, le=0.9)  # of max_minutes kept for the final training, at least
    trial_max_minutes: float | None = Field(None, gt=0)  # each trial's cap; None: room for 3 rounds of trials
    trial_concurrency: int = Field(2, ge=1)
    trial_max_epochs: int = Field(15, ge=1)
    trial_min_steps: int = Field(250, ge=0)  # small data: trials train more epochs, to this many optimiser steps
    final_max_epochs: int = Field(60, ge=1)
    patience: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate_schedule: Literal["budget_cosine", "constant"] = "budget_cosine"
    warm_start: int = Field(3, ge=0)
    portfolio: bool = True  # the family's default configurations are among the first trials
    # so are the best configurations of the nearest datasets in the tracking server's knowledge base
    # (nearest; static: of its most central datasets, the same whatever the new data; off: none)
    meta: Literal["nearest", "static", "off"] = "nearest"
    early_stopping_start: int = Field(5, ge=0)
    selection: Literal["one_standard_error", "best"] = "one_standard_error"
    # models:/NAME@ALIAS or models:/NAME/VERSION: start from that registered network (same modality and
    # input shape), its head replaced; the search then tunes its training (components/training/init_from.py)
    init_from: str | None = Field(None, pattern=MODEL_URI_PATTERN)
    ensemble: bool = True  # a weighted ensemble of the final network and the best trials, if it scores higher on validation
    max_parameters: int | None = Field(None, ge=1)  # hardware limits enforced inside the search (None: none)
    max_mflops: float | None = Field(None, gt=0)
    max_latency_ms: float | None = Field(None, gt=0)  # ONNX Runtime, batch 1, one thread, on this machine
    # Search trials on these machines over SSH instead of as local processes (components/search/remote.py);
    # they reach this machine's search manager at manager_address and log to the shared tracking server.
    remote_machines: list[RemoteMachine] = []
    manager_address: str = "127.0.0.1"
    # The final training's processes (components/training/distributed.py): auto, one per GPU of this
    # machine for a final training of 3 minutes or more (else one); a number, that many, with
    # Lightning's DDP (gloo on the CPU)
    devices: Literal["auto"] | Annotated[int, Field(ge=1)] = "auto"

    @field_validator("meta", mode="before")
    @classmethod
    def _meta_switch(cls, value):
        """``true`` and ``false``, as the first parameters files wrote it: nearest and off."""
        return {True: "nearest", False: "off"}.get(value, value) if isinstance(value, bool) else value

    def constraints(self) -> dict[str, float | int | None]:
        return {"max_parameters": self.max_parameters, "max_mflops": self.max_mflops, "max_latency_ms": self.max_latency_ms}


class DeploymentParams(_Section):
    registered_model_name: str | None = None  # None: "dlautoml-" + the data file or folder name
    parity_tolerance: float = Field(1e-4, gt=0)
    latency_threads: int = Field(1, ge=1)
    latency_repeats: int = Field(200, ge=10)
    quantisation_tolerance: float = Field(0.005, ge=0)
    sweep_batch_sizes: list[int] = [1, 8, 32, 128]
    sweep_threads: list[int] = [1, 2]
    sweep_seconds: float = Field(0.3, gt=0)
    auto_promote: bool = True


class MonitoringParams(_Section):
    p_value: float = Field(0.05, gt=0, lt=1)
    reference_size: int = Field(500, ge=20)
    permutations: int = Field(100, ge=10)
    conformal_confidence: float = Field(0.9, gt=0, lt=1)
    minimum_window: int = Field(20, ge=2)
    max_window: int = Field(2000, ge=20)  # logged rows a check tests: a uniform sample of a larger window
    schedule: str = "*/15 * * * *"
    retrain_on_drift: bool = True
    retrain_quiet_minutes: float = Field(60.0, ge=0)  # no new retraining this long after one started


class TrackingParams(_Section):
    """Where runs go; not a stage, so no DVC stage depends on it."""

    experiment: str = "dlautoml"
    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_folder: str = "mlartifacts"

    def uri(self, workspace: Path | str = ".") -> str:
        """The tracking store: ``DLAUTOML_TRACKING_URI`` when set, else ``tracking_uri``.

        A relative SQLite path is made absolute against the workspace, so that search trials,
        which run in another folder, write to the same store.
        """
        uri = os.environ.get(TRACKING_URI_VARIABLE) or self.tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
            uri = prefix + str((Path(workspace) / uri[len(prefix) :]).resolve())
        return uri

    @field_validator("experiment")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class PipelineParams(_Section):
    """All of ``params.yaml``."""

    task_formulation: TaskFormulationParams = TaskFormulationParams()
    data_preparation: DataPreparationParams = DataPreparationParams()
    model_formulation: ModelFormulationParams = ModelFormulationParams()
    training: TrainingParams = TrainingParams()
    deployment: DeploymentParams = DeploymentParams()
    monitoring: MonitoringParams = MonitoringParams()
    tracking: TrackingParams = TrackingParams()


def load_params(path: str | Path = "params.yaml") -> PipelineParams:
    """Reads and validates ``params.yaml``.

    Raises:
        ConfigurationError: the file is missing, is not YAML, or a value is invalid; the message
            names the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"parameters file {path} not found: run from the project folder or pass --params")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigurationError(f"{path} is not valid YAML{where}: {problem}") from error
    try:
        return PipelineParams.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"{path}: {key}: {first['msg']}") from error
