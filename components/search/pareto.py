"""The validation-score / latency trade-off of a search: every trained candidate, and the Pareto front
(no other candidate is both faster and better)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from torch import nn

from components import plotting
from components.training.plots import plot_search


def pareto_table(trials: list, cost: str = "latency_ms") -> pd.DataFrame:
    """One row per trained trial with its score and ``cost``; ``pareto`` marks the front."""
    rows = [
        {
            "trial": trial.sequence + 1,
            "score": trial.score,
            cost: trial.cost[cost],
            "parameters": trial.cost.get("parameters"),
            "rung": trial.fidelity.get("rung", 0),
        }
        for trial in trials
        if trial.status == "SUCCEEDED" and trial.meets_constraints and trial.score is not None and cost in trial.cost
    ]
    table = pd.DataFrame(rows, columns=["trial", "score", cost, "parameters", "rung"])
    ordered = table.sort_values([cost, "score"], ascending=[True, False])
    best, front = float("-inf"), set()
    for index, row in ordered.iterrows():
        if row["score"] > best:
            front.add(index)
            best = row["score"]
    table["pareto"] = table.index.isin(front)
    return table.sort_values("trial").reset_index(drop=True)


def plot_pareto(table: pd.DataFrame, path: Path, cost: str = "latency_ms", limit: float | None = None) -> Path:
    pyplot = plotting.pyplot()
    figure, axis = pyplot.subplots(figsize=(6, 4))
    axis.scatter(table[cost], table["score"], color="tab:gray", alpha=0.6, label="trials")
    front = table[table["pareto"]].sort_values(cost)
    axis.plot(front[cost], front["score"], color="tab:red", marker="o", label="Pareto front")
    if limit is not None:
        axis.axvline(limit, color="tab:blue", linestyle="--", label="limit")
    axis.set_xlabel("ONNX Runtime latency at batch 1 (ms)" if cost == "latency_ms" else cost)
    axis.set_ylabel("validation score")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return Path(path)


def measure_latencies(
    trials: list,
    build: Callable[[dict], nn.Module],
    architecture_of: Callable[[dict], dict],
    preprocessor,
    task_type: str,
    raw_example,
) -> int:
    """Adds the ONNX Runtime latency at batch 1 to every trained trial that has none (measured in the
    trial only under a latency limit), once per architecture: the latency does not depend on the
    weights, and a trial's time is better spent training. Returns how many were measured."""
    from components.deployment.wrapper import DeployableModel
    from components.search.constraints import onnx_latency_ms

    measured: dict[str, float] = {}
    for trial in trials:
        if trial.status != "SUCCEEDED" or not trial.meets_constraints or "latency_ms" in trial.cost:
            continue
        key = json.dumps(architecture_of(trial.parameters), sort_keys=True, default=str)
        if key not in measured:
            network = build(trial.parameters).eval()
            measured[key] = onnx_latency_ms(DeployableModel(network, preprocessor, task_type).eval(), raw_example)
        trial.cost["latency_ms"] = measured[key]
    return len(measured)


def write_search_report(trials: list, folder: Path, latency_limit: float | None = None) -> list[str]:
    """Every trial (``trials.csv``, ``search.png``) and the score / latency front (``pareto.csv``,
    ``pareto.png``) into ``folder``; returns the file names."""
    pd.DataFrame([trial.row() for trial in trials]).to_csv(folder / "trials.csv", index=False)
    plot_search(trials, folder / "search.png")
    front = pareto_table(trials)
    front.to_csv(folder / "pareto.csv", index=False)
    plot_pareto(front, folder / "pareto.png", limit=latency_limit)
    return ["trials.csv", "search.png", "pareto.csv", "pareto.png"]
