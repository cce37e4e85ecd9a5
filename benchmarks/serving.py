"""Load test: `dlautoml serve` against `mlflow models serve` on the same registered model version.

Run after `make run`, from the project folder:

    .venv/bin/python benchmarks/serving.py [--clients 8] [--requests 200]
    .venv/bin/python benchmarks/serving.py --swap [--clients 4] [--seconds 30]

Both servers run on 127.0.0.1 in turn; every client sends a bounded number of single-input requests
and the test stops by itself. Prints requests per second, p50/p99 latency and errors, and the ratio.

With --swap, `dlautoml serve` alone takes load from 127.0.0.1 while a new champion is promoted (a new
version of the served model, registered from the champion's files) and then rolled back: it prints
the failed requests, the versions that answered and p99 before, during and after, and exits 1 if a
request failed or an answer did not name its version.
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


def swap(name: str, bodies: list[dict], clients: int, seconds: float) -> int:
    """Load during a promotion and a rollback; returns the number of failed or unnamed answers."""
    import threading

    from mlflow.tracking import MlflowClient

    registry = MlflowClient()
    champion = registry.get_model_version_by_alias(name, "champion")
    challenger = registry.create_model_version(name, champion.source, champion.run_id, tags={"benchmark": "swap"}).version
    port = free_port()
    environment = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    command = [str(BIN / "dlautoml"), "serve", "--port", str(port), "--reload-seconds", "0.5", "--log-sample-rate", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    answers: list[tuple[float, float, int, str | None]] = []  # sent at, latency, status, version
    stop = threading.Event()

    def client(index: int) -> None:
        with httpx.Client(timeout=30) as session:
            number = 0
            while not stop.is_set():
                sent = time.perf_counter()
                try:
                    response = session.post(f"http://127.0.0.1:{port}/predict", json=bodies[(index + number) % len(bodies)])
                    status, version = response.status_code, response.json().get("version")
                except (httpx.HTTPError, ValueError):
                    status, version = 0, None
                answers.append((sent, time.perf_counter() - sent, status, version))
                number += 1

    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", process)
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(seconds / 3)
        promoted = time.perf_counter()
        registry.set_registered_model_alias(name, "champion", challenger)
        time.sleep(seconds / 3)
        rolled_back = time.perf_counter()
        registry.set_registered_model_alias(name, "champion", champion.version)
        time.sleep(seconds / 3)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        process.terminate()
        process.wait(timeout=30)
        registry.set_registered_model_alias(name, "champion", champion.version)
        registry.delete_model_version(name, challenger)
    print(
        f"model {name}: champion {champion.version}, promoted {challenger} at {promoted - started:.0f}s, rolled back at {rolled_back - started:.0f}s"
    )
    print(f"{clients} clients from 127.0.0.1 for {seconds:.0f}s, 1 input per request")
    print(f"{'phase':<10}{'requests':>10}{'failed':>8}{'p50 ms':>10}{'p99 ms':>10}  versions that answered")
    bad = 0
    for phase, low, high in (
        ("before", started, promoted),
        ("during", promoted, rolled_back),
        ("after", rolled_back, float("inf")),
    ):
        rows = [answer for answer in answers if low <= answer[0] < high]
        failed = sum(status != 200 or version is None for _, _, status, version in rows)
        bad += failed
        latencies = np.array([latency for _, latency, _, _ in rows]) * 1000
        versions = sorted({str(version) for _, _, _, version in rows})
        print(
            f"{phase:<10}{len(rows):>10}{failed:>8}{np.percentile(latencies, 50):>10.2f}{np.percentile(latencies, 99):>10.2f}"
            f"  {', '.join(versions)}"
        )
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=200, help="requests per client")
    parser.add_argument("--swap", action="store_true", help="load during a promotion and a rollback instead")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the --swap test")
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
    if arguments.swap:
        sys.exit(1 if swap(name, ours, arguments.clients, arguments.seconds) else 0)

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
