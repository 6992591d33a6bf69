"""Errors the library raises on purpose; the CLI turns them into one line."""


class ConfigError(ValueError):
    """Bad user input: an unknown name, an out-of-range hyperparameter."""


class MissingDependencyError(ConfigError):
    """An optional dependency needed for the requested feature is absent."""


class NonFiniteError(RuntimeError):
    """An environment produced NaN or inf; training stops before using it."""
