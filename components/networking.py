"""Small helpers for the local servers the platform starts."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NNI_PRELOAD = Path(__file__).resolve().parent / "search" / "bind_host.js"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_can_listen(host: str, port: int) -> None:
    """Raises :class:`UserInputError` naming the problem when a server could not listen on
    ``host:port`` (taken by another process, an address this machine lacks), before anything is
    written for it."""
    from components.errors import UserInputError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT does not count
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserInputError(f"port {port} on {host} is in use (another server?): choose another with --port") from error
            raise UserInputError(f"cannot listen on {host}:{port} ({error.strerror}): check --host and --port") from error


def nni_environment(
    host: str = "127.0.0.1", environment: dict[str, str] | None = None, parent: int | None = None
) -> dict[str, str]:
    """The environment under which NNI's manager (a Node.js process) listens on ``host`` only: NNI 3.0
    binds its REST server and web UI to every interface and has no option for it, so a preloaded
    script (``components/search/bind_host.js``) gives ``listen`` the address. With ``parent`` (a
    process id), the manager and everything it started end when that process is gone."""
    environment = dict(os.environ if environment is None else environment)
    preload = f'--require "{NNI_PRELOAD}"'
    if preload not in environment.get("NODE_OPTIONS", ""):
        environment["NODE_OPTIONS"] = f"{environment.get('NODE_OPTIONS', '')} {preload}".strip()
    environment["DLAUTOML_NNI_HOST"] = host
    environment["DLAUTOML_NNI_PARENT_PID"] = str(parent or "")
    return environment


@contextmanager
def nni_bound_to(host: str = "127.0.0.1") -> Iterator[None]:
    """Sets :func:`nni_environment` in this process while NNI starts its manager, which inherits it
    and ends with this process."""
    names = ("NODE_OPTIONS", "DLAUTOML_NNI_HOST", "DLAUTOML_NNI_PARENT_PID")
    saved = {name: os.environ.get(name) for name in names}
    wanted = nni_environment(host, parent=os.getpid())
    os.environ.update({name: wanted[name] for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
