"""A tracking server that is down when a stage starts and back a moment later (issue case 12): Prefect
runs the stage again and it completes on the server; a stage that fails on its input is not retried."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.tracking import MlflowClient
from prefect import flow
from prefect.testing.utilities import prefect_test_harness

from components.errors import UserInputError
from components.networking import free_port
from components.transient import is_transient
from tasks.stage_runner import RunContext, retry_when_transient
from tasks.task_formulation import task_formulation
from tests.conftest import make_workspace, write_table

BIN = Path(os.sys.executable).parent


def _start_tracking_server(folder: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder}/server.db",
            "--artifacts-destination",
            str(folder / "server-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    pytest.fail("the MLflow server did not start")


@pytest.fixture
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_a_stage_is_run_again_when_the_tracking_server_comes_back(tmp_path: Path, monkeypatch, harness):
    port = free_port()
    root = make_workspace(tmp_path / "workspace", "data/table.csv", overrides={})
    (root / "data").mkdir()
    write_table(root / "data" / "table.csv")
    monkeypatch.chdir(root)
    monkeypatch.setenv("DLAUTOML_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the client gives up at once: Prefect retries
    decisions, servers = [], []

    def server_back_after_the_first_failure(task, task_run, state) -> bool:
        decisions.append(retry_when_transient(task, task_run, state))
        if not servers:
            servers.append(_start_tracking_server(tmp_path, port))
        return decisions[-1]

    @flow
    def pipeline():
        stage = task_formulation.with_options(retry_delay_seconds=1, retry_condition_fn=server_back_after_the_first_failure)
        return stage(RunContext(workspace=str(root)))

    try:
        manifest = pipeline()
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        experiment = client.get_experiment_by_name("dlautoml")
        runs = client.search_runs([experiment.experiment_id])
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    assert decisions == [True]  # one failed attempt, judged transient; the second succeeded
    assert manifest.task_type == "classification"
    assert [(run.info.run_name, run.info.status) for run in runs] == [("task_formulation", "FINISHED")]
    assert (root / "outputs" / "task_formulation" / "manifest.json").is_file()


def test_a_stage_that_fails_on_its_input_is_not_retried(tmp_path: Path, monkeypatch, harness):
    root = make_workspace(tmp_path / "workspace", "data/missing.csv", overrides={})
    monkeypatch.chdir(root)
    decisions = []

    def recorded(task, task_run, state) -> bool:
        decisions.append(retry_when_transient(task, task_run, state))
        return decisions[-1]

    @flow
    def pipeline():
        return task_formulation.with_options(retry_delay_seconds=0, retry_condition_fn=recorded)(RunContext(workspace=str(root)))

    with pytest.raises(Exception, match="missing.csv"):
        pipeline()
    assert decisions == [False]


def test_transient_failures_are_told_from_the_rest(tmp_path: Path, monkeypatch):
    """The errors as the clients raise them: MLflow wraps a refused connection in its own exception."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(Exception) as refused:
        MlflowClient(tracking_uri=f"http://127.0.0.1:{free_port()}").get_experiment_by_name("dlautoml")
    assert is_transient(refused.value)
    with pytest.raises(Exception) as unreachable:
        httpx.get(f"http://127.0.0.1:{free_port()}/api/health", timeout=1)
    assert is_transient(unreachable.value)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(Exception) as missing:
        MlflowClient().get_run("0" * 32)
    assert not is_transient(missing.value)
    assert not is_transient(ValueError("a column of the table is empty"))
    try:
        try:
            raise TimeoutError("the lock is held")
        except TimeoutError as held:
            raise UserInputError("another pipeline run is using this workspace") from held
    except UserInputError as busy:
        assert not is_transient(busy)


def test_a_check_keeps_its_window_when_a_server_did_not_answer(tmp_path: Path, monkeypatch):
    """The retry (or the next scheduled check) judges the same requests; any other failure uses them up."""
    import tasks.monitoring as monitoring

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    (tmp_path / "params.yaml").write_text("{}\n")
    state_file = tmp_path / "serving" / monitoring.STATE_FILE
    # A deployed workspace (the check itself is replaced below): one with nothing deployed skips the check.
    deployed = monitoring.DeploymentManifest.file(monitoring.MANIFEST_FILE, tmp_path)
    deployed.parent.mkdir(parents=True)
    deployed.write_text("{}\n")

    def tracking_server_down(data_path, root, params, window):
        window.read = True
        MlflowClient(tracking_uri=f"http://127.0.0.1:{free_port()}").get_experiment_by_name("dlautoml")

    monkeypatch.setattr(monitoring, "_check", tracking_server_down)
    with pytest.raises(Exception, match="failed with exception"):
        monitoring.drift_check.fn(workspace=str(tmp_path))
    assert not state_file.exists()

    def window_read_then_bad_input(data_path, root, params, window):
        window.read = True
        raise monitoring.DataError("the requests logged since the last check hold inputs of another shape")

    monkeypatch.setattr(monitoring, "_check", window_read_then_bad_input)
    with pytest.raises(monitoring.DataError):
        monitoring.drift_check.fn(workspace=str(tmp_path))
    assert state_file.is_file()
