"""What running search trials on another machine costs: the same search (a table, the same trials,
seed and settings) with its trials as local processes (the baseline, measured in the same run) and over
SSH through NNI's remote training service, on an OpenSSH server on this machine standing in for the
second machine. The machine is the same, so the difference is the remote path's overhead: NNI starting
its trial keeper over SSH and uploading the trial folder, each trial started by the keeper, and each
trial's weights uploaded to the tracking server (an MLflow server here, which both searches log to).

    .venv/bin/python benchmarks/remote_trials.py [--trials 6] [--rows 3000]

Prints each search's wall-clock, the trials' own mean time, the overhead per remote trial and the
ratio of the two searches' wall-clocks. Needs `make team` (OpenSSH's server).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from components.config import RemoteMachine  # noqa: E402
from components.data.preparation import Preprocessor, split_dataset  # noqa: E402
from components.networking import free_port  # noqa: E402
from components.search.nni_search import SearchRequest, run_search  # noqa: E402
from components.search.remote import ship_trials  # noqa: E402
from components.search.settings import TrialSettings  # noqa: E402
from components.tracking import configure_tracking  # noqa: E402
from tests.team.ssh_server import start_ssh_server  # noqa: E402

SPACE = {
    "depth": {"_type": "choice", "_value": [1, 2]},
    "width": {"_type": "choice", "_value": [32, 64]},
    "activation": {"_type": "choice", "_value": ["relu", "gelu"]},
    "dropout": {"_type": "choice", "_value": [0.0, 0.1]},
    "learning_rate": {"_type": "loguniform", "_value": [0.001, 0.03]},
    "weight_decay": {"_type": "choice", "_value": [0.0]},
}


def mlflow_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--artifacts-destination", str(folder / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(240):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the MLflow server did not start")


def search(folder: Path, settings_file: Path, code: Path, trials: int, machines: list[RemoteMachine]) -> tuple[float, list]:
    """The search's wall-clock and trials; what NNI left on the "remote machine" (in this account's
    ~/nni-experiments: the uploaded folder, the trials' logs) is removed."""
    started = time.monotonic()
    result = run_search(
        SearchRequest(
            SPACE, settings_file, code, folder, strategy="random", max_trials=trials, max_minutes=15, concurrency=2,
            machines=machines, progress=lambda line: None,
        )
    )  # fmt: skip
    seconds = time.monotonic() - started
    if machines:
        shutil.rmtree(Path.home() / "nni-experiments" / result.experiment_id, ignore_errors=True)
        print(
            f"remote set-up (NNI's log: trial keeper started over SSH, folder uploaded): {setup_seconds(folder / result.experiment_id):.1f} s"
        )
    return seconds, result.trials


def setup_seconds(experiment: Path) -> float:
    """From NNI's manager log: the remote training service's start to its first trial's creation."""
    import datetime
    import re

    log = (experiment / "log" / "nnimanager.log").read_text()
    times = {}
    for name, marker in (("start", "Starting remote training service"), ("first", "Created trial")):
        line = next(line for line in log.splitlines() if marker in line)
        times[name] = datetime.datetime.strptime(re.match(r"\[([^\]]+)\]", line)[1], "%Y-%m-%d %H:%M:%S")
    return (times["first"] - times["start"]).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--rows", type=int, default=3000)
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dlautoml-remote-benchmark-"))
    server, uri = mlflow_server(folder / "tracking")
    ssh = start_ssh_server(folder / "ssh", free_port())
    try:
        rng = np.random.default_rng(0)
        features = rng.normal(size=(arguments.rows, 10)).astype(np.float32)
        labels = (features[:, 0] + features[:, 1] * features[:, 2] > 0).astype(np.int64)
        splits = split_dataset(features, labels, [str(i) for i in range(len(labels))], "classification", 0.2, 0.2, 0)
        splits.save(folder / "splits.npz")
        Preprocessor.fit(splits.features["train"], "tabular").save(folder / "preprocessor.json")
        experiment_id = configure_tracking(uri, "remote-trials-benchmark", folder / "artifacts")
        from mlflow.tracking import MlflowClient

        figures = {}
        for where in ("local", "remote"):
            parent = MlflowClient().create_run(experiment_id, run_name=f"search-{where}").info.run_id
            settings = TrialSettings(
                splits_file=str(folder / "splits.npz"), preprocessor_file=str(folder / "preprocessor.json"), family="mlp",
                task_type="classification", input_shape=[10], output_size=2, max_epochs=5, batch_size=64, seed=0,
                tracking_uri=uri, experiment_id=experiment_id, parent_run_id=parent,
                checkpoint_folder=str(folder / f"checkpoints-{where}"),
            )  # fmt: skip
            settings_file = folder / f"settings-{where}.json"
            settings.save(settings_file)
            machines, code = [], PROJECT
            if where == "remote":
                machine = RemoteMachine(
                    host="127.0.0.1", port=ssh.port, user=ssh.user, ssh_key_file=str(ssh.key_file),
                    python_path=str(Path(sys.executable).parent),
                )  # fmt: skip
                settings_file = ship_trials(folder / "upload", settings, PROJECT)
                machines, code = [machine], settings_file.parent
            seconds, records = search(folder / f"nni-{where}", settings_file, code, arguments.trials, machines)
            succeeded = [record for record in records if record.status == "SUCCEEDED"]
            figures[where] = (seconds, float(np.mean([record.seconds for record in succeeded])), len(succeeded))
            print(
                f"{where:6s}: {seconds:6.1f} s for {len(succeeded)}/{len(records)} trials "
                f"(each trial's own time: {figures[where][1]:.1f} s on average)",
                flush=True,
            )
        (local, local_trial, _), (remote, remote_trial, count) = figures["local"], figures["remote"]
        print(
            f"remote / local wall-clock: {remote / local:.2f}; overhead per remote trial: "
            f"{(remote - local) / max(count, 1):.1f} s of wall-clock ({remote_trial - local_trial:+.1f} s in the trial itself)"
        )
    finally:
        ssh.stop()
        server.terminate()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
