"""Seeding the knowledge base: the first four stages of the pipeline (task formulation to training) on
each dataset of the corpus (components/data/corpus.py), each in its own workspace, as one Prefect flow
run, with every search tracked on the caller's tracking server, where the meta-model reads it."""

from __future__ import annotations

import contextlib
import copy
import traceback
from pathlib import Path

import yaml
from prefect import flow

from components.config import load_params
from components.data.corpus import corpus_dataset
from tasks.data_preparation import data_preparation
from tasks.model_formulation import model_formulation
from tasks.run_setup import prepare_run
from tasks.stage_runner import pipeline_run, workspace_lock
from tasks.task_formulation import task_formulation
from tasks.training import training
from tasks.versioning import new_workspace

CORPUS_EXPERIMENT = "dlautoml-corpus"
PLATFORM = Path(__file__).resolve().parent.parent  # dvc.yaml and the code of its stages


def corpus_params(project: Path, params_file: Path, minutes: float, training_overrides: dict | None) -> dict:
    """The caller's params.yaml for a corpus workspace: its tracking server made absolute (and the
    experiment ``dlautoml-corpus``), the given budget, a cold search (``training.meta`` off, so that
    what the base learns from a dataset does not depend on the order of the build), and the overrides."""
    params = yaml.safe_load(params_file.read_text())
    tracking = load_params(params_file).tracking
    params["tracking"] = {
        "experiment": CORPUS_EXPERIMENT,
        "tracking_uri": tracking.uri(project),
        "artifact_folder": str((project / tracking.artifact_folder).resolve()),
    }
    params["training"].update({"max_minutes": minutes, "meta": "off", **(training_overrides or {})})
    return params


@flow(name="knowledge-build", log_prints=True)
def knowledge_build(
    datasets: list[str],
    folder: str,
    project: str = ".",
    params_file: str = "params.yaml",
    minutes: float = 0.5,
    training_overrides: dict | None = None,
) -> list[str]:
    """Searches each corpus dataset in a workspace ``folder/<dataset>`` (replaced) and returns the
    workspaces; a dataset that fails is reported and the others go on, then the flow fails naming it."""
    chosen = [corpus_dataset(name) for name in datasets]  # every name checked before anything runs
    project_root = Path(project).resolve()
    template = corpus_params(project_root, project_root / params_file, minutes, training_overrides)
    workspaces, failed = [], []
    for position, dataset in enumerate(chosen, 1):
        print(f"[knowledge] {position}/{len(chosen)} {dataset.name} ({dataset.modality}): a {minutes:g}-minute search")
        root = Path(folder).resolve() / dataset.name
        params = copy.deepcopy(template)
        new_workspace(PLATFORM, root, params)
        data_path, target = dataset.write(root)
        params["task_formulation"].update({"data_path": data_path, "target": target, "modality": dataset.modality})
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        try:
            with contextlib.chdir(root), workspace_lock(root):  # DVC places what it adds by the working folder
                prepare_run(root, root / "params.yaml")
                with pipeline_run(str(root), "params.yaml", summarise=False) as run:
                    for stage in (task_formulation, data_preparation, model_formulation, training):
                        stage(run)
            workspaces.append(str(root))
        except Exception as error:  # one dataset's failure does not lose the others' searches
            traceback.print_exc()
            print(f"[knowledge] {dataset.name} failed: {type(error).__name__}: {str(error)[:300]}")
            failed.append(dataset.name)
    if failed:
        raise RuntimeError(f"the search failed on {', '.join(failed)}; the other {len(workspaces)} are in the knowledge base")
    return workspaces
