"""Both flows served as Prefect deployments (`dlautoml monitor --serve`): `automl` on demand (a click in
the Prefect UI, or a drift), `monitor` on its schedule; a local Prefect server is started when none is
configured."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from components.config import load_params

LOCAL_SERVER = "http://127.0.0.1:4200/api"
SERVER_LOG = ".prefect-server.log"


def start_local_server(say: Callable[[str], None] = print) -> None:
    """Starts `prefect server start` on 127.0.0.1:4200 for this process's lifetime and points Prefect at it.

    Raises:
        RuntimeError: the server did not start.
    """
    log = open(SERVER_LOG, "ab")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", "4200"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    atexit.register(server.terminate)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{LOCAL_SERVER}/health", timeout=1)
            break
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"the Prefect server did not start: see {SERVER_LOG} (is port 4200 taken?)") from None
            time.sleep(0.5)
    os.environ["PREFECT_API_URL"] = LOCAL_SERVER
    say(f"Prefect server and UI on http://127.0.0.1:4200 (log: {SERVER_LOG})")


def serve_deployments(params: Path, say: Callable[[str], None] = print) -> None:
    """Serves both flows until stopped, against PREFECT_API_URL or a local server started here."""
    from prefect import serve

    from flows.automl import automl
    from flows.monitor import monitor

    schedule = load_params(params).monitoring.schedule
    if not os.environ.get("PREFECT_API_URL"):
        start_local_server(say)
    parameters = {"workspace": str(Path(".").resolve()), "params_file": str(params)}
    serve(
        automl.to_deployment(name="automl", parameters=parameters),
        monitor.to_deployment(name="monitor", cron=schedule, parameters=parameters),
    )
