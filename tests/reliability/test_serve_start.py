"""`dlautoml serve` refuses a busy port, a bad port and an unwritable request log in one line, before
writing anything, and a refused second server leaves the running one's endpoint file alone."""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from components.errors import UserInputError
from components.networking import check_can_listen
from components.serving.request_log import check_request_log, release_endpoint
from tests.test_cli import CLI


def test_a_busy_port_is_refused_before_anything_is_written():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserInputError, match=f"port {port} on 127.0.0.1 is in use"):
            check_can_listen("127.0.0.1", port)
    check_can_listen("127.0.0.1", port)  # free again
    with pytest.raises(UserInputError, match="cannot listen on 203.0.113.7"):
        check_can_listen("203.0.113.7", port)  # an address this machine does not have


def test_an_unwritable_request_log_is_named(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserInputError, match="request log .* cannot be written"):
        check_request_log(blocker / "requests.db")
    check_request_log(tmp_path / "serving" / "requests.db")
    assert (tmp_path / "serving" / "requests.db").is_file()


def test_a_server_removes_only_its_own_endpoint_file(tmp_path: Path):
    endpoint = tmp_path / "endpoint.json"
    endpoint.write_text(json.dumps({"url": "http://127.0.0.1:8000", "pid": os.getpid() + 1}))
    release_endpoint(endpoint)
    assert endpoint.is_file()  # another server's
    endpoint.write_text(json.dumps({"url": "http://127.0.0.1:8000", "pid": os.getpid()}))
    release_endpoint(endpoint)
    assert not endpoint.exists()


def test_serve_with_a_port_out_of_range_fails_in_one_line(tmp_path: Path):
    done = subprocess.run([*CLI, "serve", "--port", "70000"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "--port" in done.stderr and "65535" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "serving").exists()
