"""Pinned container image references: the image a model was trained on must name one exact build.

A tag such as `latest`, `main`, `v1` or `1.2.3` can be moved to another image after the fact, so a
bundle manifest that records it does not say what actually ran. Two forms are accepted:

* a digest, `name@sha256:<64 lowercase hex>` (a tag may precede it; the digest wins), and
* a commit-hash tag: 7 to 40 lowercase hex characters, optionally prefixed `sha-` (the form
  `docker/metadata-action` writes for `type=sha`), e.g. `.../recsys:3f2c1ab` or `.../recsys:sha-3f2c1ab`.

An all-digit tag shorter than 40 characters is refused even though it is valid hex: `20261129` or
`1234567` is far more likely a date or build number than an abbreviated commit. CI should tag with
the full 40-character `git rev-parse HEAD`, which never hits that rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Grammar of github.com/distribution/reference, reduced to what a validator needs.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN = re.compile(
    r"^(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_COMMIT_TAG = re.compile(r"^(?:sha-)?(?P<hex>[0-9a-f]{7,40})$")

ACCEPTED = (
    "a commit-hash tag (7-40 lowercase hex characters, optionally prefixed 'sha-', "
    "e.g. 'europe-west1-docker.pkg.dev/project/repo/recsys:3f2c1ab9') "
    "or a digest ('<name>@sha256:<64 hex characters>')"
)


class UnpinnedImageError(ValueError):
    """The image reference does not identify one immutable build."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference; `registry` includes any port."""

    registry: str | None
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}" if self.registry else self.repository
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_image_ref(reference: str) -> ImageRef:
    """Split `reference` into registry, repository, tag and digest.

    Args:
        reference: An image reference such as `localhost:5000/team/recsys:3f2c1ab`.

    Raises:
        UnpinnedImageError: If `reference` is not a syntactically valid image reference.
    """
    ref = reference.strip()
    if not ref or ref != reference:
        raise UnpinnedImageError(f"image reference {reference!r} is empty or has surrounding whitespace")
    name, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise UnpinnedImageError(
            f"image reference {reference!r} has a malformed digest {digest!r}: expected 'sha256:' and 64 lowercase hex characters"
        )
    # The tag separator is the last ':' after the last '/', so a registry port is never read as a tag.
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise UnpinnedImageError(f"image reference {reference!r} has an invalid tag {tag!r}")
    registry = None
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN.match(first):
            raise UnpinnedImageError(f"image reference {reference!r} has an invalid registry {first!r}")
        registry, name = first, rest
    if not _NAME.match(name):
        raise UnpinnedImageError(
            f"image reference {reference!r} has an invalid repository name {name!r} "
            "(lowercase letters, digits and single separators only)"
        )
    return ImageRef(registry=registry, repository=name, tag=tag, digest=digest or None)


def require_pinned_image(reference: str) -> str:
    """Return `reference` unchanged if it names one immutable build, else raise.

    Args:
        reference: The image reference to check.

    Returns:
        The same reference, so the call can sit inline in a validator.

    Raises:
        UnpinnedImageError: With the reference, what is wrong with it and what is accepted.
    """
    ref = parse_image_ref(reference)
    if ref.digest:
        return reference
    if ref.tag is None:
        reason = "it has no tag, which means ':latest'"
    elif ref.tag == "latest":
        reason = "':latest' moves with every push"
    else:
        match = _COMMIT_TAG.match(ref.tag)
        if match is None:
            reason = f"tag {ref.tag!r} is not a commit hash, and named or version tags can be moved to another image"
        elif match["hex"].isdigit() and len(match["hex"]) < 40:
            reason = (
                f"tag {ref.tag!r} is all digits, which reads as a date or build number; "
                "tag with the full 40-character commit hash instead"
            )
        else:
            return reference
    raise UnpinnedImageError(f"image {reference!r} is not pinned: {reason}. Use {ACCEPTED}.")
