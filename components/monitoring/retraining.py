"""When a drift may start a retraining: not while one is in flight, and not within a quiet period after
the last one started (persistent drift would otherwise start a new `automl` run at every check).
Plain arithmetic over the monitor's state file; the stage asks Prefect what is in flight."""

from __future__ import annotations

import json
import time
from pathlib import Path

RETRAINING_FILE = "retraining.json"  # next to the request log: when the last retraining started, and its run


def quiet_seconds_left(state_file: Path, quiet_minutes: float, now: float | None = None) -> float:
    """Seconds left of the quiet period after the last retraining this workspace started (0: none)."""
    try:
        started = float(json.loads(Path(state_file).read_text())["started_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    return max(0.0, started + quiet_minutes * 60.0 - (time.time() if now is None else now))


def record_started(state_file: Path, flow_run_id: str, now: float | None = None) -> None:
    Path(state_file).parent.mkdir(parents=True, exist_ok=True)
    Path(state_file).write_text(json.dumps({"started_at": time.time() if now is None else now, "flow_run": flow_run_id}))
