"""The closed loop on a real Prefect server (SQLite) with a process work pool and worker on localhost:
`prefect deploy` from prefect.yaml, a `monitor` run triggered over the API on shifted images finds
drift and starts `automl`, which the worker runs; on unshifted images nothing is retrained."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from components.networking import free_port
from tests.conftest import PROJECT, make_workspace, write_images

BIN = Path(os.sys.executable).parent


@pytest.fixture
def prefect_server(tmp_path: Path, venv_environment):
    port = free_port()
    environment = {
        **venv_environment,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        stop(server)
        pytest.fail("the Prefect server did not start")
    yield environment
    stop(server)


def stop(process: subprocess.Popen) -> None:
    """Ends a server or worker and everything it started; a process that ignores SIGTERM is killed."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for(condition, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"timed out waiting for {what}")


def run(environment: dict, root: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_drift_on_a_served_monitor_starts_retraining(tmp_path: Path, prefect_server):
    environment = prefect_server
    root = make_workspace(tmp_path / "workspace", "data/images")
    shutil.copytree(PROJECT / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT / "prefect.yaml", root / "prefect.yaml")
    write_images(root / "data" / "images")
    environment = {**environment, "DLAUTOML_WORKSPACE": str(root)}
    run(environment, root, str(BIN / "dlautoml"), "run")

    shifted, unshifted = tmp_path / "shifted", tmp_path / "unshifted"
    shifted.mkdir()
    unshifted.mkdir()
    for index, path in enumerate(sorted((root / "data" / "images").rglob("*.png"))):
        pixels = np.asarray(Image.open(path))
        Image.fromarray(255 - pixels).save(shifted / f"{index}.png")
        Image.fromarray(pixels).save(unshifted / f"{index}.png")

    run(environment, root, str(BIN / "prefect"), "work-pool", "create", "dlautoml", "--type", "process")
    run(environment, root, str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "dlautoml"],
        cwd=root,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    api = environment["PREFECT_API_URL"]
    deployments = {d["name"]: d["id"] for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()}

    def trigger_monitor(data_path: Path) -> str:
        answer = httpx.post(
            f"{api}/deployments/{deployments['monitor']}/create_flow_run",
            json={"parameters": {"data_path": str(data_path)}},
            timeout=10,
        )
        return answer.json()["id"]

    def state(run_id: str) -> str:
        return httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state_type"]

    def automl_runs() -> list[dict]:
        runs = httpx.post(
            f"{api}/flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": [deployments["automl"]]}}}, timeout=10
        ).json()
        return [r for r in runs if r["state_type"] != "SCHEDULED"]

    try:
        calm = trigger_monitor(unshifted)
        assert (
            wait_for(lambda: state(calm) in ("COMPLETED", "FAILED", "CRASHED") and state(calm), 240, "the unshifted check")
            == "COMPLETED"
        )
        assert automl_runs() == []
        drifted = trigger_monitor(shifted)
        assert (
            wait_for(lambda: state(drifted) in ("COMPLETED", "FAILED", "CRASHED") and state(drifted), 240, "the shifted check")
            == "COMPLETED"
        )
        retraining = wait_for(
            lambda: [r for r in automl_runs() if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")], 300, "retraining"
        )
        assert [r["state_type"] for r in retraining] == ["COMPLETED"]
    finally:
        stop(worker)
