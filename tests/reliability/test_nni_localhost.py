"""NNI's manager listens on 127.0.0.1 only (issue case 10): NNI 3.0 binds its REST server and web UI to
every interface, so any machine on the network could read and steer a running search."""

from pathlib import Path

import psutil

from components.search.nni_search import run_search
from tests.components.test_search import request, search_setup


def _listening_addresses() -> set[str]:
    """The addresses NNI's manager (a Node.js child of this process) listens on."""
    managers = [child for child in psutil.Process().children(recursive=True) if "node" in child.name()]
    return {
        connection.laddr.ip
        for manager in managers
        for connection in manager.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    }


def test_the_search_manager_listens_on_localhost_only(tmp_path: Path):
    search_setup(tmp_path)
    seen: list[set[str]] = []

    def progress(message: str) -> None:
        if "web UI at" in message:  # the manager is up
            seen.append(_listening_addresses())

    result = run_search(request(tmp_path, strategy="random", max_trials=1, concurrency=1, progress=progress))
    assert result.trials[0].status == "SUCCEEDED"  # trials still reach the manager
    assert seen == [{"127.0.0.1"}]
