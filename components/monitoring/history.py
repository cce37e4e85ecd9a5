"""Where monitoring checks are kept in MLflow: a run per check (its report), nested under one run per
model version whose metrics are every check's figures as series, so that the MLflow UI draws each
figure over time on that run's charts (a run per check alone gives one bar per run)."""

from __future__ import annotations

import time

import mlflow
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

SERIES_TAG = "dlautoml.monitoring_series"


def record_check(
    experiment_id: str, model: str, version: str, outcome: str, figures: dict[str, float], report: dict, tags: dict
) -> str:
    """Logs one check; returns the id of the version's series run. A skipped check (nothing new to
    judge) gets its run but adds no point to the series."""
    series = series_run(experiment_id, model, version)
    if outcome != "skipped":
        client = MlflowClient()
        step = int(client.get_run(series).data.tags.get("checks", "0"))
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in figures.items()]
        client.log_batch(series, metrics=metrics, tags=[RunTag("checks", str(step + 1)), RunTag("last_outcome", outcome)])
        client.set_terminated(series, end_time=now)  # shown as finished, its end the last check
    run_tags = {**tags, "mlflow.parentRunId": series}
    with mlflow.start_run(run_name=f"{model} v{version}: {outcome}", experiment_id=experiment_id, tags=run_tags):
        mlflow.log_metrics(figures)
        mlflow.log_dict(report, "report.json")
    return series


def series_run(experiment_id: str, model: str, version: str) -> str:
    """The run that holds the checks of ``model`` version ``version`` over time, created by the first."""
    client = MlflowClient()
    key = f"{model} v{version}"
    found = client.search_runs([experiment_id], f"tags.`{SERIES_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(
        experiment_id,
        run_name=f"{key}: every check",
        tags={SERIES_TAG: key, "registered_model": model, "judged_version": version, "checks": "0"},
    )
    return run.info.run_id
