"""Which network family fits which data, and building a network from a searched architecture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from torch import nn

from components.errors import ConfigurationError
from components.models import cnn_space, efficientnet, fusion, minilm, mlp, rocket, sequence_space, text_space
from components.models.joint_space import SEPARATOR, interleave, joint_space, random_configuration, resolve
from components.models.pretrained import missing_extra


@dataclass(frozen=True)
class Family:
    name: str
    modality: str
    search_space: dict[str, Any]
    architecture_keys: tuple[str, ...]
    build: Callable[..., nn.Module]
    description: str
    parts: str = ""  # multimodal families: what sits next to the table's columns ("text" or "image")
    # Families whose architectures are an nni.nas model space: the module that holds it
    # (components.models.cnn_space, sequence_space), with the same functions in each: model_space,
    # json_search_space, proxy_shape, build, readable, describe, choice_label, summary. One-shot strategies search
    # these families only.
    space: ModuleType | None = None
    portfolio: tuple[dict[str, Any], ...] = ()  # configurations every search of the family tries first
    # Families whose parts come from an optional extra: whether it is installed (components.models.pretrained).
    available: Callable[[], bool] = lambda: True
    # Whether ``family: auto`` lets it compete on a machine without a GPU (a pretrained backbone costs
    # tens of times a searched CNN per image there: it competes when listed, or where a GPU is).
    auto_on_cpu: bool = True
    # INT8: static quantisation calibrated on training inputs (convolutional image networks); dynamic otherwise
    static_quantisation: bool = False
    weights: str = ""  # pretrained families: the name of their weights in components.models.pretrained.WEIGHTS

    def search_space_for(self, input_shape: list[int]) -> dict[str, Any]:
        """The multi-trial tuners' space: the architecture choices and the training hyper-parameters
        (the model space's choices can depend on the input's shape: an image's side sets the stages)."""
        if self.space is None:
            return self.search_space
        return {**self.space.json_search_space(input_shape), **self.search_space}


FAMILIES: dict[str, Family] = {
    "mlp": Family(
        "mlp",
        "tabular",
        mlp.SEARCH_SPACE,
        mlp.ARCHITECTURE_KEYS,
        lambda shape, outputs, arch, categorical=None, cardinalities=None, **_: mlp.MLP(
            int(shape[0]), outputs, **arch, categorical=categorical, cardinalities=cardinalities
        ),
        "a multi-layer perceptron: rows of numbers carry no spatial structure to exploit",
        portfolio=mlp.PORTFOLIO,
    ),
    "cnn": Family(
        "cnn",
        "image",
        cnn_space.TRAINING_SPACE,
        cnn_space.ARCHITECTURE_KEYS,
        lambda shape, outputs, arch, **_: cnn_space.build(shape, outputs, arch),
        "a convolutional network searched cell by cell (NNI model space): images have local, translation-invariant structure",
        space=cnn_space,
        static_quantisation=True,
    ),
    "efficientnet": Family(
        "efficientnet",
        "image",
        efficientnet.SEARCH_SPACE,
        efficientnet.ARCHITECTURE_KEYS,
        efficientnet.build,
        "an ImageNet-pretrained EfficientNet-Lite0 backbone and a new head (transfer learning), its images resized and "
        "normalised inside the network, fine-tuned as a linear probe, its top blocks or whole, as the search chooses",
        portfolio=efficientnet.PORTFOLIO,
        available=efficientnet.available,
        auto_on_cpu=False,
        static_quantisation=True,
        weights=efficientnet.WEIGHTS,
    ),
    "sequence": Family(
        "sequence",
        "sequence",
        sequence_space.TRAINING_SPACE,
        sequence_space.ARCHITECTURE_KEYS,
        sequence_space.build,
        "blocks of dilated convolutions over time or bidirectional GRUs, searched block by block (NNI model space): "
        "the order of the steps carries the signal",
        space=sequence_space,
        portfolio=sequence_space.PORTFOLIO,
    ),
    "rocket": Family(
        "rocket",
        "sequence",
        rocket.SEARCH_SPACE,
        rocket.ARCHITECTURE_KEYS,
        rocket.build,
        "MiniRocket's random convolution kernels (fixed, biases fitted on training data) and a trained linear or MLP head: "
        "fast and strong on small sequence sets",
        portfolio=rocket.PORTFOLIO,
    ),
    "text": Family(
        "text",
        "text",
        text_space.TRAINING_SPACE,
        text_space.ARCHITECTURE_KEYS,
        text_space.build,
        "word embeddings and blocks of convolutions, bidirectional GRUs or attention layers, searched block by block "
        "(NNI model space)",
        space=text_space,
    ),
    "minilm": Family(
        "minilm",
        "text",
        minilm.SEARCH_SPACE,
        minilm.ARCHITECTURE_KEYS,
        minilm.build,
        "the pretrained sentence encoder all-MiniLM-L6-v2 (its WordPiece tokeniser inside the network) and a new head "
        "(transfer learning), fine-tuned as a linear probe, its top layers or whole, as the search chooses",
        portfolio=minilm.PORTFOLIO,
        available=minilm.available,
        auto_on_cpu=False,
        weights=minilm.WEIGHTS,
    ),
    "fusion": Family(
        "fusion",
        "multimodal",
        fusion.SEARCH_SPACE,
        fusion.ARCHITECTURE_KEYS,
        fusion.build,
        "one encoder per modality (an MLP for the table's columns, a text encoder) and a head over both (late fusion)",
        parts="text",
    ),
    "image_fusion": Family(
        "image_fusion",
        "multimodal",
        fusion.IMAGE_SEARCH_SPACE,
        fusion.IMAGE_ARCHITECTURE_KEYS,
        fusion.build_with_images,
        "one encoder per modality (an MLP for the table's columns, a CNN for the image) and a head over both (late fusion)",
        parts="image",
    ),
}


def choose_families(modality: str, override: str | list[str] = "auto", parts: str = "") -> tuple[list[Family], str]:
    """The families a search chooses among for a modality (multimodal: ``parts`` says whether a text
    or an image sits next to the table): ``auto``, every family that reads the data (on a machine
    without a GPU, those cheap enough there), the first being the modality's default; otherwise the
    one set, or those listed, if each can read that data and is installed."""
    if modality != "multimodal":
        parts = ""
    elif not parts:
        parts = "text"
    what = f"table and {parts}" if parts else modality
    if override != "auto":
        names = [override] if isinstance(override, str) else list(dict.fromkeys(override))
        if "auto" in names or not names:
            raise ConfigurationError("model_formulation.family: a list names the families that compete, without 'auto'")
        chosen = [FAMILIES[name] for name in names]
        for family in chosen:
            if family.modality != modality or family.parts != parts:
                data = f"tables with {parts}" if parts else modality
                reads = f"tables with {family.parts}" if family.parts else family.modality
                raise ConfigurationError(f"model_formulation.family '{family.name}' reads {reads} data, but the data is {data}")
            if not family.available():
                raise missing_extra(f"the '{family.name}' family's pretrained parts")
        if len(chosen) == 1:
            return chosen, f"{chosen[0].name}: set in params.yaml"
        return chosen, f"{' or '.join(names)} for {what} data, listed in params.yaml and chosen by the search on validation"
    readers = [family for family in FAMILIES.values() if family.modality == modality and family.parts == parts]
    if not readers:
        raise ConfigurationError(f"no network family reads {modality} data")
    gpu = _has_gpu()
    competing = [family for family in readers if family.available() and (family.auto_on_cpu or gpu)]
    left_out = [family.name for family in readers if family not in competing]
    note = ""
    if left_out:
        note = f" ({', '.join(left_out)} left out: {'its extra is not installed' if gpu else 'no GPU here; list it in model_formulation.family to search it'})"
    if len(competing) == 1:
        return competing, f"{competing[0].name} for {what} data: {competing[0].description}{note}"
    names = " or ".join(family.name for family in competing)
    return competing, f"{names} for {what} data, chosen by the search on validation{note}: " + "; ".join(
        f"{family.name}, {family.description}" for family in competing
    )


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def joint_search_space(families: list[Family], input_shape: list[int]) -> dict[str, Any]:
    """The search space of one family, or the joint space of several (components.models.joint_space)."""
    if len(families) == 1:
        return families[0].search_space_for(input_shape)
    return joint_space({family.name: family.search_space_for(input_shape) for family in families})


def joint_portfolio(families: list[Family], search_space: dict[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """The families' default configurations as points of the search space, in turns. Where several
    compete, a family without defaults (a model space whose choices depend on the input's shape) gets
    a random configuration of its own space, so that every family has a first trial."""
    if len(families) == 1:
        return interleave({families[0].name: families[0].portfolio}, search_space)
    portfolios = {}
    for family in families:
        own = {key.split(SEPARATOR, 1)[1]: spec for key, spec in search_space.items() if key.startswith(family.name + SEPARATOR)}
        portfolios[family.name] = family.portfolio or (random_configuration(own, seed),)
    return interleave(portfolios, search_space)


def split_parameters(family: Family, parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separates a searched configuration into architecture and training hyper-parameters (a model
    space's smaller images lack its later stages' labels)."""
    if family.space is not None:
        architecture = {key: parameters[key] for key in family.architecture_keys if key in parameters}
    else:
        architecture = {key: parameters[key] for key in family.architecture_keys}
    hyperparameters = {key: value for key, value in parameters.items() if key not in family.architecture_keys}
    return architecture, hyperparameters


def build_network(
    family_name: str, input_shape: list[int], output_size: int, architecture: dict[str, Any], preprocessor=None
) -> nn.Module:
    """The family's network for a searched architecture; a fitted preprocessor tells it which table
    columns are categorical (they get embeddings)."""
    categorical = preprocessor.categorical if preprocessor is not None else []
    cardinalities = preprocessor.cardinalities if preprocessor is not None else []
    text_length = preprocessor.text_length if preprocessor is not None else 0
    image_shape = preprocessor.image_shape if preprocessor is not None else []
    pixels = (preprocessor.means, preprocessor.scales) if preprocessor is not None and preprocessor.modality == "image" else None
    words = preprocessor.words if preprocessor is not None else []
    return FAMILIES[family_name].build(
        input_shape,
        output_size,
        architecture,
        categorical=categorical,
        cardinalities=cardinalities,
        text_length=text_length,
        image_shape=image_shape,
        pixel_statistics=pixels,
        words=words,
    )


def architecture_of(parameters: dict[str, Any], default_family: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A searched configuration's family (of a joint space: the one it trains), architecture and
    training hyper-parameters."""
    family, own = resolve(parameters, default_family)
    return (family, *split_parameters(FAMILIES[family], own))


def network_for(
    parameters: dict[str, Any], default_family: str, input_shape: list[int], output_size: int, preprocessor=None
) -> nn.Module:
    """The network of a searched configuration (of a joint space: its family's)."""
    family, architecture, _ = architecture_of(parameters, default_family)
    return build_network(family, input_shape, output_size, architecture, preprocessor)
