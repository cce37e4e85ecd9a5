"""Small helpers for the local servers the platform starts."""

from __future__ import annotations

import errno
import socket


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
