"""Training's memory at growing data: the peak private (anonymous) memory and the wall-clock of one
epoch of ``fit_network`` over image splits of growing size, reading the splits as a training stage does
now (memory-mapped, rows made network-ready a batch at a time: ``TransformedRows``) against a baseline
measured in the same run on the same file: the splits read whole and made network-ready whole (one
float32 copy of the training split), as training did before.

The images are 8-bit greyscale, ``--side`` pixels square (64: 4 KiB each, 16 KiB as float32); the network
is one linear layer, so what is measured is the data's path, not the network. Each measurement runs in
a fresh process, which samples its own ``RssAnon`` (/proc/self/status) every 20 ms: pages read from a
memory-mapped file are the page cache's, which the kernel drops under pressure, so they are reported
apart (``file MiB``: the largest file-backed resident set).

    .venv/bin/python benchmarks/training_memory.py [--images 20000 100000] [--side 64]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent

EPOCH = """
import json, sys, threading, time
import numpy as np, torch
from torch import nn
from components.data.preparation import Splits
from components.training.batches import TransformedRows
from components.training.fit import fit_network

peaks = {"RssAnon": 0, "RssFile": 0}
def sample():
    while True:
        for line in open("/proc/self/status"):
            key = line.split(":")[0]
            if key in peaks:
                peaks[key] = max(peaks[key], int(line.split()[1]))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
torch.set_num_threads(1)
path, mode = sys.argv[1], sys.argv[2]
def ready(images):
    return (images.astype(np.float32) / 255.0 - 0.5) / 0.25
started = time.time()
splits = Splits.load(path)
if mode == "baseline":  # read whole, made network-ready whole
    train = ready(np.array(splits.features["train"]))
    validation = ready(np.array(splits.features["validation"]))
else:
    train = TransformedRows(splits.features["train"], ready)
    validation = TransformedRows(splits.features["validation"], ready)
side = splits.features["train"].shape[-1]
network = nn.Sequential(nn.Flatten(), nn.Linear(side * side, 10))
fit_network(network, "classification", (train, np.asarray(splits.targets["train"])),
            (validation, np.asarray(splits.targets["validation"])), {"learning_rate": 1e-3},
            max_epochs=1, batch_size=256, seed=0)
time.sleep(0.05)
print(json.dumps({"seconds": time.time() - started, "anon": peaks["RssAnon"] / 1024, "file": peaks["RssFile"] / 1024}))
"""


def write_splits(path: Path, images: int, side: int) -> None:
    from components.data.preparation import SPLITS, Splits

    rng = np.random.default_rng(0)
    counts = {
        "train": int(images * 0.7),
        "validation": int(images * 0.15),
        "test": images - int(images * 0.7) - int(images * 0.15),
    }
    Splits(
        features={split: rng.integers(0, 256, (counts[split], 1, side, side), dtype=np.uint8) for split in SPLITS},
        targets={split: rng.integers(0, 10, counts[split]) for split in SPLITS},
        sample_ids={split: np.array([f"{split}{index}" for index in range(counts[split])]) for split in SPLITS},
    ).save(path)


def run(path: Path, mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", EPOCH, str(path), mode], cwd=PROJECT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--side", type=int, default=64, help="side of the generated greyscale images")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dlautoml-training-memory"))
    arguments = parser.parse_args()
    shutil.rmtree(arguments.folder, ignore_errors=True)
    arguments.folder.mkdir(parents=True)
    print(
        f"{'images':>8} {'split MiB':>10} {'seconds':>8} {'anon MiB':>9} {'file MiB':>9} {'baseline s':>11} {'baseline anon MiB':>18} {'anon ratio':>11}",
        flush=True,
    )
    for count in arguments.images:
        path = arguments.folder / f"splits-{count}.npz"
        write_splits(path, count, arguments.side)
        size = path.stat().st_size / 2**20
        base = run(path, "baseline")
        mapped = run(path, "batches")
        print(
            f"{count:8d} {size:10.0f} {mapped['seconds']:8.1f} {mapped['anon']:9.0f} {mapped['file']:9.0f} "
            f"{base['seconds']:11.1f} {base['anon']:18.0f} {mapped['anon'] / base['anon']:11.2f}",
            flush=True,
        )
        path.unlink()


if __name__ == "__main__":
    main()
