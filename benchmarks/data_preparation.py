"""Data preparation speed and memory at several sizes: seconds per 10,000 rows (a table), images,
texts, and images listed in a table with other columns (multimodal), and the peak resident memory, of
the task_formulation and data_preparation stages (loading, validation, cleaning with label-error
detection, splitting, preprocessing, the quality report), against a baseline measured in the same run
on the same files: read the data, split it and standardise it with pandas / PIL and scikit-learn,
nothing else. The growth column divides the time per sample by the smallest size's of the same kind
(1.0: linear).

    .venv/bin/python benchmarks/data_preparation.py [--rows 10000 100000 1000000] [--images 5000 50000]
        [--texts 5000 50000] [--image-tables 5000] [--image-size 28] [--processes one|two]

Each measurement runs in a fresh process; peak memory is that process's maximum resident set size.
The workspace's tracking store exists before it, as after a workspace's first run.
The two stages run in one process as a pipeline run does (``--processes two``: each in its own,
``python -m tasks.<stage>``, as ``dvc repro`` runs them, which pays the imports and the tracking
store's start twice, about 5 s).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

PROJECT = Path(__file__).resolve().parent.parent

BASELINE_TABLE = """
import sys, pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
frame = pd.read_csv(sys.argv[1])
x, y = frame.drop(columns=["label", "id"]).to_numpy("float32"), frame["label"].to_numpy()
train, test = train_test_split(range(len(y)), test_size=0.25, random_state=0, stratify=y)
StandardScaler().fit(x[train])
"""

BASELINE_IMAGES = """
import sys, numpy as np
from pathlib import Path
from PIL import Image
from sklearn.model_selection import train_test_split
files = sorted(Path(sys.argv[1]).rglob("*.png"))
x = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])[:, None]
y = np.array([f.parent.name for f in files])
train, test = train_test_split(range(len(y)), test_size=0.25, random_state=0, stratify=y)
x[train].astype("float32").mean()
"""

BASELINE_TEXTS = """
import sys, pandas as pd
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import train_test_split
frame = pd.read_csv(sys.argv[1])
train, test = train_test_split(range(len(frame)), test_size=0.25, random_state=0, stratify=frame["label"])
CountVectorizer().fit(frame["review"].iloc[train])
"""

BASELINE_IMAGE_TABLE = """
import sys, numpy as np, pandas as pd
from pathlib import Path
from PIL import Image
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
folder = Path(sys.argv[1])
frame = pd.read_csv(folder / "scans.csv")
x = np.stack([np.asarray(Image.open(folder / f).convert("L")) for f in frame["scan"]])[:, None]
y = frame["label"].to_numpy()
train, test = train_test_split(range(len(y)), test_size=0.25, random_state=0, stratify=y)
x[train].astype("float32").mean()
StandardScaler().fit(frame[["dose", "age"]].to_numpy("float32")[train])
"""


STAGES_IN_ONE_PROCESS = """
from components.manifests import PreparationManifest, TaskManifest
from tasks.data_preparation import prepare
from tasks.stage_runner import run_standalone
from tasks.task_formulation import formulate
run_standalone("task_formulation", TaskManifest, formulate)
run_standalone("data_preparation", PreparationManifest, prepare)
"""

# The workspace's tracking store, created before the measurement as a workspace's first run leaves it
# (creating MLflow's SQLite schema takes about 2 s, once per workspace).
TRACKING_STORE = """
from pathlib import Path
from components.config import load_params
from components.tracking import configure_tracking
tracking = load_params(Path("params.yaml")).tracking
configure_tracking(tracking.uri(Path(".")), tracking.experiment, Path(tracking.artifact_folder))
"""


def write_table(path: Path, rows: int) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    features = rng.normal(size=(rows, 20)).astype(np.float32)
    features[rng.random(features.shape) < 0.02] = np.nan  # 2% missing values
    label = (np.nan_to_num(features[:, 0]) + np.nan_to_num(features[:, 1]) > 0).astype(int)
    frame = pd.DataFrame(features, columns=[f"f{index}" for index in range(20)])
    frame.insert(0, "id", [f"row{index}" for index in range(rows)])
    frame["label"] = label
    frame.to_csv(path, index=False)


def write_images(folder: Path, count: int, size: int) -> None:
    """Digits scaled up to ``size`` pixels, with pixel noise so that copies are not duplicates."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    for index in range(count):
        source = index % len(digits.images)
        pixels = np.kron(digits.images[source] * (255 / 16), np.ones((size // 8, size // 8)))
        pixels = np.clip(pixels + rng.normal(scale=12, size=pixels.shape), 0, 255).astype(np.uint8)
        target = folder / str(digits.target[source])
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="L").save(target / f"{index:05d}.png")


def write_texts(path: Path, rows: int) -> None:
    """Reviews of 10 to 60 words from a 5,000-word vocabulary; a few sentiment words tell the label."""
    import pandas as pd

    rng = np.random.default_rng(0)
    vocabulary = np.array([f"word{index}" for index in range(5000)])
    good, bad = np.array(["great", "superb", "lovely"]), np.array(["awful", "dreadful", "poor"])
    labels = rng.integers(0, 2, rows)
    reviews = [
        " ".join([*rng.choice(vocabulary, rng.integers(10, 60)), *rng.choice(good if label else bad, 2)]) for label in labels
    ]
    pd.DataFrame({"id": [f"r{index}" for index in range(rows)], "review": reviews, "label": labels}).to_csv(path, index=False)


def write_image_table(folder: Path, count: int, size: int) -> None:
    """The digits of :func:`write_images` listed in a table with a dose, an age and a site."""
    import pandas as pd

    write_images(folder / "scans", count, size)
    files = sorted((folder / "scans").rglob("*.png"))
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "scan": [str(file.relative_to(folder)) for file in files],
            "dose": rng.normal(size=len(files)).round(3),
            "age": rng.integers(20, 90, len(files)),
            "site": rng.choice(["north", "south", "east"], len(files)),
            "label": [file.parent.name for file in files],
        }
    )
    frame.to_csv(folder / "scans.csv", index=False)


def workspace(root: Path, data_path: str) -> Path:
    for name in ("components", "tasks"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["task_formulation"]["data_path"] = data_path
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def measure(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one fresh process."""
    wrapper = (
        "import resource, subprocess, sys, json; done = subprocess.run(sys.argv[1:]); "
        "print(json.dumps([done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", wrapper, *command], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    code, peak_kib = json.loads(result.stdout.strip().splitlines()[-1])
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--images", type=int, nargs="*", default=[5_000, 50_000])
    parser.add_argument("--texts", type=int, nargs="*", default=[5_000, 50_000])
    parser.add_argument(
        "--image-tables", type=int, nargs="*", default=[5_000], help="images listed in a table with other columns"
    )
    parser.add_argument("--image-size", type=int, default=28, help="side of the generated greyscale images")
    parser.add_argument(
        "--processes", choices=["one", "two"], default="one", help="the two stages in one process, or each in its own"
    )
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dlautoml-data-preparation"))
    arguments = parser.parse_args()
    folder = arguments.folder.resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    size = arguments.image_size
    kinds = (
        ("table", arguments.rows, "data/table.csv", write_table, BASELINE_TABLE),
        ("images", arguments.images, "data/images", lambda path, count: write_images(path, count, size), BASELINE_IMAGES),
        ("texts", arguments.texts, "data/reviews.csv", write_texts, BASELINE_TEXTS),
        (
            "images+table",
            arguments.image_tables,
            "data/clinic",
            lambda path, count: write_image_table(path, count, size),
            BASELINE_IMAGE_TABLE,
        ),
    )
    stages = (
        [[sys.executable, "-c", STAGES_IN_ONE_PROCESS]]
        if arguments.processes == "one"
        else [[sys.executable, "-m", "tasks.task_formulation"], [sys.executable, "-m", "tasks.data_preparation"]]
    )
    print(
        f"{'data':12} {'samples':>9} {'seconds':>8} {'s/10k':>7} {'growth':>7} {'peak MiB':>9} {'baseline s':>11} "
        f"{'baseline MiB':>13} {'ratio':>6} {'label errors':>13}",
        flush=True,
    )
    for name, counts, data_path, write, baseline in kinds:
        smallest = None
        for count in sorted(counts):
            root = workspace(folder / f"{name}-{count}", data_path)
            (root / "data").mkdir(exist_ok=True)
            write(root / data_path, count)
            measure([sys.executable, "-c", TRACKING_STORE], root)
            base_seconds, base_peak = measure([sys.executable, "-c", baseline, str(root / data_path)], root)
            measured = [measure(command, root) for command in stages]
            seconds, peak = sum(time for time, _ in measured), max(memory for _, memory in measured)
            quality = json.loads((root / "outputs" / "data_preparation" / "quality.json").read_text())
            per_sample = seconds / count
            smallest = smallest or per_sample
            print(
                f"{name:12} {count:9d} {seconds:8.1f} {per_sample * 10_000:7.2f} {per_sample / smallest:7.2f} {peak:9.0f} "
                f"{base_seconds:11.1f} {base_peak:13.0f} {seconds / base_seconds:6.1f} {quality['label_errors']['count']:13d}",
                flush=True,
            )
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
