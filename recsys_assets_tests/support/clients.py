"""The project's own clients pointed at the local stand-ins (S3 model store, GitHub release publisher)."""

from __future__ import annotations

from pathlib import Path

from recsys_assets.resources.github import GitHubReleasePublisher
from recsys_assets.resources.s3_model_store import S3ModelStore
from recsys_assets.resources.secrets import LocalSecretStore
from recsys_assets_tests.support.standins.github import TOKEN, GitHubStandIn
from recsys_assets_tests.support.standins.s3 import S3StandIn

PREFIX = "recsys"


def secrets_dir(tmp_path: Path, key_id: str = "testing-key-id", secret_key: str = "testing-secret-key") -> str:
    folder = tmp_path / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aws-access-key-id").write_text(key_id)
    (folder / "aws-secret-access-key").write_text(secret_key)
    return str(folder)


def make_store(s3: S3StandIn, tmp_path: Path, cls: type[S3ModelStore] = S3ModelStore, **fields) -> S3ModelStore:
    if "secrets" not in fields:
        fields["secrets"] = LocalSecretStore(directory=secrets_dir(tmp_path), env_prefix="RECSYS_TEST_UNSET_")
    defaults = {"bucket": s3.bucket, "prefix": PREFIX, "region_name": s3.region, "endpoint_url": s3.endpoint_url}
    return cls(**{**defaults, **fields})


def secrets_with_token(tmp_path: Path, token: str = TOKEN) -> LocalSecretStore:
    folder = tmp_path / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "github-token").write_text(token)
    return LocalSecretStore(directory=str(folder), env_prefix="RECSYS_TEST_UNSET_")


def publisher(fake: GitHubStandIn, tmp_path: Path, **fields) -> GitHubReleasePublisher:
    if "secrets" not in fields:
        fields["secrets"] = secrets_with_token(tmp_path)
    defaults = {
        "repository": fake.repository,
        "base_url": fake.base_url,
        "max_retries": 0,
        "seconds_between_requests": 0,
        "seconds_between_writes": 0,
    }
    return GitHubReleasePublisher(**{**defaults, **fields})
