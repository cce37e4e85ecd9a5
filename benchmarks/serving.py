"""Load test: `dlautoml serve` against `mlflow models serve` on the same registered model version.

Run after `make run`, from the project folder:

    .venv/bin/python benchmarks/serving.py [--clients 8] [--requests 200]

Both servers run on 127.0.0.1 in turn; every client sends a bounded number of single-input requests
and the test stops by itself. Prints requests per second, p50/p99 latency and errors, and the ratio.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.config import load_params  # noqa: E402
from components.data.preparation import Splits  # noqa: E402
from components.deployment.onnx_export import INPUT_NAME  # noqa: E402
from components.manifests import DeploymentManifest, PreparationManifest, TaskManifest  # noqa: E402
from components.networking import free_port  # noqa: E402
from components.serving.model_store import alias_version  # noqa: E402

BIN = Path(sys.executable).parent


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up in {seconds}s")


def load(url: str, bodies: list[dict], clients: int, per_client: int) -> dict:
    def client(index: int) -> tuple[list[float], int]:
        latencies, errors = [], 0
        with httpx.Client(timeout=30) as session:
            for number in range(per_client):
                body = bodies[(index * per_client + number) % len(bodies)]
                started = time.perf_counter()
                try:
                    ok = session.post(url, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok
        return latencies, errors

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - started
    latencies = np.concatenate([np.asarray(latency) for latency, _ in results]) * 1000
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "errors": sum(errors for _, errors in results),
    }


def run_server(command: list[str], health: str, url: str, bodies: list[dict], clients: int, per_client: int) -> dict:
    environment = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    try:
        wait_until_up(health, process)
        load(url, bodies[:20], clients, 5)  # warm-up
        return load(url, bodies, clients, per_client)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=200, help="requests per client")
    arguments = parser.parse_args()
    root = Path(".")
    import mlflow

    tracking_uri = load_params(root / "params.yaml").tracking.uri(root)
    mlflow.set_tracking_uri(tracking_uri)
    task = TaskManifest.read(root)
    preparation = PreparationManifest.read(root)
    deployment = DeploymentManifest.read(root)
    name = deployment.registered_model
    version = alias_version(name, "champion")
    inputs = Splits.load(PreparationManifest.file(preparation.splits_file, root)).features["test"]

    if task.modality == "image":
        from io import BytesIO

        from PIL import Image

        def encode(image: np.ndarray) -> str:
            buffer = BytesIO()
            pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
            Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
            return base64.b64encode(buffer.getvalue()).decode()

        ours = [{"images": [encode(image)]} for image in inputs]
    else:
        ours = [{"rows": [[None if np.isnan(value) else float(value) for value in row]]} for row in inputs]
    theirs = [{"inputs": {INPUT_NAME: [row.astype(np.float32).tolist()]}} for row in inputs]

    port_ours, port_theirs = free_port(), free_port()
    results = {
        "dlautoml serve": run_server(
            [str(BIN / "dlautoml"), "serve", "--port", str(port_ours), "--log-sample-rate", "1.0"],
            f"http://127.0.0.1:{port_ours}/health",
            f"http://127.0.0.1:{port_ours}/predict",
            ours,
            arguments.clients,
            arguments.requests,
        ),
        "mlflow models serve": run_server(
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{name}/{version}",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(port_theirs),
            ],
            f"http://127.0.0.1:{port_theirs}/ping",
            f"http://127.0.0.1:{port_theirs}/invocations",
            theirs,
            arguments.clients,
            arguments.requests,
        ),
    }
    print(
        f"model {name} version {version} ({task.modality}); {arguments.clients} clients x {arguments.requests} requests, 1 input each"
    )
    print(f"{'server':<22}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for server, row in results.items():
        print(f"{server:<22}{row['requests']:>10}{row['rps']:>10.1f}{row['p50']:>10.2f}{row['p99']:>10.2f}{row['errors']:>8}")
    ratio = results["dlautoml serve"]["rps"] / results["mlflow models serve"]["rps"]
    print(f"dlautoml serve answers {ratio:.2f}x the requests per second of mlflow models serve")


if __name__ == "__main__":
    main()
