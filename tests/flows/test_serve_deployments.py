"""`dlautoml monitor --serve` without a configured server: the deployments are served on the local
server whose UI it announces (not on a temporary one of Prefect's), and Ctrl-C stops it cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from components.networking import free_port
from tests.conftest import make_workspace


def test_deployments_are_served_on_the_announced_server_and_ctrl_c_stops_it(tmp_path: Path, venv_environment):
    # No scheduled check during the test: one at a quarter past would fail (no model yet) into the log.
    root = make_workspace(tmp_path / "workspace", "data/digits", overrides={"monitoring": {"schedule": "0 0 1 1 *"}})
    port = free_port()
    environment = {**venv_environment, "PYTHONUNBUFFERED": "1", "PREFECT_HOME": str(tmp_path / "prefect-home")}
    environment.pop("PREFECT_API_URL", None)
    log = root / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "dlautoml.cli", "monitor", "--serve", "--prefect-port", str(port)],
        cwd=root,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while "being served" not in log.read_text() and time.time() < deadline and process.poll() is None:
            time.sleep(1)
        assert "being served" in log.read_text(), log.read_text()[-3000:]
        served = httpx.post(f"http://127.0.0.1:{port}/api/deployments/filter", json={}, timeout=10).json()
        assert sorted(deployment["name"] for deployment in served) == ["automl", "monitor"]
        # The run form: no field that would point a run at another project, each empty field says what
        # it falls back to, and one run at a time (one workspace).
        form = next(deployment for deployment in served if deployment["name"] == "automl")
        fields = form["parameter_openapi_schema"]["properties"]
        assert "workspace" not in fields and "params_file" not in fields
        assert fields["max_trials"]["description"].endswith("params.yaml's training.max_trials (now 2).")
        assert all(deployment["global_concurrency_limit"]["limit"] == 1 for deployment in served)
        assert str(root) in form["description"]
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError("Ctrl-C did not stop it within 60 s:\n" + log.read_text()[-3000:]) from None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = log.read_text()
    assert code == 0 and "Traceback" not in output, output[-3000:]
    assert "Starting temporary server" not in output and f"http://127.0.0.1:{port}/deployments" in output
    time.sleep(2)
    try:
        httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
        still_up = True
    except httpx.HTTPError:
        still_up = False
    assert not still_up  # the server it started stopped with it


def test_served_deployments_are_described_as_prefect_yaml_declares_them():
    import yaml

    from flows.deployments import CONCURRENCY_LIMIT, DESCRIPTIONS

    declared = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())["deployments"]
    assert {entry["name"]: entry["description"] for entry in declared} == DESCRIPTIONS
    # one run of each at a time on one machine; a pool runs `automl` on each of its two workers at once
    assert {entry["name"]: entry["concurrency_limit"] for entry in declared} == {"automl": 2, "monitor": CONCURRENCY_LIMIT}
