"""Summaries of a window of served requests: utilisation (from the request log and the server's own
metrics) and the prediction distribution."""

from __future__ import annotations

import time

import numpy as np
from scipy import stats


def utilisation(requests: int, rows: int, latency_ms: np.ndarray, window_seconds: float) -> dict[str, float]:
    """Requests and inputs per minute over the window, and latency percentiles of logged requests
    (``latency_ms``: all of them, or a uniform sample)."""
    minutes = max(window_seconds, 1e-9) / 60.0
    if requests == 0:
        return {"requests": 0.0, "requests_per_minute": 0.0, "inputs_per_minute": 0.0}
    return {
        "requests": float(requests),
        "requests_per_minute": requests / minutes,
        "inputs_per_minute": rows / minutes,
        "latency_p50_ms": float(np.percentile(latency_ms, 50)),
        "latency_p99_ms": float(np.percentile(latency_ms, 99)),
    }


def prediction_shift(predicted: np.ndarray, reference_shares: np.ndarray) -> float:
    """Chi-square p-value of the predicted-class counts against the shares seen on the test split.

    Reference shares are smoothed so that a class never predicted on the test split can still appear.
    """
    classes = len(reference_shares)
    observed = np.bincount(predicted.astype(int), minlength=classes)
    smoothed = (np.asarray(reference_shares) * len(predicted) + 0.5) / (len(predicted) + 0.5 * classes)
    expected = smoothed / smoothed.sum() * observed.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def labelled_accuracy(records: list[dict], task_type: str) -> dict[str, float]:
    """Accuracy (classification) or mean absolute error (regression) on logged rows whose true label
    arrived as feedback."""
    pairs = [
        (record["predictions"][row], label)
        for record in records
        for row, label in record.get("labels", {}).items()
        if row < len(record["predictions"])
    ]
    if not pairs:
        return {"labelled_inputs": 0.0}
    if task_type == "classification":
        correct = [prediction["label"] == str(label) for prediction, label in pairs]
        return {"labelled_inputs": float(len(pairs)), "accuracy": float(np.mean(correct))}
    errors = [abs(prediction["value"] - float(label)) for prediction, label in pairs]
    return {"labelled_inputs": float(len(pairs)), "mae": float(np.mean(errors))}


def scrape_server(url: str, timeout: float = 5.0) -> dict[str, float]:
    """The cumulative figures a running ``dlautoml serve`` exposes on ``/metrics`` (Prometheus text):
    answered and refused requests, CPU seconds and resident memory of the server process."""
    import httpx

    return server_figures(httpx.get(f"{url.rstrip('/')}/metrics", timeout=timeout).raise_for_status().text)


def server_figures(text: str) -> dict[str, float]:
    """The figures of :func:`scrape_server` from the Prometheus text of ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    figures = {"answered": 0.0, "errors": 0.0, "scraped_at": time.time()}
    names = {
        "process_cpu_seconds_total": "cpu_seconds",
        "process_resident_memory_bytes": "memory_bytes",
        "process_start_time_seconds": "started_at",
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dlautoml_requests_total" and sample.labels.get("status") == "ok":
                figures["answered"] += sample.value
            elif sample.name == "dlautoml_errors_total":
                figures["errors"] += sample.value
            elif sample.name in names:
                figures[names[sample.name]] = sample.value
    return figures


def server_utilisation(current: dict[str, float], previous: dict[str, float] | None) -> dict[str, float]:
    """Error rate, CPU use (share of one core) and memory between two scrapes of the same server
    process; over its whole life when it started after the previous scrape."""
    if not previous or previous.get("started_at") != current.get("started_at"):
        started = current.get("started_at", current["scraped_at"])
        previous = {"answered": 0.0, "errors": 0.0, "cpu_seconds": 0.0, "scraped_at": started}
    answered = current["answered"] - previous["answered"]
    errors = current["errors"] - previous["errors"]
    seconds = max(current["scraped_at"] - previous["scraped_at"], 1e-9)
    figures = {
        "server_requests": answered + errors,
        "server_error_rate": errors / (answered + errors) if answered + errors else 0.0,
    }
    if "cpu_seconds" in current:
        figures["server_cpu_share"] = (current["cpu_seconds"] - previous.get("cpu_seconds", 0.0)) / seconds
    if "memory_bytes" in current:
        figures["server_memory_mb"] = current["memory_bytes"] / 2**20
    return figures
