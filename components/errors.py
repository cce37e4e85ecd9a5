"""Errors that describe a problem with the user's input rather than a bug in the platform."""

from collections.abc import Iterable


def listing(items: Iterable, shown: int = 5) -> str:
    """Items for an error line, the first ``shown`` of them and a count of the rest: a target with
    10,000 id-like classes must not make a 100 KB line."""
    items = [str(item) for item in items]
    if len(items) <= shown:
        return ", ".join(items)
    return f"{', '.join(items[:shown])} and {len(items) - shown:,} more"


class UserInputError(Exception):
    """A problem the user can fix: the message names it and says what to do.

    The command line turns it into one line on stderr and a non-zero exit status.
    """


class DataError(UserInputError):
    """The data is missing, unreadable, empty or unusable for the requested task."""


class ConfigurationError(UserInputError):
    """A value in ``params.yaml`` or on the command line is invalid."""


class EnvironmentProblem(UserInputError):
    """The installation holds a package version the platform cannot work with."""


class QualityGateError(Exception):
    """A stage's own check failed (for example ONNX parity); the stage's outputs are not kept."""
