"""Both flows served as Prefect deployments (`dlautoml monitor --serve`): `automl` on demand (a click in
the Prefect UI, or a drift), `monitor` on its schedule; a local Prefect server is started when none is
configured."""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from components.config import load_params

SERVER_LOG = ".prefect-server.log"
# The descriptions as prefect.yaml declares them (a test keeps the two the same); one workspace: one run of each at a time.
DESCRIPTIONS = {
    "automl": "The six-stage pipeline; options left empty keep params.yaml's.",
    "monitor": "Drift, uncertainty and accuracy of the requests served since the last check.",
}
CONCURRENCY_LIMIT = 1


def start_local_server(say: Callable[[str], None] = print, port: int = 4200) -> str:
    """Starts `prefect server start` on 127.0.0.1:``port`` for this process's lifetime; returns its API URL.

    Raises:
        RuntimeError: the server did not start.
    """
    url = f"http://127.0.0.1:{port}/api"
    log = open(SERVER_LOG, "ab")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=server_environment("127.0.0.1", port),
        start_new_session=True,  # Ctrl-C reaches the runner, which pauses the deployments on this server first
    )
    atexit.register(_stop, server, say)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(
                    f"the Prefect server did not start: see {SERVER_LOG} (is port {port} taken? choose another with --prefect-port)"
                ) from None
            time.sleep(0.5)
    os.environ["PREFECT_API_URL"] = url
    say(f"Prefect server and UI on http://127.0.0.1:{port} (log: {SERVER_LOG})")
    return url


def server_environment(host: str, port: int) -> dict[str, str]:
    """The environment of `prefect server start --host HOST --port PORT`: the same address in Prefect's own
    settings, from which its UI learns where the API is. With the flags alone the pages it serves call
    port 4200 ("Can't connect to Server API") whatever port the server listens on."""
    return {**os.environ, "PREFECT_SERVER_API_HOST": host, "PREFECT_SERVER_API_PORT": str(port)}


def _stop(server: subprocess.Popen, say: Callable[[str], None] = print) -> None:
    say("stopping the Prefect server this command started")
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        say("the Prefect server did not stop within 15 s of SIGTERM: killed")
        server.kill()


def serve_deployments(params: Path, say: Callable[[str], None] = print, port: int = 4200) -> None:
    """Serves both flows until stopped, against PREFECT_API_URL or a local server started here."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    from flows.automl import automl
    from flows.monitor import monitor

    schedule = load_params(params).monitoring.schedule
    url = get_current_settings().api.url  # Prefect's own resolution: environment, profile, .env
    if not url:
        url = start_local_server(say, port)
    workspace = str(Path(".").resolve())
    parameters = {"workspace": workspace, "params_file": str(params)}
    # Prefect read its settings when it was imported: the server started above must be named to it here,
    # or it serves the deployments on a temporary server of its own that the UI above does not show.
    deployments = [
        automl.to_deployment(name="automl", parameters=parameters),
        monitor.to_deployment(name="monitor", cron=schedule, parameters=parameters),
    ]
    for deployment in deployments:
        deployment.description = f"{DESCRIPTIONS[deployment.name]} Workspace: {workspace}."
        deployment.concurrency_limit = CONCURRENCY_LIMIT
        show_fallbacks(deployment._parameter_openapi_schema.properties, params)
    _interrupt_at_once()
    with temporary_settings(updates={PREFECT_API_URL: url}):
        serve(*deployments)


def _interrupt_at_once() -> None:
    """Ctrl-C raises KeyboardInterrupt where the main thread is, as Python's own handler does. Under
    ``asyncio.run`` (Prefect's ``serve``) the first Ctrl-C only cancels the main task, which does not
    happen while the event loop's thread waits on another thread; in CI a Ctrl-C went unanswered for 60 s.
    asyncio keeps a handler that is not Python's default one."""
    import signal

    def interrupted(number, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)


def show_fallbacks(properties: dict[str, dict], params: Path) -> None:
    """Adds to each form field whose description names a params.yaml entry ("empty: params.yaml's
    training.max_trials") the value that entry holds now, so the form says what an empty field means."""
    settings = load_params(params)
    for field in properties.values():
        named = re.search(r"params\.yaml's ([a-z_]+)\.([a-z_]+)", field.get("description", ""))
        if named:
            value = getattr(getattr(settings, named[1]), named[2])
            field["description"] = field["description"].rstrip(".") + f" (now {value})."
