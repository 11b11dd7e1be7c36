"""The secret scrubber: known values in every quoted form, passwords in URLs, exceptions cleaned in place."""

from __future__ import annotations

import errno
import traceback

import pytest

from recsys_assets.domain.failures import classify, one_line
from recsys_assets.domain.redaction import REDACTED, ScrubbedError, remember_secret, scrub, scrub_exception

SECRET = "tok-0123456789-scrub-me"


def test_a_known_value_is_replaced_as_read_stripped_repr_escaped_and_url_encoded():
    remember_secret(SECRET + "\n")
    assert scrub(f"header value: 'token {SECRET}\\n'") == f"header value: 'token {REDACTED}'"
    assert scrub(f"Authorization: token {SECRET}") == f"Authorization: token {REDACTED}"
    remember_secret("p@ss word/with+odd")
    assert scrub("https://x/?k=p%40ss%20word%2Fwith%2Bodd") == f"https://x/?k={REDACTED}"


def test_each_line_of_a_multi_line_value_is_a_secret_of_its_own():
    remember_secret("first-line-of-key\r\nsecond-line-of-key")
    assert scrub("... second-line-of-key ...") == f"... {REDACTED} ..."


def test_short_values_are_not_scrubbed_everywhere():
    remember_secret("ab")
    assert scrub("about a cab") == "about a cab"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:password@host:5000/api", f"http://user:{REDACTED}@host:5000/api"),
        ("postgresql://dagster:pw%2F1@db/dagster", f"postgresql://dagster:{REDACTED}@db/dagster"),
        ("API request to https://a:b@h failed", f"API request to https://a:{REDACTED}@h failed"),
        ("no credentials in http://host:5000/x", "no credentials in http://host:5000/x"),
        ("an address: ops@example.com", "an address: ops@example.com"),
    ],
)
def test_passwords_in_urls_are_scrubbed(text, expected):
    assert scrub(text) == expected


def test_an_exception_chain_is_cleaned_in_place_keeping_its_types():
    remember_secret(SECRET)
    try:
        try:
            raise ConnectionError(f"refused for {SECRET}")
        except ConnectionError as inner:
            raise ValueError(f"could not use http://u:{SECRET}x@h") from inner
    except ValueError as exc:
        raised, cleaned = exc, scrub_exception(exc)
    assert cleaned is raised and isinstance(cleaned.__cause__, ConnectionError)
    text = "".join(traceback.format_exception(cleaned))
    assert SECRET not in text and REDACTED in text


def test_an_exception_that_renders_a_secret_from_elsewhere_is_replaced():
    remember_secret(SECRET)

    class Opaque(Exception):
        def __init__(self, payload: object):
            super().__init__()
            self.payload = payload

        def __str__(self) -> str:
            return f"payload {self.payload}"

    cleaned = scrub_exception(Opaque(object.__new__(type("Holder", (), {"__repr__": lambda _: SECRET}))))
    assert isinstance(cleaned, ScrubbedError) and str(cleaned) == f"Opaque: payload {REDACTED}"


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "transient"),
        (TimeoutError(), "transient"),
        (OSError("AWS Error NETWORK_CONNECTION during GetObject operation: curlCode: 7"), "transient"),
        (PermissionError(errno.EACCES, "Permission denied"), "permanent"),
        (OSError(errno.EROFS, "Read-only file system"), "permanent"),
        (OSError(errno.ENOSPC, "No space left on device"), "permanent"),
        (ValueError("Unrecognized filesystem type in URI: ftp://x"), "permanent"),
        (LookupError("secret 'x' not found"), "permanent"),
        (RuntimeError("something else"), "unknown"),
    ],
)
def test_errors_are_classified_once(error, verdict):
    assert classify(error) == verdict


def test_http_statuses_decide_between_throttling_and_refusal():
    class HttpError(Exception):
        def __init__(self, status: int):
            super().__init__(f"HTTP {status}")
            self.status = status

    assert [classify(HttpError(s)) for s in (503, 429, 409, 401, 403, 404, 422)] == [
        "transient", "transient", "transient", "permanent", "permanent", "permanent", "permanent"
    ]  # fmt: skip


def test_one_line_joins_the_message():
    assert one_line(ValueError("first\n  second")) == "ValueError: first second"


def test_a_dagster_failure_keeps_its_metadata_records_and_retry_decision():
    import dagster as dg

    remember_secret(SECRET)
    failure = dg.Failure(description=f"blocked {SECRET}", metadata={"released": False}, allow_retries=False)
    cleaned = scrub_exception(failure)
    assert cleaned is failure and failure.description == f"blocked {REDACTED}"
    assert failure.metadata["released"] == dg.MetadataValue.bool(False) and failure.allow_retries is False
