"""Search quality: the platform with a fixed wall-clock search budget against scikit-learn baselines,
on the same splits, for the digits images, the breast-cancer table and the diabetes regression table.

    .venv/bin/python benchmarks/search_quality.py [--minutes 5] [--datasets digits breast_cancer diabetes]

Each dataset gets a throw-away workspace (git + DVC) under --folder, and the whole `automl` flow runs
there in this process (NNI trials are processes under NNI's manager) with `training.max_minutes` as
the search budget, a trial budget too large to bind, a 25% test split and seed 0. The baselines
(logistic regression or ridge, histogram gradient boosting, an RBF SVM, each behind a standard
scaler) are fitted on the platform's own train + validation splits, with scikit-learn's defaults,
and scored on its test split. Printed: test metric and wall time per method, and the gap between
the platform and the best baseline.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from components.data.digits import write_digits_images  # noqa: E402
from components.data.preparation import Splits  # noqa: E402

DATASETS = ("digits", "breast_cancer", "diabetes")


def write_dataset(name: str, root: Path) -> tuple[str, str]:
    """Writes the dataset into the workspace; returns (data path, target column)."""
    from sklearn import datasets

    if name == "digits":
        write_digits_images(root / "data" / "digits")
        return "data/digits", "label"
    loaded = datasets.load_breast_cancer(as_frame=True) if name == "breast_cancer" else datasets.load_diabetes(as_frame=True)
    frame = loaded.frame.rename(columns={"target": "label"})
    (root / "data").mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "data" / f"{name}.csv", index=False)
    return f"data/{name}.csv", "label"


def make_workspace(root: Path, dataset: str, minutes: float) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for name in ("components", "tasks", "flows"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy2(PROJECT / name, root / name)
    data_path, target = write_dataset(dataset, root)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["task_formulation"].update({"data_path": data_path, "target": target})
    params["data_preparation"].update({"test_fraction": 0.25, "seed": 0})
    params["training"].update({"max_minutes": minutes, "max_trials": 1000, "seed": 0})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True, env=environment)
    return root


def baselines(task_type: str):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    if task_type == "classification":
        return {
            "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
            "histogram gradient boosting": HistGradientBoostingClassifier(random_state=0),
            "RBF SVM": make_pipeline(StandardScaler(), SVC(kernel="rbf")),
        }
    return {
        "ridge regression": make_pipeline(StandardScaler(), Ridge()),
        "histogram gradient boosting": HistGradientBoostingRegressor(random_state=0),
        "RBF SVR": make_pipeline(StandardScaler(), SVR(kernel="rbf")),
    }


def run_dataset(dataset: str, folder: Path, minutes: float) -> list[dict]:
    import os

    from sklearn.metrics import accuracy_score, r2_score

    root = make_workspace(folder / dataset, dataset, minutes)
    os.chdir(root)
    from flows.automl import automl

    started = time.perf_counter()
    automl(workspace=str(root), params_file="params.yaml")
    platform_seconds = time.perf_counter() - started
    training = yaml.safe_load((root / "outputs" / "training" / "manifest.json").read_text())
    task = yaml.safe_load((root / "outputs" / "task_formulation" / "manifest.json").read_text())
    splits = Splits.load(root / "outputs" / "data_preparation" / "splits.npz")
    metric = task["metric"]
    rows = [
        {
            "dataset": dataset,
            "method": f"dlautoml ({training['trial_count']} trials, {training['family']})",
            metric: training["test_score"],
            "seconds": platform_seconds,
        }
    ]

    def flat(split: str) -> np.ndarray:
        return splits.features[split].reshape(len(splits.features[split]), -1).astype(np.float64)

    train_x = np.concatenate([flat("train"), flat("validation")])
    train_y = np.concatenate([splits.targets["train"], splits.targets["validation"]])
    for name, model in baselines(task["task_type"]).items():
        started = time.perf_counter()
        model.fit(np.nan_to_num(train_x), train_y)
        predicted = model.predict(np.nan_to_num(flat("test")))
        score = (
            accuracy_score(splits.targets["test"], predicted) if metric != "r2" else r2_score(splits.targets["test"], predicted)
        )
        rows.append({"dataset": dataset, "method": name, metric: score, "seconds": time.perf_counter() - started})
    os.chdir(PROJECT)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="search budget per dataset (training.max_minutes)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dlautoml-search-quality"), help="where the workspaces go")
    arguments = parser.parse_args()
    results = []
    for dataset in arguments.datasets:
        print(f"== {dataset}: the automl flow with a {arguments.minutes:g}-minute search budget", flush=True)
        results += run_dataset(dataset, arguments.folder.resolve(), arguments.minutes)
    table = pd.DataFrame(results)
    print()
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    print()
    for dataset, rows in table.groupby("dataset", sort=False):
        metric = "r2" if "r2" in rows and rows["r2"].notna().any() else "accuracy"
        platform = rows.iloc[0][metric]
        best = rows.iloc[1:].sort_values(metric).iloc[-1]
        print(
            f"{dataset}: dlautoml {metric} {platform:.4f}, best baseline {best['method']} {best[metric]:.4f} (gap {platform - best[metric]:+.4f})"
        )


if __name__ == "__main__":
    main()
