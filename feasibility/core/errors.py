"""The one family of errors the project raises: input a user can fix, or a run
the machine could not finish; the CLI prints either on one line."""


class FeasibilityError(Exception):
    """Base class: the CLI prints the message on one line and exits with status 2."""


class InputError(FeasibilityError, ValueError):
    """An instance, file, option or specification that cannot be used as given."""


class WorkerLost(FeasibilityError):
    """A worker process died under a run (most often killed by the kernel for memory)."""
