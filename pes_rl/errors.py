"""Errors the library raises on purpose; the CLI turns them into one line."""

import errno


class ConfigError(ValueError):
    """Bad user input: an unknown name, an out-of-range hyperparameter."""


class MissingDependencyError(ConfigError):
    """An optional dependency needed for the requested feature is absent."""


class NonFiniteError(RuntimeError):
    """An environment produced NaN or inf; training stops before using it."""


class DiskFullError(OSError):
    """No space left for a file of a run: one line naming the file and the
    space left; what was written before stays intact."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror
