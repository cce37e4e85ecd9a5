"""`dlautoml feedback` stores nothing when a line names a row its request lacks or a row that is not a
number; error lines about many classes stay short."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from components.data.preparation import check_class_sizes
from components.errors import DataError
from tests.test_cli import CLI


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """A request log with one two-row request, 'r1', and no task manifest."""
    from components.serving.request_log import RequestLog

    log = RequestLog(tmp_path / "serving" / "requests.db")
    log.record("m", "1", np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32), [{"label": "no"}] * 2, 1.0, "r1")
    log.close()
    return tmp_path


@pytest.mark.parametrize(
    "lines, message",
    [
        ("r1,yes,2", "1 label(s) name a row their request does not have: r1 row 2 (it has 2)"),
        ("r1,yes,-1", "the row column must hold whole numbers from 0: line 3: '-1'"),
        ("r1,yes,first", "the row column must hold whole numbers from 0: line 3: 'first'"),
        ("r1,yes,1.5", "the row column must hold whole numbers from 0: line 3: '1.5'"),
        ("r1,yes,inf", "the row column must hold whole numbers from 0: line 3: 'inf'"),
    ],
)
def test_feedback_refuses_rows_a_request_does_not_have_and_stores_nothing(served: Path, lines: str, message: str):
    from components.serving.request_log import read_requests

    (served / "labels.csv").write_text(f"request_id,label,row\nr1,no,0\n{lines}\n")
    done = subprocess.run([*CLI, "feedback", "--file", "labels.csv"], cwd=served, capture_output=True, text=True)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert read_requests(served / "serving" / "requests.db")[0]["labels"] == {}  # not even the good line
    (served / "labels.csv").write_text("request_id,label,row\nr1,no,0\nr1,yes,1\n")
    done = subprocess.run([*CLI, "feedback", "--file", "labels.csv"], cwd=served, capture_output=True, text=True)
    assert done.returncode == 0 and "stored 2 labels" in done.stdout


def test_an_id_like_target_with_thousands_of_classes_fails_in_a_short_line():
    names = [f"customer-{index:05d}" for index in range(10_000)]
    with pytest.raises(DataError) as raised:
        check_class_sizes(np.arange(10_000), names)
    message = str(raised.value)
    assert len(message) < 400, len(message)
    assert message.startswith("10,000 of 10,000 classes have fewer than 3 samples")
    assert "'customer-00000' (1)" in message and "and 9,995 more" in message
