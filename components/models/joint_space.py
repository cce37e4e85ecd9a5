"""One search space over several families of a modality, so that the search itself chooses the family
(a from-scratch network or a transfer family) by what validates better.

The space is flat: a ``family`` choice and each family's own parameters under its name
(``rocket/learning_rate``), so that every tuner (TPE, random, evolution, successive halving) reads it
unchanged and two families may give the same hyper-parameter different ranges. A trial trains only its
family's parameters; the others' values in its configuration are ignored. NNI's nested choices
(``_name``) would drop the ignored values, but not every tuner here reads them and every consumer of a
configuration would have to walk the nesting: the flat form keeps a configuration a flat dictionary.

A configuration without ``family`` belongs to the search's only family and passes through unchanged.
"""

from __future__ import annotations

from typing import Any

FAMILY_KEY = "family"
SEPARATOR = "/"


def joint_space(spaces: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The joint space of the families' own spaces (``{family name: its search space}``, in order)."""
    joint: dict[str, Any] = {FAMILY_KEY: {"_type": "choice", "_value": list(spaces)}}
    for name, space in spaces.items():
        joint.update({f"{name}{SEPARATOR}{key}": spec for key, spec in space.items()})
    return joint


def is_joint(space: dict[str, Any]) -> bool:
    return FAMILY_KEY in space


def families_of(space: dict[str, Any], default: str) -> list[str]:
    """The families a search space searches: those of a joint space, or ``default`` alone."""
    return list(space[FAMILY_KEY]["_value"]) if is_joint(space) else [default]


def resolve(parameters: dict[str, Any], default: str) -> tuple[str, dict[str, Any]]:
    """The family a configuration trains and its own parameters, without the prefix."""
    if FAMILY_KEY not in parameters:
        return default, dict(parameters)
    family = parameters[FAMILY_KEY]
    prefix = f"{family}{SEPARATOR}"
    return family, {key.removeprefix(prefix): value for key, value in parameters.items() if key.startswith(prefix)}


def _filler(spec: dict[str, Any]) -> Any:
    """A value that a family's parameter takes where another family trains (the tuner reads a whole point)."""
    kind, values = spec["_type"], spec["_value"]
    if kind == "choice":
        return values[0]
    if kind == "randint":
        return int(values[0])
    return float(min(values[:2]))


def embed(family: str, configuration: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """A family's own configuration as a point of the joint ``space`` (the other families' parameters
    filled in); a configuration of a single-family space is returned as it is."""
    if not is_joint(space):
        return dict(configuration)
    prefix = f"{family}{SEPARATOR}"
    point: dict[str, Any] = {}
    for key, spec in space.items():
        if key == FAMILY_KEY:
            point[key] = family
        elif key.startswith(prefix) and key.removeprefix(prefix) in configuration:
            point[key] = configuration[key.removeprefix(prefix)]
        else:
            point[key] = _filler(spec)
    return point


def interleave(portfolios: dict[str, tuple[dict[str, Any], ...]], space: dict[str, Any]) -> list[dict[str, Any]]:
    """The families' default configurations as points of the joint space, taken in turns (each
    family's first, then each family's second, ...), so that a small budget tries every family."""
    embedded = [[embed(name, configuration, space) for configuration in portfolio] for name, portfolio in portfolios.items()]
    turns = max((len(configurations) for configurations in embedded), default=0)
    return [configurations[turn] for turn in range(turns) for configurations in embedded if turn < len(configurations)]


def random_configuration(space: dict[str, Any], seed: int) -> dict[str, Any]:
    """A seeded random point of a search space, drawn as NNI's random tuner draws one."""
    import numpy as np
    from nni.algorithms.hpo.random_tuner import suggest
    from nni.common.hpo_utils import deformat_parameters, format_search_space

    formatted = format_search_space(space)
    return deformat_parameters(suggest(np.random.default_rng(seed), formatted), formatted)
