"""The final training on several devices: Lightning's DDP with two processes on the CPU (gloo)."""

import functools
import math
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from components.data.preparation import SPLITS, Splits
from components.errors import ConfigurationError
from components.models.families import build_network
from components.training.batches import TransformedRows
from components.training.distributed import devices_for, fit_on_devices
from components.training.fit import evaluation_metrics, fit_network, predict

PROJECT = Path(__file__).resolve().parents[2]
ARCHITECTURE = {"depth": 1, "width": 32, "activation": "relu", "dropout": 0.0}
AS_FLOATS = functools.partial(np.asarray, dtype=np.float32)  # a transform the processes can unpickle


def _mapped_splits(folder: Path, rows: int) -> Splits:
    """A separable table saved and mapped back as the training stage reads its splits."""
    rng = np.random.default_rng(0)
    features = {split: rng.normal(size=(rows, 4)).astype(np.float32) for split in SPLITS}
    Splits(
        features=features,
        targets={split: (values[:, 0] - values[:, 2] > 0).astype(np.int64) for split, values in features.items()},
        sample_ids={split: np.array([f"{split}{index}" for index in range(rows)]) for split in SPLITS},
    ).save(folder / "splits.npz")
    return Splits.load(folder / "splits.npz")


def _network() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network("mlp", [4], 2, ARCHITECTURE)


def test_two_processes_train_one_network_in_step_each_on_half_the_batches(tmp_path: Path):
    splits = _mapped_splits(tmp_path, 1_000)
    data = {split: (TransformedRows(splits.features[split], AS_FLOATS), np.asarray(splits.targets[split])) for split in SPLITS}
    network, untrained = _network(), _network()
    epochs_seen: list[int] = []
    arguments = {
        "task_type": "classification",
        "train": data["train"],
        "validation": data["validation"],
        "hyperparameters": {"learning_rate": 1e-2},
        "max_epochs": 4,
        "batch_size": 32,
        "seed": 0,
        "keep_best": True,
    }
    result = fit_on_devices(2, network, lambda epoch, row: epochs_seen.append(epoch), **arguments)
    assert result.devices == 2 and result.replicas_agree is True
    assert result.steps == 4 * math.ceil(500 / 32)  # each process: its half of the 1,000 rows a epoch
    assert epochs_seen == [0, 1, 2, 3] and len(result.history) == 4  # each epoch reported back as it ended
    assert result.network is network  # the caller's network holds the trained weights
    test = evaluation_metrics("classification", predict(network, data["test"][0]), data["test"][1])
    assert test["accuracy"] > 0.9
    assert evaluation_metrics("classification", predict(untrained, data["test"][0]), data["test"][1])["accuracy"] < 0.8
    alone = fit_network(_network(), **arguments)  # one process takes twice the steps over the same rows
    assert (alone.devices, alone.steps, alone.replicas_agree) == (1, 2 * result.steps, None)


def test_every_process_stops_at_the_deadline_with_the_schedule_run_out():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(2_000, 4)).astype(np.float32)
    targets = (features @ np.array([1.0, -2.0, 0.5, 0.0], dtype=np.float32)).astype(np.float32)
    started = time.time()
    result = fit_on_devices(
        2,
        build_network("mlp", [4], 1, ARCHITECTURE),
        None,
        task_type="regression",
        train=(features[:1_500], targets[:1_500]),
        validation=(features[1_500:], targets[1_500:]),
        hyperparameters={"learning_rate": 1e-2},
        max_epochs=100_000,
        batch_size=32,
        seed=0,
        deadline=started + 20,
    )
    finished = time.time()
    assert result.reached_deadline and result.replicas_agree is True  # both stopped at the same step
    assert finished - started < 20 + 2.0, finished - started
    assert 0 < len(result.history) < 100_000 and result.best_score > 0.9  # R^2
    assert result.final_learning_rate < 1e-2 * 1e-3  # the budgeted cosine decayed to (almost) zero by the deadline


def test_a_failed_training_says_how_to_train_on_one_device():
    features = np.zeros((64, 4), dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"(?s)on 2 devices.*KeyError: 'learning_rate'.*training.devices: 1"):
        fit_on_devices(
            2,
            _network(),
            None,
            task_type="classification",
            train=(features, np.zeros(64, dtype=np.int64)),
            validation=(features, np.zeros(64, dtype=np.int64)),
            hyperparameters={},  # no learning rate
            max_epochs=1,
            batch_size=32,
            seed=0,
        )


def test_a_mapped_split_travels_to_the_processes_as_its_file_not_its_bytes(tmp_path: Path):
    splits = _mapped_splits(tmp_path, 5_000)
    whole = TransformedRows(splits.features["train"], AS_FLOATS)
    pickled = pickle.dumps(whole)
    assert len(pickled) < 1_000 < splits.features["train"].nbytes
    back = pickle.loads(pickled)
    assert isinstance(back.raw, np.memmap) and np.array_equal(np.asarray(back), np.asarray(whole))
    part = TransformedRows(splits.features["train"][10:], AS_FLOATS)  # a slice goes as its bytes
    assert np.array_equal(np.asarray(pickle.loads(pickle.dumps(part))), np.asarray(part))


def test_devices_auto_means_every_gpu_for_a_long_enough_training_and_more_than_there_are_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert devices_for("auto", 600) == (1, None)
    assert devices_for(2, 600)[0] == 2  # no GPU: processes on the cores
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert devices_for("auto", 600) == (4, "the final training runs on 4 processes with Lightning's DDP (a GPU each)")
    assert devices_for("auto", 60)[0] == 1  # a minute's training stays on one GPU
    assert devices_for(2, 60)[0] == 2  # as asked
    with pytest.raises(ConfigurationError, match="training.devices is 8 but this machine has 4 GPU"):
        devices_for(8, 600)


def _descendants(pid: int) -> set[int]:
    return {child.pid for child in psutil.Process(pid).children(recursive=True)}


@pytest.mark.skipif(sys.platform != "linux", reason="the processes' end with their parent is asked of Linux")
def test_training_processes_end_when_the_stage_is_killed_outright(tmp_path: Path):
    script = tmp_path / "stage.py"
    script.write_text(f"""
import time
import numpy as np
from components.models.families import build_network
from components.training.distributed import fit_on_devices
x = np.random.default_rng(0).normal(size=(400_000, 4)).astype(np.float32)  # epochs of a minute
y = (x[:, 0] > 0).astype(np.int64)
fit_on_devices(
    2, build_network("mlp", [4], 2, {ARCHITECTURE!r}), lambda epoch, row: print("epoch", epoch, flush=True),
    task_type="classification", train=(x, y), validation=(x[:1000], y[:1000]), hyperparameters={{"learning_rate": 1e-3}},
    max_epochs=100, batch_size=8, seed=0, deadline=time.time() + 120,
)
""")
    stage = subprocess.Popen([sys.executable, str(script)], cwd=PROJECT)
    try:
        deadline = time.time() + 120
        while len(_descendants(stage.pid)) < 2 and time.time() < deadline:  # the second process started
            time.sleep(0.2)
        time.sleep(6)  # both at work (or, on a busy machine, the second still starting: they must end as well)
        training = _descendants(stage.pid)
        assert len(training) >= 2
        stage.kill()  # SIGKILL: no clean-up of its own; nor will the processes write to it before their epoch ends
        stage.wait()
        deadline = time.time() + 10
        while {pid for pid in training if psutil.pid_exists(pid)} and time.time() < deadline:
            time.sleep(0.2)
        assert not {pid for pid in training if psutil.pid_exists(pid)}
    finally:
        stage.kill()


def test_an_error_in_the_stage_while_they_train_ends_the_training_processes():
    features = np.random.default_rng(2).normal(size=(4_000, 4)).astype(np.float32)
    targets = (features[:, 0] > 0).astype(np.int64)
    before = _descendants(os.getpid())

    def failing_progress(epoch: int, row: dict) -> None:
        raise ValueError("the progress output failed")

    with pytest.raises(ValueError, match="the progress output failed"):
        fit_on_devices(
            2,
            _network(),
            failing_progress,
            task_type="classification",
            train=(features, targets),
            validation=(features[:500], targets[:500]),
            hyperparameters={"learning_rate": 1e-3},
            max_epochs=1_000,
            batch_size=8,
            seed=0,
        )
    deadline = time.time() + 10
    while _descendants(os.getpid()) - before and time.time() < deadline:
        time.sleep(0.2)
    assert not _descendants(os.getpid()) - before
