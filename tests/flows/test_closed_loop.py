"""The closed loop on a real Prefect server (SQLite) with a process work pool and worker on localhost:
`prefect deploy` from prefect.yaml; a `monitor` run on unshifted images starts nothing; shifted images
sent to `dlautoml serve` and labelled with `dlautoml feedback` make the next `monitor` run (over the
serving log) find drift and start `automl`, which the worker runs: the labelled inputs become a new
DVC version of the feedback data, a challenger is registered and the promotion decision recorded."""

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from components.monitoring.history import SERIES_TAG
from components.networking import free_port
from components.search.knowledge import KNOWLEDGE_TAG, NEIGHBOURS_TAG
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

    unshifted = tmp_path / "unshifted"
    unshifted.mkdir()
    shifted: list[tuple[bytes, str]] = []
    for index, path in enumerate(sorted((root / "data" / "images").rglob("*.png"))):
        pixels = np.asarray(Image.open(path))
        Image.fromarray(pixels).save(unshifted / f"{index}.png")
        buffer = io.BytesIO()
        Image.fromarray(255 - pixels).save(buffer, format="PNG")
        shifted.append((buffer.getvalue(), path.parent.name))

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

    def trigger_monitor(data_path: Path | None) -> str:
        parameters = {"data_path": str(data_path)} if data_path else {}
        for _ in range(3):  # a busy test server may answer 500: the test retries as a user would
            answer = httpx.post(
                f"{api}/deployments/{deployments['monitor']}/create_flow_run", json={"parameters": parameters}, timeout=10
            )
            if answer.status_code < 500:
                break
            time.sleep(2)
        assert answer.status_code == 201, f"{answer.status_code}: {answer.text}"
        return answer.json()["id"]

    def state(run_id: str) -> str:
        return httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state_type"]

    def automl_runs() -> list[dict]:
        runs = httpx.post(
            f"{api}/flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": [deployments["automl"]]}}}, timeout=10
        ).json()
        return [r for r in runs if r["state_type"] != "SCHEDULED"]

    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "dlautoml"), "serve", "--port", str(port)],
        cwd=root,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        calm = trigger_monitor(unshifted)
        assert (
            wait_for(lambda: state(calm) in ("COMPLETED", "FAILED", "CRASHED") and state(calm), 240, "the unshifted check")
            == "COMPLETED"
        )
        assert automl_runs() == []

        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: (root / "serving" / "endpoint.json").is_file() and healthy(url), 120, "the serving endpoint")
        labels = ["request_id,label"]
        for image, label in shifted:
            answer = httpx.post(f"{url}/predict", json={"images": [base64.b64encode(image).decode()]}, timeout=10)
            assert answer.status_code == 200
            labels.append(f"{answer.json()['request_id']},{label}")
        (tmp_path / "labels.csv").write_text("\n".join(labels) + "\n")
        time.sleep(1)  # the request log is written by a background thread
        assert f"stored {len(shifted)} labels" in run(
            environment, root, str(BIN / "dlautoml"), "feedback", "--file", str(tmp_path / "labels.csv")
        )

        drifted = trigger_monitor(None)
        assert (
            wait_for(lambda: state(drifted) in ("COMPLETED", "FAILED", "CRASHED") and state(drifted), 240, "the shifted check")
            == "COMPLETED"
        )
        retraining = wait_for(
            lambda: [r for r in automl_runs() if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")], 400, "retraining"
        )
        assert [r["state_type"] for r in retraining] == ["COMPLETED"]
    finally:
        stop(server)
        stop(worker)

    state_file = json.loads((root / "serving" / "monitor_state.json").read_text())
    assert state_file["server"]["answered"] == len(shifted)  # the monitor read the server's own figures
    feedback = yaml.safe_load((root / "data" / "feedback.npz.dvc").read_text())["outs"][0]
    assert feedback["md5"] in (root / "dvc.lock").read_text()  # the retraining ran on the new data version
    preparation = json.loads((root / "outputs" / "data_preparation" / "manifest.json").read_text())
    held_back = preparation["metrics"]["feedback_test_samples"]
    assert preparation["metrics"]["feedback_train_samples"] > 0 and held_back > 0
    training = json.loads((root / "outputs" / "training" / "manifest.json").read_text())
    assert training["warm_started"] == 1

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    # The retraining's search started from the knowledge base, which held the first run's search.
    first, retrained = client.search_runs(
        [client.get_experiment_by_name("dlautoml").experiment_id],
        f"tags.`{KNOWLEDGE_TAG}` = 'search'",
        order_by=["attributes.start_time ASC"],
    )
    assert [n["run_id"] for n in json.loads(retrained.data.tags[NEIGHBOURS_TAG])] == [first.info.run_id]
    assert NEIGHBOURS_TAG not in first.data.tags
    checks = client.search_runs(
        [client.get_experiment_by_name("dlautoml-monitoring").experiment_id], order_by=["attributes.start_time DESC"]
    )
    # The check that started the retraining records its run (a scheduled check may have run since).
    reports = []
    for check in [run for run in checks if SERIES_TAG not in run.data.tags]:  # not the series of each version's checks
        folder = tmp_path / "checks" / check.info.run_id
        folder.mkdir(parents=True)
        reports.append(json.loads(Path(client.download_artifacts(check.info.run_id, "report.json", str(folder))).read_text()))
    assert retraining[0]["id"] in [report.get("retraining") for report in reports]
    versions = {str(v.version): v for v in client.search_model_versions("name='dlautoml-images'")}
    assert sorted(versions) == ["1", "2"]
    decision = versions["2"].tags["promotion_decision"]
    assert f"+ {int(held_back)} held-back labelled production inputs" in decision
    assert decision.startswith(("promoted", "kept the champion"))


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
