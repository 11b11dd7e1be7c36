"""Errors the whole project shares: raised by the domain, read by every layer above it."""


class ConfigurationError(ValueError):
    """A setting has a value the project cannot use; the message names the setting."""


class BundleIntegrityError(ValueError):
    """A bundle file is missing or does not match the checksum recorded for it (in its manifest, or when it was
    written): raised by the model stores and by `load_bundle`, caught as one error by whoever reads a bundle."""
