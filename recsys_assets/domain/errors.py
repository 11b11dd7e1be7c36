"""Errors the whole project shares: raised by the domain, read by every layer above it."""


class ConfigurationError(ValueError):
    """A setting has a value the project cannot use; the message names the setting."""
