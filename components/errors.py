"""Errors that describe a problem with the user's input rather than a bug in the platform."""


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
