"""Run-time secrets: an interface with a local backend (environment or files outside the repo)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from pydantic import Field

from recsys_assets.domain.redaction import remember_secret
from recsys_assets.settings import environment_variable


class SecretNotFoundError(LookupError):
    """The named secret (or version) does not exist. Carries the name, never a value."""


class SecretAccessDeniedError(PermissionError):
    """The caller may not read the named secret. Carries the name, never a value."""


@dataclass(frozen=True)
class Secret:
    """A secret value and the exact version it was read from; the value never prints.

    The value is stripped of surrounding whitespace (`echo $TOKEN | gcloud secrets versions add
    --data-file=-` stores a trailing newline, which no header or key may carry), and it is remembered
    for `redaction.scrub` as read and as stripped, so no error text can quote it.
    """

    name: str
    version: str
    value: str = field(repr=False)

    def __post_init__(self) -> None:
        remember_secret(self.value)
        object.__setattr__(self, "value", self.value.strip())

    def __str__(self) -> str:
        return f"Secret({self.name}@{self.version})"

    def reference(self) -> str:
        """What may be recorded about the secret: its name and resolved version."""
        return f"{self.name}@{self.version}"


class SecretStore(dg.ConfigurableResource, ABC):
    """Source of credentials read at run time, by secret name and version."""

    @abstractmethod
    def access(self, name: str, version: str = "latest") -> Secret:
        """Read one secret version; raises SecretNotFoundError or SecretAccessDeniedError."""


class LocalSecretStore(SecretStore):
    """Secrets from `RECSYS_SECRET_<NAME>` environment variables or files in a folder outside the repo."""

    directory: str | None = Field(
        default=None, description="Folder holding one file per secret (file name = secret name)."
    )
    env_prefix: str = Field(default="RECSYS_SECRET_", description="Prefix of secret environment variables.")

    def access(self, name: str, version: str = "latest") -> Secret:
        env_name = self.env_prefix + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        value = environment_variable(env_name)
        if value is not None:
            return Secret(name=name, version=f"env:{env_name}", value=value)
        if self.directory:
            path = Path(self.directory) / name
            if path.is_file():
                return Secret(name=name, version=f"file:{path}", value=path.read_text())
        raise SecretNotFoundError(
            f"secret {name!r} not found: set {env_name} or put a file named {name!r} in "
            f"{self.directory or '(no secrets directory configured)'}"
        )
