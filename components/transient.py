"""Which failures are worth trying again: a server that could not be reached, timed out or kept
answering that it was busy, and a SQLite store that another writer briefly locked.

Everything else (bad input, a bug, a model that cannot learn) fails the same way a second time, so a
retry would only delay the error. The clients the platform uses wrap the cause in their own exception
(MLflow raises ``MlflowException`` from the ``requests`` error), so the whole chain is read.
"""

from __future__ import annotations

import os

import requests

from components.errors import UserInputError

# Per request to a tracking server, before the stage itself is retried. MLflow's own defaults (seven
# attempts, two minutes each) keep a stage waiting a quarter of an hour on a dead server.
REQUEST_SETTINGS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}
_TRANSIENT = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.RetryError,  # a server that answered 429 or 5xx to every attempt
)


def bound_server_requests() -> None:
    """Sets the tracking client's timeout and attempts per request, unless the environment sets them."""
    for name, value in REQUEST_SETTINGS.items():
        os.environ.setdefault(name, value)


def causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    while error is not None and all(error is not seen for seen in chain):
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def is_transient(error: BaseException) -> bool:
    """True when ``error`` came from a server or store that may well answer a moment later. Bad input
    never is, whatever it was raised from (a busy workspace's lock times out, for one)."""
    if isinstance(error, UserInputError):
        return False
    for cause in causes(error):
        if type(cause).__name__ == "TaskRunTimeoutError":  # a stage over its own time limit: not the server's
            return False
        if isinstance(cause, _TRANSIENT) or _is_httpx_transport_error(cause):
            return True
        if "database is locked" in str(cause).lower():
            return True
    return False


def _is_httpx_transport_error(error: BaseException) -> bool:
    """Prefect's client speaks httpx; imported only when one of its errors is in hand."""
    if not type(error).__module__.startswith("httpx"):
        return False
    import httpx

    return isinstance(error, httpx.TransportError)
