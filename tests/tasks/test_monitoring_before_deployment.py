"""A scheduled check on a workspace that has not deployed anything yet (a fresh `monitor --serve`): one
line and a skipped report, not a traceback; a check of a given file there is the user's mistake, named."""

from pathlib import Path

import pytest

from components.errors import UserInputError
from tasks.monitoring import drift_check


def test_a_scheduled_check_before_any_deployment_is_skipped_in_one_line(tmp_path: Path, capsys):
    report = drift_check.fn(None, str(tmp_path), "params.yaml")
    assert report == {"inputs": 0, "drift": False, "skipped": True}
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == [f"[monitor] nothing is deployed in {tmp_path.resolve()} yet: no check until a run deploys a model"]
    assert not (tmp_path / "serving").exists()  # nothing written that a later check would read


def test_checking_a_file_before_any_deployment_says_to_run_first(tmp_path: Path):
    with pytest.raises(UserInputError, match="nothing is deployed in .* yet: run `dlautoml run` there first"):
        drift_check.fn(str(tmp_path / "new.csv"), str(tmp_path), "params.yaml")
