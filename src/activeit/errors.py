"""Errors a user can cause: the CLI prints their one-line message and exits with code 2."""


class ActiveitError(Exception):
    """Base class of every user-facing error (bad file, bad config, missing model)."""


class TaskFormatError(ActiveitError):
    """A task file or split file is malformed."""


class ConfigError(ActiveitError):
    """A config file, key or value is invalid."""


class ModelNotFoundError(ActiveitError):
    """A model name does not resolve to anything loadable offline."""


class RunStateError(ActiveitError):
    """A run directory cannot be resumed as asked."""
