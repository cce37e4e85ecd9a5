"""The team setup of the README, end to end on one machine: PostgreSQL with a Prefect server and an MLflow
server on it (deploy/team_servers.sh), a process work pool served by two workers, each with its own
workspace, and an OpenSSH server on localhost that stands in for a second machine: it holds the DVC
remote and runs the search trials (NNI's remote training service). Two `automl` runs on different
datasets, started at once over the Prefect API, both finish, one in each workspace, with their runs,
trials (run over SSH, their weights brought back through the tracking server) and registered versions
in the shared MLflow store and their data pushed; a fresh clone of one workspace pulls its data version
and reproduces its test score."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from components.networking import free_port
from components.tracking import WORKSPACE_TAG
from tests.conftest import PROJECT, make_workspace, write_table
from tests.flows.test_closed_loop import run, stop, wait_for
from tests.team.ssh_server import start_ssh_server

BIN = Path(os.sys.executable).parent
pytestmark = pytest.mark.team
SCRIPT = PROJECT / "deploy" / "team_servers.sh"
DATASETS = {"alpha": {"seed": 1, "classes": 2}, "beta": {"seed": 2, "classes": 3}}


@pytest.fixture
def team(venv_environment):
    """The three servers of deploy/team_servers.sh on free ports; stopped and removed afterwards. Their
    folder is not under pytest's (private to its owner): PostgreSQL runs as its own user."""
    folder = Path(tempfile.mkdtemp(prefix="dlautoml-team-"))
    folder.chmod(0o755)
    ports = {"PG_PORT": free_port(), "PREFECT_PORT": free_port(), "MLFLOW_PORT": free_port()}
    environment = {**venv_environment, **{name: str(port) for name, port in ports.items()}}
    try:
        started = subprocess.run(
            ["bash", str(SCRIPT), "start", str(folder)], env=environment, capture_output=True, text=True, timeout=300
        )
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        exports = [line for line in started.stdout.splitlines() if line.startswith("export ")]
        settings = dict(pair.split("=", 1) for pair in exports[-1].removeprefix("export ").split())
        assert set(settings) == {"PREFECT_API_URL", "DLAUTOML_TRACKING_URI"}
        yield folder, settings
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], env=environment, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ssh(tmp_path: Path):
    """The stand-in second machine; what NNI leaves in its home (each remote search's uploaded folder and
    trial logs, under ~/nni-experiments) is removed afterwards with it."""
    experiments = Path.home() / "nni-experiments"
    before = set(experiments.iterdir()) if experiments.is_dir() else set()
    server = start_ssh_server(tmp_path / "ssh", free_port())
    yield server
    server.stop()
    for folder in set(experiments.iterdir()) - before if experiments.is_dir() else ():
        shutil.rmtree(folder, ignore_errors=True)


def _workspace(root: Path, ssh, store: Path, environment: dict, devices: int) -> Path:
    """A project checkout with both datasets, its deployment files, the team's DVC remote, search
    trials on the SSH server's "machine", and the final training on ``devices`` processes."""
    machine = {
        "host": "127.0.0.1",
        "port": ssh.port,
        "user": ssh.user,
        "ssh_key_file": str(ssh.key_file),
        "python_path": str(BIN),
    }
    quick = {"training": {"trial_max_epochs": 2, "final_max_epochs": 3, "remote_machines": [machine], "devices": devices}}
    make_workspace(root, "data/alpha.csv", overrides=quick)
    shutil.copytree(PROJECT / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT / "prefect.yaml", root / "prefect.yaml")
    (root / "data").mkdir()
    for name, shape in DATASETS.items():
        write_table(root / "data" / f"{name}.csv", rows=150, **shape)
    run(environment, root, str(BIN / "dvc"), "remote", "add", "-d", "team", ssh.url(store))
    run(environment, root, str(BIN / "dvc"), "remote", "modify", "--local", "team", "keyfile", str(ssh.key_file))
    return root


def test_two_runs_on_a_pool_of_workers_share_the_team_servers(tmp_path: Path, team, ssh, venv_environment):
    folder, settings = team
    store = folder / "dvc-store"  # on the "storage machine", reached over SSH only
    environment = {**venv_environment, **settings, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    # workspace a's worker trains its final networks with DDP on two processes (gloo on the CPU)
    workspaces = {
        label: _workspace(tmp_path / f"workspace-{label}", ssh, store, environment, devices)
        for label, devices in (("a", 2), ("b", 1))
    }
    api = settings["PREFECT_API_URL"]
    workers = []
    try:
        run(environment, workspaces["a"], str(BIN / "prefect"), "work-pool", "create", "dlautoml", "--type", "process")
        run(environment, workspaces["a"], str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
        for label, root in workspaces.items():  # one run at a time per workspace: --limit 1
            worker_environment = {**environment, "DLAUTOML_WORKSPACE": str(root)}
            command = [str(BIN / "prefect"), "worker", "start", "--pool", "dlautoml", "--limit", "1", "--name", f"worker-{label}"]
            log = open(tmp_path / f"worker-{label}.log", "wb")
            workers.append(
                subprocess.Popen(
                    command, cwd=root, env=worker_environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        deployments = {d["name"]: d for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()}
        limits = {name: deployment["global_concurrency_limit"]["limit"] for name, deployment in deployments.items()}
        assert limits == {"automl": 2, "monitor": 1}

        flow_runs = {}
        for name in DATASETS:
            answer = httpx.post(
                f"{api}/deployments/{deployments['automl']['id']}/create_flow_run",
                json={"parameters": {"data_path": f"data/{name}.csv", "max_minutes": 1.5}},
                timeout=10,
            )
            assert answer.status_code == 201, answer.text
            flow_runs[name] = answer.json()["id"]

        def finished() -> dict | None:
            states = {name: httpx.get(f"{api}/flow_runs/{id_}", timeout=10).json() for name, id_ in flow_runs.items()}
            done = all(state["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for state in states.values())
            return states if done else None

        states = wait_for(finished, 600, "both automl runs")
    finally:
        for worker in workers:
            stop(worker)
    logs = "".join((tmp_path / f"worker-{label}.log").read_text() for label in workspaces)
    assert {name: state["state_type"] for name, state in states.items()} == dict.fromkeys(DATASETS, "COMPLETED"), logs[-6000:]
    # at once: each started before the other ended (the deployment's limit is 2, each worker's 1)
    alpha, beta = states["alpha"], states["beta"]
    assert alpha["start_time"] < beta["end_time"] and beta["start_time"] < alpha["end_time"]

    # The shared tracking server holds both pipelines, each from its own workspace, with their trials
    # and registered versions; its artifacts are on the server's side, none in a workspace.
    client = MlflowClient(tracking_uri=settings["DLAUTOML_TRACKING_URI"])
    experiment = client.get_experiment_by_name("dlautoml")
    pipelines = client.search_runs([experiment.experiment_id], "attributes.run_name = 'pipeline'")
    assert sorted(p.info.status for p in pipelines) == ["FINISHED", "FINISHED"]
    homes = {p.data.params["task_formulation.data_path"]: p.data.tags[WORKSPACE_TAG] for p in pipelines}
    assert sorted(homes) == ["data/alpha.csv", "data/beta.csv"]
    assert {home.rsplit("/", 1)[-1] for home in homes.values()} == {"workspace-a", "workspace-b"}
    for pipeline in pipelines:  # each search's trials ran over SSH and logged their weights with their runs
        stages = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{pipeline.info.run_id}'")
        training = next(stage for stage in stages if stage.info.run_name == "training")
        trials = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{training.info.run_id}'")
        assert len(trials) == 2 and {trial.data.tags["nni.platform"] for trial in trials} == {"remote"}
        for trial in trials:
            assert [a.path for a in client.list_artifacts(trial.info.run_id, "weights")], trial.info.run_name
        # on the "remote machine", NNI's copy of the search's data is removed and the trials' logs kept
        remote_folder = Path.home() / "nni-experiments" / training.data.tags["nni.experiment_id"]
        assert len(list(remote_folder.glob("environments/*/trials/*/trial.stdout"))) == 2
        assert not list(remote_folder.glob("environments/*/upload"))
        devices = 2 if pipeline.data.tags[WORKSPACE_TAG].endswith("workspace-a") else 1
        assert training.data.metrics["final_devices"] == devices, training.data.metrics
    versions = {name: client.search_model_versions(f"name = 'dlautoml-{name}'") for name in DATASETS}
    assert {name: [v.version for v in found] for name, found in versions.items()} == dict.fromkeys(DATASETS, ["1"])
    assert any((folder / "artifacts").rglob("model.onnx"))
    for root in workspaces.values():
        assert not (root / "mlartifacts").exists() and not (root / "mlruns").exists()

    for root in workspaces.values():  # brought back from the tracking server, not from the remote's disk
        assert len(list((root / ".nni" / "checkpoints").rglob("*.pt"))) == 2
    assert logs.count("the weights of 2 remote trial(s) fetched from the tracking server") == 2, logs[-6000:]
    assert logs.count("the final training runs on 2 processes with Lightning's DDP") == 1, logs[-6000:]

    # Both workspaces pushed what they produced; a fresh clone of alpha's pulls it and scores the same.
    for root in workspaces.values():
        assert "in sync" in run(environment, root, str(BIN / "dvc"), "status", "--cloud")
    home = Path(homes["data/alpha.csv"].split(":", 1)[1])
    git = ["git", "-c", "user.name=team", "-c", "user.email=team@example.org"]
    tracked = ["dvc.yaml", "dvc.lock", "params.yaml", "data/alpha.csv.dvc", ".dvc/config", "metrics", "components", "tasks"]
    run(environment, home, *git, "add", "-f", *tracked)
    run(environment, home, *git, "commit", "-qm", "the alpha run")
    clone = tmp_path / "clone"
    run(environment, tmp_path, "git", "clone", "-q", str(home), str(clone))
    assert not (clone / "outputs").exists() and not (clone / "data" / "alpha.csv").exists()
    run(environment, clone, str(BIN / "dvc"), "remote", "modify", "--local", "team", "keyfile", str(ssh.key_file))
    run(environment, clone, str(BIN / "dvc"), "pull")
    assert (clone / "data" / "alpha.csv").read_bytes() == (home / "data" / "alpha.csv").read_bytes()
    assert "up to date" in run(environment, clone, str(BIN / "dvc"), "status")
    data_version = (clone / "data" / "alpha.csv.dvc").read_text().split("md5: ")[1].split()[0]
    assert versions["alpha"][0].tags["data_version"] == data_version

    from components.data.preparation import Splits
    from components.deployment.onnx_export import inference_session
    from components.deployment.optimisation import onnx_outputs

    splits = Splits.load(clone / "outputs" / "data_preparation" / "splits.npz")
    outputs = onnx_outputs(inference_session(clone / "outputs" / "deployment" / "model.onnx"), splits.features["test"])
    score = float((np.asarray(outputs).argmax(1) == splits.targets["test"]).mean())
    recorded = json.loads((clone / "metrics" / "deployment.json").read_text())["float32_test_score"]
    assert score == pytest.approx(recorded, abs=1e-9)
