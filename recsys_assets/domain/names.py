"""Names that become folders, object keys or branch names: validated before they are used."""

from __future__ import annotations

import re

from recsys_assets.domain.errors import ConfigurationError

# Names and path segments that become folders, object keys or branch names: no separators, no
# leading dot (so never `..`), nothing a shell or URL would reinterpret.
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def is_safe_name(value: str) -> bool:
    """Whether `value` is one safe path segment (see `safe_name`)."""
    return bool(_SAFE_SEGMENT.fullmatch(value)) and ".." not in value


def safe_name(value: str, setting: str) -> str:
    """`value` when it is one safe path segment, else a ConfigurationError naming `setting`."""
    if not is_safe_name(value):
        raise ConfigurationError(
            f"{setting}={value!r} is not a safe name: use letters, digits, '_', '-' and '.', "
            "starting with a letter, digit or '_' (no '/', no '..')"
        )
    return value


def safe_relative_path(value: str, setting: str) -> str:
    """`value` when it is a relative path of safe segments (e.g. models/jobs-als.json), else a ConfigurationError."""
    segments = value.split("/")
    if not value or any(not _SAFE_SEGMENT.fullmatch(s) or ".." in s for s in segments):
        raise ConfigurationError(
            f"{setting}={value!r} is not a safe relative path: use '/'-separated names of letters, digits, "
            "'_', '-' and '.', with no leading '/', no '..' and no empty segment"
        )
    return value
