"""The one family of errors the project raises for input a user can fix."""


class FeasibilityError(Exception):
    """Base class: the CLI prints the message on one line and exits with status 2."""


class InputError(FeasibilityError, ValueError):
    """An instance, file, option or specification that cannot be used as given."""
