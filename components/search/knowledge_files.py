"""The knowledge base listed, and moved between tracking servers as one JSON file: each finished
search's dataset, meta-features and scored configurations (``dlautoml knowledge show / export /
import``). An imported search becomes a training run with its trials as child runs, like those a
search writes, in the experiment ``dlautoml-knowledge``, so the meta-model reads it as it reads its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.errors import UserInputError
from components.search.knowledge import CONFIGURATION_TAG, SCORE, knowledge_runs, record_knowledge, run_meta_features

FORMAT = "dlautoml-knowledge/1"
IMPORT_EXPERIMENT = "dlautoml-knowledge"
ORIGIN_TAG = "dlautoml.knowledge_origin"  # an imported search: the run it was exported from


def read_knowledge() -> list[dict[str, Any]]:
    """Every finished search on the tracking server, with its meta-features and its scored trials."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    searches = []
    for run in knowledge_runs(client):
        trials = client.search_runs(
            [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'", max_results=10_000
        )
        tags = run.data.tags
        searches.append(
            {
                "origin": tags.get(ORIGIN_TAG, run.info.run_id),
                "dataset": tags.get("dlautoml.dataset", "?"),
                "data_version": tags.get("data_version", ""),
                "modality": tags.get("dlautoml.modality", ""),
                "task_type": tags.get("dlautoml.task_type", ""),
                "family": tags.get("dlautoml.family", ""),
                "meta_features": run_meta_features(run),
                "trials": [
                    {
                        "configuration": json.loads(trial.data.tags[CONFIGURATION_TAG]),
                        "score": trial.data.metrics[SCORE],
                        "seconds": trial.data.metrics.get("trial_seconds"),
                    }
                    for trial in trials
                    if CONFIGURATION_TAG in trial.data.tags and SCORE in trial.data.metrics
                ],
            }
        )
    return searches


def knowledge_table(searches: list[dict[str, Any]]) -> str:
    """What the knowledge base holds, one line per finished search."""
    if not searches:
        return "the knowledge base is empty: finished searches on this tracking server become its knowledge"
    lines = [f"{'dataset':24} {'modality':10} {'task':15} {'family':10} {'trials':>6} {'best':>7}  landmark  samples"]
    for search in searches:
        meta = search["meta_features"]
        best = max((trial["score"] for trial in search["trials"]), default=float("nan"))
        lines.append(
            f"{search['dataset'][:24]:24} {search['modality']:10} {search['task_type']:15} {search['family']:10} "
            f"{len(search['trials']):6d} {best:7.4f}  {meta.get('linear_landmark', float('nan')):8.3f}  {meta.get('samples', 0):7.0f}"
        )
    return "\n".join(lines)


def export_knowledge(path: Path) -> int:
    """Writes every finished search to ``path``; returns how many."""
    searches = read_knowledge()
    path.write_text(json.dumps({"format": FORMAT, "searches": searches}, indent=1))
    return len(searches)


def import_knowledge(path: Path, artifact_location: Path | None = None) -> tuple[int, int]:
    """Adds the searches of an exported file that this tracking server does not hold yet; returns how
    many were added and how many it already held."""
    import mlflow

    from components.tracking import log_finished_run

    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserInputError(
            f"cannot read knowledge file {path}: {error}; pass a file written by `dlautoml knowledge export`"
        ) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UserInputError(f"{path} is not a knowledge file ({FORMAT}): pass a file written by `dlautoml knowledge export`")
    held = {search["origin"] for search in read_knowledge()}
    experiment = mlflow.get_experiment_by_name(IMPORT_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment(
            IMPORT_EXPERIMENT, artifact_location=artifact_location.as_uri() if artifact_location else None
        )
    )
    added = 0
    for search in document["searches"]:
        if search["origin"] in held:
            continue
        with mlflow.start_run(
            experiment_id=experiment_id, run_name="training", tags={"data_version": search["data_version"]}
        ) as run:
            for index, trial in enumerate(search["trials"]):
                log_finished_run(
                    experiment_id,
                    run_name=f"trial-{index + 1}",
                    parent_run_id=run.info.run_id,
                    parameters={"family": search["family"], **trial["configuration"]},
                    history=[],
                    final_metrics={
                        SCORE: trial["score"],
                        **({"trial_seconds": trial["seconds"]} if trial["seconds"] is not None else {}),
                    },
                    tags={"dlautoml.trial": "true", CONFIGURATION_TAG: json.dumps(trial["configuration"])},
                )
            record_knowledge(
                search["meta_features"], search["modality"], search["task_type"], search["family"], search["dataset"]
            )
            mlflow.set_tags({ORIGIN_TAG: search["origin"], "data_version": search["data_version"]})
        added += 1
    return added, len(document["searches"]) - added
