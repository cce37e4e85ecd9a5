"""Stage bookkeeping: atomic outputs, skipping unchanged stages, the workspace lock."""

from pathlib import Path

import pytest
from filelock import FileLock

from components.errors import DataError, UserInputError
from components.manifests import TaskManifest, stage_folder
from tasks.data_preparation import prepare
from tasks.stage_runner import RunContext, execute_stage, workspace_lock
from tasks.task_formulation import formulate
from tasks.versioning import track_data
from tests.conftest import make_workspace, write_table


@pytest.fixture
def table_workspace(tmp_path: Path, monkeypatch) -> Path:
    root = make_workspace(tmp_path / "workspace", "data/table.csv")
    (root / "data").mkdir()
    write_table(root / "data" / "table.csv")
    monkeypatch.chdir(root)
    return root


def test_failed_stage_keeps_previous_outputs_and_leaves_nothing_half_written(table_workspace: Path):
    first = execute_stage("task_formulation", TaskManifest, RunContext(), formulate)
    assert first.task_type == "classification" and first.class_names == ["0", "1"]
    manifest_file = stage_folder("task_formulation") / "manifest.json"
    before = manifest_file.read_text()
    (table_workspace / "data" / "table.csv").write_text("a,b,c,label\n1,2,3,x\n4,5,6,x\n")
    with pytest.raises(DataError, match="single class"):
        execute_stage("task_formulation", TaskManifest, RunContext(), formulate)
    assert manifest_file.read_text() == before
    assert sorted(path.name for path in (table_workspace / "outputs").iterdir()) == ["task_formulation"]


def test_orchestrated_stage_is_recorded_then_skipped(table_workspace: Path, capsys):
    track_data(table_workspace / "data" / "table.csv", table_workspace)
    context = RunContext(orchestrated=True)
    execute_stage("task_formulation", TaskManifest, context, formulate)
    assert "task_formulation" in (table_workspace / "dvc.lock").read_text()
    capsys.readouterr()
    again = execute_stage("task_formulation", TaskManifest, context, formulate)
    assert "skipped" in capsys.readouterr().out
    assert again.sample_count == 120


def test_stage_reads_upstream_manifest(table_workspace: Path):
    with pytest.raises(FileNotFoundError, match="run the 'task_formulation' stage first"):
        execute_stage("data_preparation", TaskManifest, RunContext(), prepare)
    assert not (table_workspace / "outputs" / "data_preparation").exists()


def test_two_runs_never_share_a_workspace(table_workspace: Path):
    with FileLock(str(table_workspace / ".dlautoml.lock")):
        with pytest.raises(UserInputError, match="another pipeline run"):
            with workspace_lock("."):
                pass
