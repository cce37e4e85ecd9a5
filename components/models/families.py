"""Which network family fits which data, and building a network from a searched architecture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from components.errors import ConfigurationError
from components.models import cnn, mlp


@dataclass(frozen=True)
class Family:
    name: str
    modality: str
    search_space: dict[str, Any]
    architecture_keys: tuple[str, ...]
    build: Callable[[list[int], int, dict[str, Any]], nn.Module]
    description: str


FAMILIES: dict[str, Family] = {
    "mlp": Family(
        "mlp",
        "tabular",
        mlp.SEARCH_SPACE,
        mlp.ARCHITECTURE_KEYS,
        lambda shape, outputs, arch: mlp.MLP(int(shape[0]), outputs, **arch),
        "a multi-layer perceptron: rows of numbers carry no spatial structure to exploit",
    ),
    "cnn": Family(
        "cnn",
        "image",
        cnn.SEARCH_SPACE,
        cnn.ARCHITECTURE_KEYS,
        lambda shape, outputs, arch: cnn.CNN(tuple(shape), outputs, **arch),
        "a convolutional network: images have local, translation-invariant structure",
    ),
}


def choose_family(modality: str, override: str = "auto") -> tuple[Family, str]:
    """Picks the family for a modality, or honours the override when it can read that data."""
    if override != "auto":
        family = FAMILIES[override]
        if family.modality != modality:
            raise ConfigurationError(
                f"model_formulation.family '{override}' reads {family.modality} data, but the data is {modality}"
            )
        return family, f"{family.name}: set in params.yaml"
    for family in FAMILIES.values():
        if family.modality == modality:
            return family, f"{family.name} for {modality} data: {family.description}"
    raise ConfigurationError(f"no network family reads {modality} data")


def split_parameters(family: Family, parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separates a searched configuration into architecture and training hyper-parameters."""
    architecture = {key: parameters[key] for key in family.architecture_keys}
    hyperparameters = {key: value for key, value in parameters.items() if key not in family.architecture_keys}
    return architecture, hyperparameters


def build_network(family_name: str, input_shape: list[int], output_size: int, architecture: dict[str, Any]) -> nn.Module:
    return FAMILIES[family_name].build(input_shape, output_size, architecture)
