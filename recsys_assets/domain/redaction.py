"""Secrets never in error text: the one place that scrubs what leaves the process as an error or a log line.

Two things are replaced by `[redacted]`:

- **known secret values**: every value read through the secrets resource remembers itself here when
  it is read (`resources.secrets.Secret`), in every form an error message may quote it: as read, stripped
  of surrounding whitespace, line by line, as Python's `repr` escapes it (`'token abc\\n'`) and
  URL-encoded;
- **credentials in URLs**: the password of `scheme://user:password@host` (an MLflow or database URI),
  whether or not it was ever read as a secret.

Every path that turns an error into text a person or a store keeps goes through `scrub` or
`scrub_exception`: the CLI's output (`scrubbed_output`), every step's exception before Dagster
serialises it into the event log, the run index and the compute log (`recsys_assets.step_errors`),
sensor tick errors and alert text. New error paths (a service, another command) use the same two
functions rather than their own redaction.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TextIO
from urllib.parse import quote

REDACTED = "[redacted]"

# Values shorter than this are not secrets worth the name, and replacing them everywhere would
# garble ordinary text (a two-letter "secret" would blank out every word containing it).
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secret_forms: set[str] = set()
_ordered: tuple[str, ...] = ()  # longest first, so a value is replaced before any part of it

# scheme://user:password@ — the password part; the user name (not secret on its own) is kept.
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'\"<>]*):([^/\s@'\"<>]+)@")


def _forms(value: str) -> set[str]:
    """Every spelling of `value` an error message is known to quote."""
    stripped = value.strip()
    forms = {value, stripped, repr(value)[1:-1], repr(stripped)[1:-1], quote(stripped, safe="")}
    forms.update(line.strip() for line in value.splitlines())
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def remember_secret(value: str) -> None:
    """Scrub `value` (in every form `_forms` lists) from every text `scrub` sees from now on, in this process."""
    global _ordered
    forms = _forms(value)
    if not forms or forms <= _secret_forms:
        return
    with _lock:
        _secret_forms.update(forms)
        _ordered = tuple(sorted(_secret_forms, key=len, reverse=True))


def scrub(text: str) -> str:
    """`text` with every known secret value and every password in a URL replaced by `[redacted]`."""
    for form in _ordered:
        if form in text:
            text = text.replace(form, REDACTED)
    return _URL_CREDENTIALS.sub(rf"\1:{REDACTED}@", text)


def is_clean(text: str) -> bool:
    return scrub(text) == text


class ScrubbedError(RuntimeError):
    """Stands in for an exception whose text held a secret and could not be cleaned in place."""


# Attributes that exception classes of the libraries used here (OSError, requests, botocore, PyGithub,
# Dagster's Failure, pydantic) render into their message.
_TEXT_ATTRIBUTES = ("strerror", "filename", "filename2", "msg", "message", "description", "reason", "text")


def _scrub_in_place(exc: BaseException) -> bool:
    """Scrub `exc`'s own arguments and text attributes; whether its message is clean afterwards."""
    with contextlib.suppress(Exception):
        exc.args = tuple(_scrubbed_value(arg) for arg in exc.args)
    names = set(_TEXT_ATTRIBUTES) | set(getattr(exc, "__dict__", {}))
    for name in names:
        try:
            value = getattr(exc, name)
        except Exception:
            continue
        if name.startswith("__"):
            continue
        with contextlib.suppress(Exception):
            cleaned = _scrubbed_value(value)
            if cleaned is not value and cleaned != value:
                setattr(exc, name, cleaned)
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes[:] = [scrub(note) if isinstance(note, str) else note for note in notes]
    try:
        return is_clean(str(exc))
    except Exception:
        return False


def _scrubbed_value(value: Any) -> Any:
    """`value` scrubbed when it is text or a plain dict, list or tuple of them; anything else as it is.

    Exact types only: records that subclass tuple (Dagster's metadata values) are left alone.
    """
    kind = type(value)
    if issubclass(kind, str):
        return scrub(value)
    if kind is dict:
        return {key: _scrubbed_value(item) for key, item in value.items()}
    if kind is list:
        return [_scrubbed_value(item) for item in value]
    if kind is tuple:
        return tuple(_scrubbed_value(item) for item in value)
    return value


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def scrub_exception(exc: BaseException) -> BaseException:
    """`exc` with no secret left in its message or in any exception it was raised from.

    Cleaned in place where the exception allows it (its arguments and text attributes), so its type
    (what the retry policy and callers decide on) and traceback stay. An exception that still renders
    a secret (its `__str__` builds the text from data it keeps elsewhere) is replaced by a
    `ScrubbedError` carrying its type and scrubbed text; inside the chain, such a link is replaced the
    same way. Returns the exception to raise: `exc` itself, or its replacement.
    """
    for link in list(_chain(exc)):
        for attribute in ("__cause__", "__context__"):
            parent_of = getattr(link, attribute)
            if parent_of is not None and not _scrub_in_place(parent_of):
                setattr(link, attribute, _replacement(parent_of))
    if _scrub_in_place(exc):
        return exc
    replacement = _replacement(exc)
    replacement.__cause__ = exc.__cause__
    replacement.__suppress_context__ = True
    return replacement.with_traceback(exc.__traceback__)


def _replacement(exc: BaseException) -> ScrubbedError:
    try:
        text = str(exc)
    except Exception:
        text = "(message unavailable)"
    replacement = ScrubbedError(f"{type(exc).__name__}: {scrub(text)}")
    replacement.__suppress_context__ = True
    return replacement


class _ScrubbingStream(io.TextIOBase):
    """A text stream that scrubs everything written to it before passing it on."""

    def __init__(self, target: TextIO):
        self._target = target

    def write(self, text: str) -> int:
        self._target.write(scrub(text))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextlib.contextmanager
def scrubbed_output() -> Iterator[None]:
    """While open, everything this process prints to stdout and stderr (Dagster's console log included) is scrubbed."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ScrubbingStream(saved[0]), _ScrubbingStream(saved[1])  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
