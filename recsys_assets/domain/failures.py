"""Errors classified once: transient (worth a retry) or permanent (a retry meets the same error).

- **transient**: the network (connection refused or reset, timeouts), a service's 5xx answers and
  throttling (HTTP 429, `SlowDown`, `ResourceExhausted`, GitHub's rate limit), a service that could not
  be reached; anywhere in the chain of causes;
- **permanent**: permissions (HTTP 401/403, `EACCES`), a read-only or full file system (`EROFS`,
  `ENOSPC`, `EDQUOT`), other 4xx answers, an unknown URI scheme, and every validation error (bad data,
  bad configuration, a file that is not what it claims to be);
- **unknown**: anything else. The caller decides: a step leaves it to its retry policy (as before
  this classification), the training process reports it as a refusal (it is computation, not I/O).

Decided on types, status codes and error codes the client libraries expose, never on a library
being imported here: the domain stays free of cloud clients.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any, Literal

Verdict = Literal["transient", "permanent", "unknown"]

# errno values a retry cannot change: the path or the medium is wrong, not the moment.
PERMANENT_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.EFBIG,
    }
)
# A local write that meets these cannot succeed on a retry either: the folder cannot be created where
# the setting points (`/proc/x`: ENOENT), or the file system refuses the file.
PERMANENT_WRITE_ERRNOS = PERMANENT_ERRNOS | {errno.ENOENT, errno.EEXIST, errno.EINVAL, errno.ENODEV, errno.ENXIO}
# Exception class names of the cloud clients (botocore, google.api_core, requests, urllib3, grpc,
# PyGithub, MLflow) that mean "the service could not be reached or asked us to slow down".
TRANSIENT_NAMES = frozenset(
    {
        "ConnectionError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "TimeoutError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ProxyConnectionError",
        "NewConnectionError",
        "MaxRetryError",
        "ProtocolError",
        "ChunkedEncodingError",
        "IncompleteRead",
        "ServiceUnavailable",
        "InternalServerError",
        "BadGateway",
        "GatewayTimeout",
        "TooManyRequests",
        "ResourceExhausted",
        "DeadlineExceeded",
        "RetryError",
        "Aborted",
        "RateLimitExceededException",
        "SecretStoreUnavailableError",
        "WarehouseUnavailable",
    }
)
# Error codes of S3 and S3-compatible stores that mean "try again later".
TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed", "InternalError"}
)
# Phrases of pyarrow's S3/GCS file systems (their errors are plain OSError with the SDK's text).
TRANSIENT_PHRASES = ("NETWORK_CONNECTION", "curlCode", "Couldn't connect", "Connection refused", "timed out",
                     "Timeout was reached", "UNAVAILABLE", "DEADLINE_EXCEEDED", "Could not resolve host")  # fmt: skip
# Validation errors: the input or the configuration is wrong. ValueError covers JSONDecodeError,
# pydantic's ValidationError, UnicodeDecodeError, pyarrow's ArrowInvalid and ConfigurationError.
# LookupError: a missing secret, key or version.
PERMANENT_TYPES: tuple[type[BaseException], ...] = (ValueError, TypeError, LookupError, MemoryError)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def http_status(exc: BaseException) -> int | None:
    """The HTTP status a client library attached to `exc`, if any."""
    for attribute in ("status", "status_code", "code", "http_status"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _error_code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return str(getattr(exc, "error_code", "") or "")


def _own_verdict(exc: BaseException) -> Verdict:
    """The verdict `exc` carries on its own, without looking at its causes."""
    declared = getattr(exc, "verdict", None)
    if declared in ("transient", "permanent"):
        return declared
    status = http_status(exc)
    if status is not None:
        if status >= 500 or status in (408, 409, 429):  # 409: a concurrent writer, settled by the next try
            return "transient"
        if status == 403 and "rate limit" in str(exc).lower():
            return "transient"
        return "permanent"
    if _error_code(exc) in TRANSIENT_CODES:
        return "transient"
    if any(cls.__name__ in TRANSIENT_NAMES for cls in type(exc).__mro__):
        return "transient"
    if isinstance(exc, ConnectionError | TimeoutError):
        return "transient"
    if isinstance(exc, OSError):
        if exc.errno in PERMANENT_ERRNOS or isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError):
            return "permanent"
        text = str(exc)
        if any(phrase in text for phrase in TRANSIENT_PHRASES):
            return "transient"
        if isinstance(exc, ValueError):  # requests' InvalidHeader, InvalidURL: OSError and ValueError at once
            return "permanent"
        # A missing object may be a store's eventual consistency; any other I/O error is the service's.
        return "transient"
    if isinstance(exc, PERMANENT_TYPES):
        return "permanent"
    return "unknown"


def classify(exc: BaseException) -> Verdict:
    """The verdict of `exc` from its whole chain of causes, the first rule that applies:

    1. the outermost exception that declares a verdict (its raiser knew what failed);
    2. permanent when a file system refused for good anywhere in the chain (read-only, full,
       permission: `PERMANENT_ERRNOS`), whatever was handled on the way: pathlib's
       `mkdir(parents=True)` raises EROFS while handling a FileNotFoundError of its own;
    3. transient when any exception in the chain is, permanent when one is, unknown otherwise.
    """
    chain = list(causes(exc))
    for link in chain:
        declared = getattr(link, "verdict", None)
        if declared in ("transient", "permanent"):
            return declared
    if any(isinstance(link, OSError) and link.errno in PERMANENT_ERRNOS for link in chain):
        return "permanent"
    verdicts = [_own_verdict(link) for link in chain]
    if "transient" in verdicts:
        return "transient"
    return "permanent" if "permanent" in verdicts else "unknown"


def local_write_verdict(exc: OSError) -> Verdict:
    """The verdict of `exc`, met writing to a local file system (no eventual consistency to wait for)."""
    return "permanent" if exc.errno in PERMANENT_WRITE_ERRNOS else classify(exc)


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line (the message's lines joined), as a run's last line shows it."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
