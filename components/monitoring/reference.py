"""The monitoring reference of one registered version: what a check needs to judge the inputs that
version served (its task, preprocessing, network, drift detectors and calibration), in the workspace's
layout (``outputs/<stage>/``), kept with the version in MLflow.

The workspace's own outputs belong to the newest trained network. After a challenger is rejected the
champion is an older version, and its traffic must be embedded and judged by the champion: a check
fetches that version's reference once into ``serving/references/<version>/`` and reads it from there.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from components.manifests import MANIFEST_FILE, Manifest, PreparationManifest, TaskManifest, TrainingManifest, stage_folder

ARTIFACT_PATH = "monitoring_reference"
REFERENCES = Path("serving") / "references"


def _copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)


def _stage_files(root: Path) -> list[Path]:
    """The upstream files a check reads, relative to ``root``."""
    preparation, training = PreparationManifest.read(root), TrainingManifest.read(root)
    files = [stage_folder(manifest.stage) / MANIFEST_FILE for manifest in (TaskManifest, PreparationManifest, TrainingManifest)]
    files.append(stage_folder(PreparationManifest.stage) / preparation.preprocessor_file)
    files.append(stage_folder(TrainingManifest.stage) / training.model_file)
    return files


def publish_reference(root: Path, monitoring_folder: Path, manifest: Manifest, run_id: str) -> None:
    """Logs the reference (the upstream files from ``root``, the monitoring stage's files from
    ``monitoring_folder`` and its ``manifest``) as artifacts of ``run_id``, the run that registered
    the version."""
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as staging:
        bundle = Path(staging)
        for relative in _stage_files(root):
            _copy(root / relative, bundle / relative)
        shutil.copytree(monitoring_folder, bundle / stage_folder(manifest.stage))
        manifest.write(bundle / stage_folder(manifest.stage))
        MlflowClient().log_artifacts(run_id, str(bundle), ARTIFACT_PATH)


def fetch_reference(root: Path, version: str, run_id: str) -> Path:
    """The reference of ``version`` in ``serving/references/<version>/``, downloaded once from the
    artifacts of ``run_id``; the folder appears whole or not at all."""
    import mlflow

    folder = root / REFERENCES / version
    if (folder / "outputs").is_dir():
        return folder
    staging = folder.with_name(f".{version}.downloading")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=str(staging))
    (staging / ARTIFACT_PATH).rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return folder
