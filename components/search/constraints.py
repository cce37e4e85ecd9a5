"""Hardware constraints inside the search: what a candidate network costs, measured before it trains.

Parameters are counted, FLOPs of one forward pass counted by PyTorch's ``FlopCounterMode``, and the
latency is measured where the model will run: the candidate with its preprocessing is exported to
ONNX and timed by ONNX Runtime at batch 1 on one thread of this machine (latency predictors such as
nn-Meter's target edge devices and download at first use). A candidate over a limit is not trained:
its trial reports at once, the tuner learns that region is out of bounds, and the selection never
picks it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

PENALTY_SCORE = -1.0  # what a candidate over a limit reports to the tuner instead of a validation score


@dataclass(frozen=True)
class Constraints:
    """Limits the user states in ``params.yaml`` (None: no limit)."""

    max_parameters: int | None = None
    max_mflops: float | None = None
    max_latency_ms: float | None = None

    @property
    def active(self) -> bool:
        return any(limit is not None for limit in (self.max_parameters, self.max_mflops, self.max_latency_ms))

    def describe(self) -> str:
        parts = []
        if self.max_parameters is not None:
            parts.append(f"at most {self.max_parameters:,} parameters")
        if self.max_mflops is not None:
            parts.append(f"at most {self.max_mflops:g} MFLOPs per input")
        if self.max_latency_ms is not None:
            parts.append(f"ONNX Runtime latency at batch 1 at most {self.max_latency_ms:g} ms")
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class Cost:
    parameters: int
    mflops: float
    latency_ms: float | None = None  # measured only when a latency limit is set

    def violations(self, constraints: Constraints) -> list[str]:
        found = []
        if constraints.max_parameters is not None and self.parameters > constraints.max_parameters:
            found.append(f"{self.parameters:,} parameters > {constraints.max_parameters:,}")
        if constraints.max_mflops is not None and self.mflops > constraints.max_mflops:
            found.append(f"{self.mflops:.2f} MFLOPs > {constraints.max_mflops:g}")
        if (
            constraints.max_latency_ms is not None
            and self.latency_ms is not None
            and self.latency_ms > constraints.max_latency_ms
        ):
            found.append(f"{self.latency_ms:.3f} ms > {constraints.max_latency_ms:g} ms")
        return found

    def figures(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items() if value is not None}


def count_mflops(network: nn.Module, example: torch.Tensor) -> float:
    """Millions of floating-point operations of one forward pass on one input."""
    from torch.utils.flop_counter import FlopCounterMode

    network.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(example[:1])
    return counter.get_total_flops() / 1e6


def onnx_latency_ms(model: nn.Module, raw_example: np.ndarray, repeats: int = 50) -> float:
    """Median ONNX Runtime latency at batch 1, one thread, of ``model`` exported with its preprocessing."""
    from components.deployment.onnx_export import INPUT_NAME, export_onnx, inference_session

    batch = raw_example[:1].astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="dlautoml-latency-") as folder:
        session = inference_session(export_onnx(model, raw_example[:2], Path(folder) / "candidate.onnx"), threads=1)
        for _ in range(5):
            session.run(None, {INPUT_NAME: batch})
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            session.run(None, {INPUT_NAME: batch})
            timings.append(time.perf_counter() - started)
    return float(np.median(timings) * 1000)


def measure_cost(network: nn.Module, preprocessor, task_type: str, raw_example: np.ndarray, constraints: Constraints) -> Cost:
    """What ``network`` costs; the latency only when a latency limit asks for it (an export and a timing)."""
    from components.deployment.wrapper import DeployableModel

    parameters = sum(parameter.numel() for parameter in network.parameters())
    prepared = torch.from_numpy(preprocessor.transform(raw_example[:1]))
    mflops = count_mflops(network, prepared)
    latency = None
    if constraints.max_latency_ms is not None:
        latency = onnx_latency_ms(DeployableModel(network.eval(), preprocessor, task_type).eval(), raw_example)
    network.train()
    return Cost(parameters, mflops, latency)


def violations_of(network: nn.Module, preprocessor, task_type: str, raw: np.ndarray, constraints: Constraints) -> list[str]:
    """The limits ``network`` breaks, measured as the search measures its candidates (the deployment
    stage checks the network it registers, an ensemble too); the network is left in eval mode."""
    if not constraints.active:
        return []
    violations = measure_cost(network, preprocessor, task_type, raw[:1], constraints).violations(constraints)
    network.eval()
    return violations
