"""Training images are accepted only when pinned to a commit-hash tag or a digest, parsed as a registry would."""

import pytest

from recsys_assets.resources.image_ref import UnpinnedImageError, parse_image_ref, require_pinned_image

SHA40 = "3f2c1ab9d0e4" + "0" * 28
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "reference",
    [
        f"europe-west1-docker.pkg.dev/proj/repo/recsys:{SHA40}",
        "europe-west1-docker.pkg.dev/proj/repo/recsys:3f2c1ab",
        "localhost:5000/recsys:3f2c1ab",
        "localhost:5000/team/recsys:sha-3f2c1ab",
        f"recsys@{DIGEST}",
        f"localhost:5000/recsys@{DIGEST}",
        f"ghcr.io/org/recsys:latest@{DIGEST}",  # the digest pins it whatever the tag says
        "recsys:" + "1234567890" * 4,  # an all-digit tag is a commit hash only at full length
    ],
)
def test_pinned_images_are_accepted(reference):
    assert require_pinned_image(reference) == reference


@pytest.mark.parametrize(
    "reference, reason",
    [
        ("recsys", "no tag"),
        ("localhost:5000/recsys", "no tag"),  # the port is not a tag
        ("europe-west1-docker.pkg.dev/proj/repo/recsys:latest", "':latest' moves"),
        ("recsys:main", "not a commit hash"),
        ("recsys:stable", "not a commit hash"),
        ("recsys:prod", "not a commit hash"),
        ("recsys:dev", "not a commit hash"),
        ("recsys:release", "not a commit hash"),
        ("recsys:v1", "not a commit hash"),
        ("recsys:1.2.3", "not a commit hash"),
        ("recsys:v1.2.3-rc1", "not a commit hash"),
        ("recsys:abc12", "not a commit hash"),  # too short to be a commit
        ("recsys:3F2C1AB", "not a commit hash"),  # git prints lowercase
        ("recsys:20261129", "all digits"),
        ("recsys:" + "a" * 41, "not a commit hash"),
        ("recsys@sha256:abc", "malformed digest"),
        ("Recsys:3f2c1ab", "invalid repository name"),
        ("localhost:5000/recsys:", "invalid tag"),
    ],
)
def test_unpinned_images_are_refused(reference, reason):
    with pytest.raises(UnpinnedImageError) as refused:
        require_pinned_image(reference)
    message = str(refused.value)
    assert reason in message and repr(reference) in message
    if "not pinned" in message:
        assert "commit-hash tag" in message and "@sha256:" in message


def test_registry_port_parses_as_registry():
    ref = parse_image_ref("localhost:5000/team/recsys:3f2c1ab")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("localhost:5000", "team/recsys", "3f2c1ab", None)
    assert str(ref) == "localhost:5000/team/recsys:3f2c1ab"
    assert parse_image_ref("team/recsys:3f2c1ab").registry is None  # 'team' has no dot, port or 'localhost'
