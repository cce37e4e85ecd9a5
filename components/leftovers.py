"""What a killed run leaves running, and closing it on the next run.

A pipeline run started with ``dlautoml run`` and no Prefect server configured gets a temporary server
from Prefect: a child process that outlives its parent when the parent is killed with SIGKILL (it
cannot clean up), and nothing stops it later. Each run writes the servers it started to a ledger in
the workspace; the next run stops those whose owner is gone. (NNI's manager ends itself with its
parent: see ``components/search/bind_host.js``.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LEDGER = ".dlautoml.processes.json"  # pipeline runs (one at a time: they hold the workspace lock)
MONITOR_LEDGER = ".dlautoml.monitor-processes.json"  # monitoring checks, which run beside a pipeline run
SERVER_MARKERS = ("prefect.server.api.server",)  # Prefect's temporary server (uvicorn)


def _identity(process) -> dict:
    return {"pid": process.pid, "started": process.create_time()}


def _alive(identity: dict):
    """The process ``identity`` names if it still runs (the same pid and start time), else None."""
    import psutil

    try:
        process = psutil.Process(identity["pid"])
        return process if abs(process.create_time() - identity["started"]) < 0.01 else None
    except (psutil.Error, KeyError):
        return None


def record_servers(workspace: Path | str, ledger: str = LEDGER) -> int:
    """Writes this process and the server processes it started to the ledger; returns how many."""
    import psutil

    me = psutil.Process()
    servers = []
    for child in me.children(recursive=True):
        try:
            if any(marker in " ".join(child.cmdline()) for marker in SERVER_MARKERS):
                servers.append(_identity(child))
        except psutil.Error:
            continue
    (Path(workspace) / ledger).write_text(json.dumps({"owner": _identity(me), "servers": servers}))
    return len(servers)


def close_leftovers(workspace: Path | str, ledger: str = LEDGER) -> list[int]:
    """Stops the servers of a ledger whose owner is gone (killed); returns their process ids. A
    ledger of a run still going, or of this process, is left alone."""
    path = Path(workspace) / ledger
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if entry.get("owner", {}).get("pid") == os.getpid() or _alive(entry.get("owner", {})) is not None:
        return []
    stopped = []
    for identity in entry.get("servers", []):
        process = _alive(identity)
        if process is not None:
            process.kill()
            process.wait(timeout=10)
            stopped.append(identity["pid"])
    path.unlink(missing_ok=True)
    return stopped


def kill_all(processes: list) -> None:
    """Kills each of ``processes`` (psutil processes; one already gone is skipped) and waits up to 10 s
    for them to end."""
    import psutil

    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(processes, timeout=10)
