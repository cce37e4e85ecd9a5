"""Shared fixtures: tiny datasets and a throw-away project workspace (git + DVC) per test."""

from __future__ import annotations

import os

# Under `pytest -n N`, each worker's share of the cores, for its own and its subprocesses' math libraries
# (read when they load: before anything here imports NumPy or PyTorch). Two workers on two cores, each
# with a two-thread pool, spin against each other: a 4-second training took 51 s beside a busy worker.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_variable, _threads)

import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


# The modules whose tests take longest (`make test` lists the 25 slowest), longest first. `make test`
# hands the two workers one test at a time (--maxschedchunk 1) in collection order: with these first,
# the short tests fill in at the end, and neither worker is left with minutes of work while the other
# waits (with xdist's default batches, a pipeline test sent late kept one worker busy for 5 minutes alone).
SLOWEST_FIRST = (
    "tests/reliability/test_kill_and_rerun.py",
    "tests/flows/test_automl_flow.py",
    "tests/flows/test_closed_loop.py",
    "tests/team/test_team_setup.py",
    "tests/components/test_search.py",
    "tests/ui/test_browser.py",
    "tests/flows/test_dvc_repro.py",
    "tests/flows/test_init_from.py",
    "tests/flows/test_knowledge_build.py",
    "tests/components/test_constraints.py",
    "tests/components/test_successive_halving.py",
    "tests/components/test_family_search.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    """The slowest modules first (:data:`SLOWEST_FIRST`), each module's tests in their own order."""
    rank = {module: position for position, module in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_report_header(config) -> str:
    """The processor, first thing in every run's output: INT8 kernels differ with its features (VNNI)."""
    from components.deployment.processor import processor_features

    return f"processor: {processor_features().description()}"


TINY_PARAMS = {
    "training": {
        "max_trials": 2,
        "max_minutes": 3.0,
        "trial_concurrency": 2,
        "trial_max_epochs": 3,
        "trial_min_steps": 0,
        "final_max_epochs": 8,
        "patience": 3,
        "batch_size": 8,
    },
    "deployment": {"latency_repeats": 10, "sweep_batch_sizes": [1, 8], "sweep_threads": [1], "sweep_seconds": 0.05},
    # A strict threshold: the tiny workspaces have 9 validation images as the drift reference.
    "monitoring": {"reference_size": 100, "permutations": 50, "p_value": 0.01},
}


def write_table(path: Path, rows: int = 120, seed: int = 0, classes: int = 2, messy: bool = False) -> Path:
    """A numeric table whose label depends on the first two columns; ``messy`` adds an id column and
    a categorical column (with missing values) that shifts the label."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 3))
    regions = rng.choice(["north", "south", "east", ""], size=rows)
    shift = np.where(regions == "north", 1.5, 0.0) if messy else 0.0
    label = (features[:, 0] + features[:, 1] + shift > 0).astype(int) if classes == 2 else rng.integers(0, classes, rows)
    if messy:
        lines = ["customer_id,a,b,c,region,label"] + [
            f"c{index:04d},{x:.5f},{y:.5f},{z:.5f},{region},{t}"
            for index, ((x, y, z), region, t) in enumerate(zip(features, regions, label))
        ]
        path.write_text("\n".join(lines) + "\n")
        return path
    lines = ["a,b,c,label"] + [f"{x:.5f},{y:.5f},{z:.5f},{t}" for (x, y, z), t in zip(features, label)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_images(folder: Path, per_class: int = 20, classes: int = 3, size: int = 8, seed: int = 0) -> Path:
    """Greyscale images whose bright quadrant tells the class."""
    rng = np.random.default_rng(seed)
    for label in range(classes):
        (folder / f"class_{label}").mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 60, size=(size, size)).astype(np.uint8)
            half = size // 2
            row, column = divmod(label, 2)
            pixels[row * half : (row + 1) * half, column * half : (column + 1) * half] += 150
            Image.fromarray(pixels, mode="L").save(folder / f"class_{label}" / f"{index:03d}.png")
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fresh MLflow store (tracking and registry) in the test's folder."""
    from components.tracking import configure_tracking

    configure_tracking(f"sqlite:///{tmp_path}/mlflow.db", "serving-test", tmp_path / "artifacts")
    return tmp_path


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    return write_table(tmp_path / "table.csv")


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_images(tmp_path / "images")


def make_workspace(root: Path, data_path: str, target: str = "label", overrides: dict | None = None) -> Path:
    """A project copy (code, dvc.yaml, params.yaml) in its own git + DVC repository."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("components", "tasks"):
        shutil.copytree(PROJECT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy2(PROJECT / name, root / name)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["task_formulation"].update({"data_path": data_path, "target": target})
    for changes in (TINY_PARAMS, overrides or {}):
        for section, values in changes.items():
            params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True, env=_with_venv_path())
    return root


def _with_venv_path() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(os.sys.executable).parent}:{environment.get('PATH', '')}"
    return environment


@pytest.fixture(scope="session")
def venv_environment() -> dict[str, str]:
    """The environment with this interpreter's bin folder first, as `make` sets it."""
    return _with_venv_path()


# What `dlautoml` sets for its services, restored after each in-process call (CliRunner restores what
# it is given).
CLI_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "INFO",
    "GIT_PYTHON_REFRESH": "quiet",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def run_cli(root: Path, monkeypatch, *arguments: str) -> tuple[int, str]:
    """The command line run in this process from ``root`` (the same typer application as the
    `dlautoml` script, without an interpreter start per call): its exit code and stderr."""
    from typer.testing import CliRunner

    from dlautoml.cli import app

    monkeypatch.chdir(root)
    handler = signal.getsignal(signal.SIGTERM)  # the command installs its own
    try:
        result = CliRunner().invoke(app, list(arguments), env=CLI_ENVIRONMENT)
    finally:
        signal.signal(signal.SIGTERM, handler)
    return result.exit_code, result.stderr
