"""The machine's use (CPU, memory, disk, network, GPU) while a piece of work runs, sampled with
MLflow's own collectors, for runs that are written after the fact (``log_finished_run`` in
``components/tracking.py``).

MLflow's ``SystemMetricsMonitor`` writes to a live run every few seconds; search trials write their
whole run in one batch at the end (concurrent trials contend for a SQLite store otherwise), so this
keeps the samples and hands them over as ``system/...`` series, which the MLflow UI shows on the run's
"System metrics" tab."""

from __future__ import annotations

import threading
import time
from types import TracebackType

PREFIX = "system/"


class SystemSampler:
    """A context: every ``interval`` seconds a sample of every collector MLflow has for this machine."""

    def __init__(self, interval: float = 2.0) -> None:
        from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
        from mlflow.system_metrics.metrics.disk_monitor import DiskMonitor
        from mlflow.system_metrics.metrics.network_monitor import NetworkMonitor

        self.interval = interval
        self.monitors = [CPUMonitor(), DiskMonitor(), NetworkMonitor(), *_gpu_monitors()]
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="system-metrics", daemon=True)

    def __enter__(self) -> SystemSampler:
        self._sample(keep=False)  # CPU use is measured between two calls: the first one only starts it
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample(keep=True)

    def series(self) -> list[tuple[float, dict[str, float]]]:
        """(time, {"system/<name>": value}) per sample, in order."""
        return [(at, {PREFIX + key: value for key, value in values.items()}) for at, values in self.samples]

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(keep=True)

    def _sample(self, keep: bool) -> None:
        values: dict[str, float] = {}
        for monitor in self.monitors:
            try:
                monitor.collect_metrics()
                values.update(monitor.aggregate_metrics())
            except Exception:  # a collector that cannot read this machine (no disk stats in a container)
                continue
            finally:
                monitor.clear_metrics()
        if keep and values:
            self.samples.append((time.time(), values))


def _gpu_monitors() -> list:
    """MLflow's NVIDIA collector where pynvml finds a GPU; none on a CPU machine."""
    try:
        from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor

        return [GPUMonitor()]
    except Exception:  # pynvml missing, or no NVIDIA driver
        return []
