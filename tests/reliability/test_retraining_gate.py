"""A drift starts at most one retraining per quiet period, and the Prefect server is found the way
Prefect finds it (a profile counts, not only PREFECT_API_URL); a retraining that cannot start says why."""

import os
import subprocess
import sys
from pathlib import Path

from components.monitoring.retraining import quiet_seconds_left, record_started
from components.networking import free_port
from tests.conftest import PROJECT

START = """
import sys
from pathlib import Path
sys.path.insert(0, {project!r})
from tasks.monitoring import _start_retraining
print("OUTCOME", _start_retraining(Path({state!r}), 60.0))
"""


def _start(tmp_path: Path, environment: dict) -> str:
    script = START.format(project=str(PROJECT), state=str(tmp_path / "serving" / "retraining.json"))
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return next(line for line in done.stdout.splitlines() if line.startswith("OUTCOME"))


def test_the_quiet_period_counts_from_the_last_retraining(tmp_path: Path):
    state = tmp_path / "retraining.json"
    assert quiet_seconds_left(state, 60) == 0.0
    record_started(state, "run-1", now=1000.0)
    assert quiet_seconds_left(state, 60, now=1000.0 + 600) == 3000.0
    assert quiet_seconds_left(state, 60, now=1000.0 + 3600) == 0.0


def test_a_server_from_a_profile_is_used_and_a_failed_start_says_why(tmp_path: Path):
    home = tmp_path / "prefect-home"
    home.mkdir()
    port = free_port()  # nothing listens there
    (home / "profiles.toml").write_text(
        f'active = "shared"\n\n[profiles.shared]\nPREFECT_API_URL = "http://127.0.0.1:{port}/api"\n'
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    environment.update({"PREFECT_HOME": str(home), "PREFECT_CLIENT_MAX_RETRIES": "0"})
    outcome = _start(tmp_path, environment)
    assert outcome.startswith("OUTCOME not started:") and "no Prefect server" not in outcome, outcome
    assert not (tmp_path / "serving" / "retraining.json").exists()  # nothing started, no quiet period

    record_started(tmp_path / "serving" / "retraining.json", "run-1")
    outcome = _start(tmp_path, environment)
    assert "the last retraining started less than 60 min ago" in outcome
