"""Search quality: each search strategy with the same wall-clock budget, against scikit-learn
baselines on the same splits, for the digits images, 10,000 MNIST digits (benchmarks/mnist.py), the
breast-cancer table and the diabetes regression table.

    .venv/bin/python benchmarks/search_quality.py [--minutes 4] [--strategies tpe successive_halving darts]
        [--datasets digits mnist breast_cancer diabetes]

Each dataset and strategy gets a throw-away workspace (git + DVC) under --folder, and the whole
`automl` flow runs there in this process (NNI trials are processes under NNI's manager) with
`training.max_minutes` as the training stage's budget (search and final training), a trial count too
large to bind, a 25% test split and seed 0. Every trial also scores the test split (never seen by the
search: DLAUTOML_BENCHMARK_TEST_SCORES), which gives the anytime curve: the test score of the
configuration the search would choose (by the platform's one-standard-error rule, at the highest
fidelity reached) at each moment of the search; the one-shot strategy's curve starts after its supernet's time (its trials
only tune the architecture the supernet chose). The baselines (logistic regression or ridge, histogram gradient boosting,
an RBF SVM, each behind a standard scaler) are fitted on the platform's own train + validation
splits, with scikit-learn's defaults, and scored on its test split. Printed: test metric and wall
time per method, the anytime curves at a quarter, half, three quarters and all of the search (also
drawn in anytime.png), and the gap between each strategy and the best baseline.
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
from components.data.mnist import write_mnist  # noqa: E402
from components.data.preparation import Splits  # noqa: E402
from components.search.settings import BENCHMARK_VARIABLE  # noqa: E402

DATASETS = ("digits", "mnist", "breast_cancer", "diabetes")
STRATEGIES = ("auto", "tpe", "random", "evolution", "successive_halving", "darts")


def write_dataset(name: str, root: Path) -> tuple[str, str]:
    """Writes the dataset into the workspace; returns (data path, target column)."""
    from sklearn import datasets

    if name == "digits":
        write_digits_images(root / "data" / "digits")
        return "data/digits", "label"
    if name == "mnist":
        write_mnist(root / "data" / "mnist")
        return "data/mnist", "label"
    loaded = datasets.load_breast_cancer(as_frame=True) if name == "breast_cancer" else datasets.load_diabetes(as_frame=True)
    frame = loaded.frame.rename(columns={"target": "label"})
    (root / "data").mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "data" / f"{name}.csv", index=False)
    return f"data/{name}.csv", "label"


def make_workspace(root: Path, dataset: str, minutes: float, strategy: str, seed: int = 0) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for name in ("components", "tasks", "flows"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy2(PROJECT / name, root / name)
    data_path, target = write_dataset(dataset, root)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["task_formulation"].update({"data_path": data_path, "target": target})
    params["data_preparation"].update({"test_fraction": 0.25, "seed": seed})
    params["training"].update({"max_minutes": minutes, "max_trials": 1000, "seed": seed, "strategy": strategy})
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


def anytime_curve(trials: pd.DataFrame, validation_rows: int, task_type: str) -> pd.DataFrame:
    """At each trial's end: the test score of the configuration the search would choose then, by the
    platform's own rule (components.search.selection: the smallest network within one standard error
    of the best validation score) among the finished trials of the highest fidelity reached so far."""
    from types import SimpleNamespace

    from components.search.selection import select_configuration

    done = trials[(trials["status"] == "SUCCEEDED") & trials["meets_constraints"] & trials["score"].notna()]
    done = done.sort_values("ended")
    start = float((trials["ended"] - trials["seconds"]).min())
    rung = done["fidelity_rung"] if "fidelity_rung" in done else pd.Series(0, index=done.index)
    rows = []
    for position in range(len(done)):
        seen = done.iloc[: position + 1]
        seen_rung = rung.iloc[: position + 1]
        top = seen[seen_rung == seen_rung.max()].sort_values(["score", "val_loss"], ascending=[False, True])
        ranked = [
            SimpleNamespace(score=row.score, parameters=row.parameters, sequence=row.trial, test_score=row.test_score)
            for row in top.itertuples()
        ]
        chosen = select_configuration(ranked, validation_rows, task_type, lambda size: size).trial
        rows.append(
            {
                "seconds": float(done.iloc[position]["ended"]) - start,
                "val_score": float(chosen.score),
                "test_score": float(chosen.test_score),
            }
        )
    return pd.DataFrame(rows, columns=["seconds", "val_score", "test_score"])


def at_fraction(curve: pd.DataFrame, seconds: float, column: str = "test_score") -> float:
    """The anytime test (or validation) score ``seconds`` into the search (NaN before the first trial ends)."""
    reached = curve[curve["seconds"] <= seconds]
    return float(reached[column].iloc[-1]) if len(reached) else float("nan")


def run_strategy(dataset: str, strategy: str, folder: Path, minutes: float, seed: int = 0) -> tuple[dict, pd.DataFrame, Path]:
    """One automl flow; returns its row, its anytime curve and its workspace."""
    import os

    name = f"{dataset}-{strategy}" + (f"-seed{seed}" if seed else "")
    root = make_workspace(folder / name, dataset, minutes, strategy, seed)
    os.chdir(root)
    os.environ[BENCHMARK_VARIABLE] = "1"
    from flows.automl import automl

    started = time.perf_counter()
    automl(workspace=str(root), params_file="params.yaml")
    platform_seconds = time.perf_counter() - started
    os.chdir(PROJECT)
    training = yaml.safe_load((root / "outputs" / "training" / "manifest.json").read_text())
    task = yaml.safe_load((root / "outputs" / "task_formulation" / "manifest.json").read_text())
    splits = Splits.load(root / "outputs" / "data_preparation" / "splits.npz")
    curve = anytime_curve(
        pd.read_csv(root / "outputs" / "training" / "trials.csv"), len(splits.targets["validation"]), task["task_type"]
    )
    curve["seconds"] += training["metrics"].get("oneshot_seconds", 0.0)
    search_seconds = training["metrics"]["search_seconds"]
    row = {
        "dataset": dataset,
        "seed": seed,
        "method": f"dlautoml {strategy} ({training['trial_count']} trials, {training['family']})",
        task["metric"]: training["test_score"],
        "seconds": platform_seconds,
        "training_seconds": training["metrics"]["training_seconds"],
        **{f"anytime_{int(share * 100)}%": at_fraction(curve, share * search_seconds) for share in (0.25, 0.5, 0.75, 1.0)},
    }
    return row, curve, root


def run_baselines(dataset: str, root: Path, seed: int = 0) -> list[dict]:
    from sklearn.metrics import accuracy_score, r2_score

    task = yaml.safe_load((root / "outputs" / "task_formulation" / "manifest.json").read_text())
    splits = Splits.load(root / "outputs" / "data_preparation" / "splits.npz")
    metric = task["metric"]

    def flat(split: str) -> np.ndarray:
        return splits.features[split].reshape(len(splits.features[split]), -1).astype(np.float64)

    train_x = np.concatenate([flat("train"), flat("validation")])
    train_y = np.concatenate([splits.targets["train"], splits.targets["validation"]])
    rows = []
    for name, model in baselines(task["task_type"]).items():
        started = time.perf_counter()
        model.fit(np.nan_to_num(train_x), train_y)
        predicted = model.predict(np.nan_to_num(flat("test")))
        score = (
            accuracy_score(splits.targets["test"], predicted) if metric != "r2" else r2_score(splits.targets["test"], predicted)
        )
        rows.append({"dataset": dataset, "seed": seed, "method": name, metric: score, "seconds": time.perf_counter() - started})
    return rows


def plot_curves(curves: dict[tuple[str, str], pd.DataFrame], path: Path) -> Path:
    from components import plotting

    pyplot = plotting.pyplot()
    datasets = sorted({dataset for dataset, _ in curves})
    figure, axes = pyplot.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        for (name, strategy), curve in curves.items():
            if name == dataset and len(curve):
                axis.step(curve["seconds"], curve["test_score"], where="post", marker="o", markersize=3, label=strategy)
        axis.set_title(dataset)
        axis.set_xlabel("seconds into the search")
        axis.set_ylabel("test score of the current choice")
        axis.legend()
    return plotting.save(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per run (training.max_minutes)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=["tpe", "successive_halving", "darts"])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dlautoml-search-quality"), help="where the workspaces go")
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[0], help="one split and search per seed; several give means (small tables)"
    )
    arguments = parser.parse_args()
    results, curves = [], {}
    for dataset in arguments.datasets:
        for seed in arguments.seeds:
            root = None
            for strategy in arguments.strategies:
                print(
                    f"== {dataset}, {strategy}, seed {seed}: the automl flow with a {arguments.minutes:g}-minute training budget",
                    flush=True,
                )
                row, curve, root = run_strategy(dataset, strategy, arguments.folder.resolve(), arguments.minutes, seed)
                curves.setdefault((dataset, strategy), curve)  # the first seed's curve is drawn
                results.append(row)
            results += run_baselines(dataset, root, seed)
    table = pd.DataFrame(results)
    print()
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}", na_rep=""))
    print()
    table["method"] = table["method"].str.replace(r" \(\d+ trials, ", " (", regex=True)  # one name across seeds
    for dataset, rows in table.groupby("dataset", sort=False):
        metric = "r2" if "r2" in rows and rows["r2"].notna().any() else "accuracy"
        means = rows.groupby("method", sort=False).agg(
            score=(metric, "mean"), spread=(metric, "std"), seconds=("seconds", "mean")
        )
        platform = means[means.index.str.startswith("dlautoml")]
        baselines = means[~means.index.str.startswith("dlautoml")].sort_values("score")
        best_name, best = baselines.index[-1], baselines.iloc[-1]
        over = f" over {len(arguments.seeds)} seeds (mean)" if len(arguments.seeds) > 1 else ""
        for name, row in platform.iterrows():
            print(
                f"{dataset}{over}: {name} {metric} {row['score']:.4f} in {row['seconds']:.0f}s, best baseline "
                f"{best_name} {best['score']:.4f} (gap {row['score'] - best['score']:+.4f})"
            )
    print(f"anytime curves: {plot_curves(curves, arguments.folder.resolve() / 'anytime.png')}")


if __name__ == "__main__":
    main()
