"""The knowledge base and the meta-model (automation level L4): every finished search is knowledge,
read back from the MLflow tracking server by any workspace that points at it, and a new search starts
with the best configurations of the datasets nearest to its own by meta-features.

The knowledge base is MLflow itself, no second database: a training run whose search finished carries
its dataset's meta-features (``meta_*`` metrics), what was searched (modality, task type, family, as
tags) and ``dlautoml.knowledge``; its trials are its child runs, each with its configuration as JSON
in a tag (MLflow params are strings: ``64`` and ``"64"`` would be one) and its ``best_val_score``.

The meta-model follows what works with few prior datasets (the nearest datasets by meta-features,
their best configurations taken in turn as a greedy portfolio), before anything learned.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

KNOWLEDGE_TAG = "dlautoml.knowledge"  # on a training run whose search finished: "search"
CONFIGURATION_TAG = "dlautoml.configuration"  # on a trial's run: its configuration as JSON
NEIGHBOURS_TAG = "dlautoml.meta_neighbours"  # on a training run: the datasets its first trials came from
META_PREFIX = "meta_"
SCORE = "best_val_score"
FAMILIES_JOIN = "+"  # a joint search's families in the knowledge base: "sequence+rocket"
DATASETS = 3  # neighbours consulted
PER_DATASET = 3  # best configurations read from each
SHARES = ("missing_share", "minority_to_majority", "class_entropy", "linear_landmark")  # already on [0, 1]
LEFT_OUT = ("samples",)  # log10_samples says it on a scale where distances mean something


def record_knowledge(meta_features: dict[str, float], modality: str, task_type: str, family: str, dataset: str) -> None:
    """Makes the active MLflow run (a training run whose search finished) part of the knowledge base:
    its trials become knowledge for the searches of other datasets."""
    import mlflow

    mlflow.log_metrics({f"{META_PREFIX}{key}": float(value) for key, value in meta_features.items()})
    mlflow.set_tags(
        {
            KNOWLEDGE_TAG: "search",
            "dlautoml.modality": modality,
            "dlautoml.task_type": task_type,
            "dlautoml.family": family,
            "dlautoml.dataset": dataset,
        }
    )


def knowledge_runs(client, condition: str = "", order: str = "ASC", max_results: int = 10_000) -> list:
    """The training runs of finished searches in every active experiment of the tracking server, by
    start time (``condition``: more of MLflow's filter, starting with " and ")."""
    from mlflow.entities import ViewType

    experiments = [experiment.experiment_id for experiment in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    if not experiments:
        return []
    return client.search_runs(
        experiments,
        f"tags.`{KNOWLEDGE_TAG}` = 'search'{condition}",
        order_by=[f"attributes.start_time {order}"],
        max_results=max_results,
    )


def run_meta_features(run) -> dict[str, float]:
    """The meta-features a knowledge run recorded."""
    return {key.removeprefix(META_PREFIX): value for key, value in run.data.metrics.items() if key.startswith(META_PREFIX)}


@dataclass
class Neighbour:
    """A dataset of the knowledge base, how far it is from the new one, and its best configurations."""

    run_id: str
    dataset: str
    data_version: str
    distance: float
    configurations: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.dataset} (distance {self.distance:.2f}, run {self.run_id[:8]})"


def comparable(meta_features: dict[str, float]) -> dict[str, float]:
    """Meta-features on scales where a difference of 1 means about as much for each: shares as they
    are, counts and sizes as base-10 logarithms, a skew as a signed logarithm."""
    figures = {}
    for key, value in meta_features.items():
        if key in LEFT_OUT or value is None or not math.isfinite(value):
            continue
        if key in SHARES or key.startswith("log10_"):
            figures[key] = float(value)
        elif key == "target_skew":
            figures[key] = math.copysign(math.log10(1 + abs(value)), value)
        else:
            figures[key] = math.log10(1 + max(value, 0.0))
    return figures


def distances(new: dict[str, float], known: list[dict[str, float]]) -> list[float]:
    """Euclidean distances between comparable meta-features, over the figures both datasets have
    (scikit-learn's NaN-aware distance, scaled up for the figures one of them lacks)."""
    import numpy as np
    from sklearn.metrics.pairwise import nan_euclidean_distances

    keys = sorted(set(comparable(new)).union(*(comparable(figures) for figures in known)))

    def row(figures: dict[str, float]) -> list[float]:
        values = comparable(figures)
        return [values.get(key, np.nan) for key in keys]

    if not known or not keys:
        return []
    return [float(value) for value in nan_euclidean_distances([row(new)], [row(figures) for figures in known])[0]]


def nearest_datasets(
    meta_features: dict[str, float],
    modality: str,
    task_type: str,
    family: str,
    search_space: dict,
    count: int = DATASETS,
    static: bool = False,
) -> list[Neighbour]:
    """The ``count`` datasets of the knowledge base (all experiments of the tracking server) nearest to
    these meta-features, searched for the same kind of task with a family that ``family`` names (one
    name, or several joined by ``+`` for a joint search: a search of ``rocket`` alone learns from a
    ``sequence+rocket`` search's rocket trials, and the other way round), each with its best
    configurations of those families as points of ``search_space``, best first. Empty when the base
    holds none.

    ``static``: the most central datasets instead (the smallest mean distance to the base's others),
    the same whatever the new dataset: a static portfolio learned from the base, as Auto-sklearn 2.0's
    is, against which the nearest datasets' choice shows what the meta-features add."""
    from mlflow.tracking import MlflowClient

    from components.search.tuners import compatible_configurations

    client = MlflowClient()
    wanted = set(family.split(FAMILIES_JOIN))
    runs = knowledge_runs(
        client,
        f" and tags.`dlautoml.modality` = '{modality}' and tags.`dlautoml.task_type` = '{task_type}'",
        order="DESC",
    )
    latest = {}  # one run per dataset version: its latest search
    for run in runs:
        if wanted & set(run.data.tags.get("dlautoml.family", "").split(FAMILIES_JOIN)):
            latest.setdefault(run.data.tags.get("data_version", run.info.run_id), run)
    known = list(latest.values())
    figures = [run_meta_features(run) for run in known]
    if static:
        between = [distances(own, figures) for own in figures]
        order = [sum(row) / max(len(row) - 1, 1) for row in between]
    else:
        order = distances(meta_features, figures)
    neighbours = []
    for distance, run in sorted(zip(order, known, strict=True), key=lambda pair: pair[0]):
        trials = client.search_runs(
            [run.info.experiment_id],
            f"tags.mlflow.parentRunId = '{run.info.run_id}' and metrics.{SCORE} > -1e308",
            order_by=[f"metrics.{SCORE} DESC"],
            max_results=50,
        )
        searched = run.data.tags.get("dlautoml.family", "")
        configurations = [
            json.loads(trial.data.tags[CONFIGURATION_TAG]) for trial in trials if CONFIGURATION_TAG in trial.data.tags
        ]
        usable = compatible_configurations(_translated(configurations, searched, wanted, search_space), search_space)
        usable = usable[:PER_DATASET]
        if usable:
            neighbours.append(
                Neighbour(
                    run.info.run_id,
                    run.data.tags.get("dlautoml.dataset", "?"),
                    run.data.tags.get("data_version", ""),
                    distance,
                    usable,
                )
            )
        if len(neighbours) == count:
            break
    return neighbours


def _translated(configurations: list[dict], searched: str, wanted: set[str], search_space: dict) -> list[dict]:
    """Configurations of a search of ``searched`` (one family's own, or points of a joint space) as
    points of ``search_space``, keeping those of the ``wanted`` families."""
    from components.models.joint_space import embed, resolve

    translated = []
    for configuration in configurations:
        family, own = resolve(configuration, searched)
        if family in wanted:
            translated.append(embed(family, own, search_space))
    return translated


def portfolio(neighbours: list[Neighbour], count: int) -> list[dict[str, Any]]:
    """A greedy portfolio: the nearest dataset's best configuration, then the next dataset's best, and
    so on in turns, without repeats, until ``count``."""
    chosen: list[dict[str, Any]] = []
    depth = max((len(neighbour.configurations) for neighbour in neighbours), default=0)
    for rank in range(depth):
        for neighbour in neighbours:
            if rank < len(neighbour.configurations) and neighbour.configurations[rank] not in chosen:
                chosen.append(neighbour.configurations[rank])
    return chosen[:count]


def _tag_neighbours(neighbours: list[Neighbour]) -> None:
    """Names on the active run, if any, the datasets its first trials came from (MLflow keeps 8,000 characters)."""
    import mlflow

    described = [
        {"dataset": n.dataset, "data_version": n.data_version, "run_id": n.run_id, "distance": round(n.distance, 4)}
        for n in neighbours
    ]
    if mlflow.active_run() is not None:
        mlflow.set_tag(NEIGHBOURS_TAG, json.dumps(described)[:8000])


def consult(
    mode: str, meta_features: dict[str, float], modality: str, task_type: str, family: str, search_space: dict, trials: int
) -> tuple[list[dict[str, Any]], list[Neighbour], str]:
    """The meta-model's first configurations for a new search (at most ``trials``, and at most as many
    as the datasets it consults), the datasets they came from (also tagged on the active run, if any), and a
    line that says what it found. ``mode``: training.meta (nearest, static or off)."""
    if mode == "off":
        return [], [], "meta-model off (training.meta): no configurations from other datasets"
    neighbours = nearest_datasets(meta_features, modality, task_type, family, search_space, static=mode == "static")
    if not neighbours:
        return [], [], f"meta-model: the knowledge base holds no finished {family} search on {modality} {task_type} data yet"
    _tag_neighbours(neighbours)
    described = ", ".join(neighbour.describe() for neighbour in neighbours)
    chosen = (
        "the most central datasets (static portfolio; mean distance to the others)"
        if mode == "static"
        else "the nearest datasets by meta-features"
    )
    # At most one configuration per dataset consulted: the family's defaults keep a place among the first trials.
    learned = portfolio(neighbours, min(trials, len(neighbours)))
    return learned, neighbours, f"meta-model: {chosen} are {described}"
