"""Errors that the command line reports as one line, exit code 2."""


class UsageError(ValueError):
    """A bad flag, name or path given by the user."""


class DataError(UsageError):
    """Data that is missing or unreadable."""
