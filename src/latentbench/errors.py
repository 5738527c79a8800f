"""The exceptions latentbench raises for input it cannot use.

Every error that reaches a user derives from :class:`LatentbenchError`; the command
line turns it into a one-line message and exit code 2 instead of a traceback.
"""


class LatentbenchError(Exception):
    """Base class of every error caused by the user's input or environment."""


class DataError(LatentbenchError, ValueError):
    """A data file or data set is missing, malformed or fails verification."""


class IDXFormatError(DataError):
    """A file is not a well-formed IDX file of the kind expected."""


class ChecksumError(DataError):
    """A file's SHA-256 differs from the published one."""


class ConfigError(LatentbenchError, ValueError):
    """A configuration file or option holds a value latentbench cannot use."""


class CheckpointError(LatentbenchError):
    """A checkpoint cannot be read safely or does not fit the model."""


class RunFolderError(LatentbenchError):
    """A run folder cannot be written, or holds another run's results."""


class TrainingDivergedError(LatentbenchError):
    """Training produced a NaN or infinite loss."""


class MissingDependencyError(LatentbenchError, ImportError):
    """An optional package a feature needs is not installed; the message names it."""


class RunInterrupted(KeyboardInterrupt):
    """A signal (Ctrl-C or SIGTERM) stopped training; the run can be resumed.

    Attributes
    ----------
    signal_number : int
    """

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"interrupted by signal {signal_number}")
        self.signal_number = signal_number
