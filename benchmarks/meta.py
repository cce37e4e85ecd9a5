"""Learning across datasets, leave-one-dataset-out: the cold search against a static portfolio and the
meta-model's warm start, on the knowledge base's corpus (components/data/corpus.py: tables, sequences
and images).

    .venv/bin/python benchmarks/meta.py [--minutes 0.5] [--datasets iris wine ...] [--folder /tmp/dlautoml-meta]

1. Cold: `dlautoml knowledge build` on every dataset (the first four stages, `training.meta: off`),
   into one tracking store; these searches are the cold baseline and the knowledge base.
2. The knowledge base is exported to a file (`dlautoml knowledge export`).
3. For each held-out dataset, twice: a fresh tracking store into which the file is imported without
   the held-out dataset's search (`dlautoml knowledge import`), then the same search with
   `training.meta: static` (the first trials are the best configurations of the base's most central
   datasets, whatever the data) and with `training.meta: nearest` (of the datasets nearest by
   meta-features: the meta-model).

Every search has the same budget (`training.max_minutes`), TPE, seed 0 and a trial count too large to
bind; every trial also scores the test split, never seen by the search (DLAUTOML_BENCHMARK_TEST_SCORES).
At 25%, 50% and 100% of each search's time, the configuration the search would choose then (by the
platform's own rule, benchmarks/search_quality.py) gives a validation and a test score. Printed: the
scores per dataset, then per budget share the normalised regret (0: the best score any method reached on
that dataset at any share, 1: the worst; a search with no finished trial yet counts 1) and the average
rank of each method, and the share of datasets on which the warm start at half the budget reaches the
cold search's final validation score. The regret curves are drawn in meta_val.png and meta_test.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from benchmarks.search_quality import anytime_curve, at_fraction  # noqa: E402
from components.data.corpus import CORPUS  # noqa: E402
from components.search.settings import BENCHMARK_VARIABLE  # noqa: E402

METHODS = ("cold", "static", "nearest")
SHARES = (0.25, 0.5, 1.0)


def project(folder: Path, store: Path, seed: int = 0) -> Path:
    """A folder with the platform's params.yaml pointed at ``store``: what `knowledge build` is run from."""
    folder.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["tracking"].update({"tracking_uri": f"sqlite:///{store}", "artifact_folder": str(folder / "mlartifacts")})
    params["data_preparation"]["seed"] = seed
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def search(datasets: list[str], folder: Path, store: Path, minutes: float, meta: str) -> None:
    import mlflow

    from flows.knowledge import knowledge_build

    where = project(folder, store)
    knowledge_build(
        datasets,
        str(folder / "workspaces"),
        project=str(where),
        minutes=minutes,
        training_overrides={"meta": meta, "strategy": "tpe", "max_trials": 1000, "seed": 0},
    )
    mlflow.set_tracking_uri(None)


def held_out_knowledge(knowledge: dict, dataset_file: str, path: Path) -> Path:
    """The exported knowledge base without the held-out dataset's search."""
    kept = [entry for entry in knowledge["searches"] if entry["dataset"] != dataset_file]
    path.write_text(json.dumps({**knowledge, "searches": kept}))
    return path


def scores(workspace: Path) -> dict[str, float]:
    """Validation and test score of the search's choice at each share of its time."""
    from components.data.preparation import Splits

    training = json.loads((workspace / "outputs" / "training" / "manifest.json").read_text())
    task = json.loads((workspace / "outputs" / "task_formulation" / "manifest.json").read_text())
    splits = Splits.load(workspace / "outputs" / "data_preparation" / "splits.npz")
    trials = pd.read_csv(workspace / "outputs" / "training" / "trials.csv")
    curve = anytime_curve(trials, len(splits.targets["validation"]), task["task_type"])
    seconds = training["metrics"]["search_seconds"]
    row = {"trials": float(len(trials))}
    for share in SHARES:
        for column in ("val_score", "test_score"):
            row[f"{column.split('_')[0]}@{share:.0%}"] = at_fraction(curve, share * seconds, column)
    return row


def normalised_regret(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Per dataset: 0 for the best score any method reached at any share, 1 for the worst (and for none yet)."""
    columns = [f"{kind}@{share:.0%}" for share in SHARES]
    rows = []
    for dataset, group in table.groupby("dataset", sort=False):
        values = group[columns].to_numpy(dtype=float)
        best, worst = np.nanmax(values), np.nanmin(values)
        span = best - worst if best > worst else 1.0
        regret = np.where(np.isnan(values), 1.0, (best - values) / span)
        for method, row in zip(group["method"], regret):
            rows.append({"dataset": dataset, "method": method, **dict(zip(columns, row))})
    return pd.DataFrame(rows)


def ranks(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Average rank of each method per share (1: best; ties share their mean rank; no trial yet: last)."""
    columns = [f"{kind}@{share:.0%}" for share in SHARES]
    ranked = table.copy()
    for column in columns:
        ranked[column] = table.fillna({column: -np.inf}).groupby("dataset")[column].rank(ascending=False, method="average")
    return ranked.groupby("method", sort=False)[columns].mean()


def plot(regret: pd.DataFrame, kind: str, path: Path) -> Path:
    from components import plotting

    pyplot = plotting.pyplot()
    figure, axis = pyplot.subplots(figsize=(6, 4))
    columns = [f"{kind}@{share:.0%}" for share in SHARES]
    for method, rows in regret.groupby("method", sort=False):
        axis.plot([share * 100 for share in SHARES], rows[columns].mean().to_numpy(), marker="o", label=method)
    axis.set_xlabel("% of the search's time")
    axis.set_ylabel(f"mean normalised regret ({kind})")
    axis.set_title("leave-one-dataset-out")
    axis.legend()
    return plotting.save(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=0.5, help="training budget of every search (training.max_minutes)")
    parser.add_argument("--datasets", nargs="+", choices=list(CORPUS), default=list(CORPUS))
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dlautoml-meta"), help="where the workspaces and stores go")
    arguments = parser.parse_args()
    folder = arguments.folder.resolve()
    os.environ[BENCHMARK_VARIABLE] = "1"
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    print(f"== cold searches of {len(arguments.datasets)} datasets, {arguments.minutes:g} minutes each", flush=True)
    search(arguments.datasets, folder / "cold", folder / "cold" / "mlflow.db", arguments.minutes, "off")
    import mlflow

    from components.search.knowledge_files import export_knowledge, import_knowledge

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'cold' / 'mlflow.db'}")
    export_knowledge(folder / "knowledge.json")
    knowledge = json.loads((folder / "knowledge.json").read_text())
    rows = []
    for dataset in arguments.datasets:
        cold = folder / "cold" / "workspaces" / dataset
        data_file = Path(yaml.safe_load((cold / "params.yaml").read_text())["task_formulation"]["data_path"]).name
        rows.append({"dataset": dataset, "modality": CORPUS[dataset].modality, "method": "cold", **scores(cold)})
        for meta in ("static", "nearest"):
            print(f"== {dataset}: {meta}, the knowledge base without it", flush=True)
            where = folder / meta / dataset
            where.mkdir(parents=True, exist_ok=True)
            store = where / "mlflow.db"
            store.unlink(missing_ok=True)
            mlflow.set_tracking_uri(f"sqlite:///{store}")
            import_knowledge(held_out_knowledge(knowledge, data_file, where / "knowledge.json"), where / "mlartifacts")
            search([dataset], where, store, arguments.minutes, meta)
            rows.append(
                {
                    "dataset": dataset,
                    "modality": CORPUS[dataset].modality,
                    "method": meta,
                    **scores(where / "workspaces" / dataset),
                }
            )
    table = pd.DataFrame(rows)
    table.to_csv(folder / "meta.csv", index=False)
    print()
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}", na_rep="-"))
    for kind in ("val", "test"):
        regret = normalised_regret(table, kind)
        print(f"\n{kind}: mean normalised regret (median in brackets) and average rank, by share of the search's time")
        means = regret.groupby("method", sort=False).mean(numeric_only=True)
        medians = regret.groupby("method", sort=False).median(numeric_only=True)
        average_ranks = ranks(table, kind)
        for method in METHODS:
            cells = [
                f"{column} regret {means.loc[method, column]:.3f} ({medians.loc[method, column]:.3f}) rank {average_ranks.loc[method, column]:.2f}"
                for column in means.columns
            ]
            print(f"  {method:8} " + " | ".join(cells))
        print(f"  drawn in {plot(regret, kind, folder / f'meta_{kind}.png')}")
    pivot = table.pivot(index="dataset", columns="method", values=["val@50%", "val@100%"])
    reached = (pivot[("val@50%", "nearest")] >= pivot[("val@100%", "cold")]).mean()
    gap = (pivot[("val@50%", "nearest")] - pivot[("val@100%", "cold")]).median()
    print(
        f"\nthe warm start at half the budget reaches the cold search's final validation score on {reached:.0%} of "
        f"the datasets (median difference {gap:+.4f})"
    )


if __name__ == "__main__":
    main()
