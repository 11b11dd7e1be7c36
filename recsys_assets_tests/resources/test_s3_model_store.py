"""S3ModelStore keeps the all-or-nothing, write-once bundle protocol on a real S3 API (moto)."""

from __future__ import annotations

import base64
import hashlib
import json
import traceback

import pytest

from recsys_assets.domain.errors import BundleIntegrityError
from recsys_assets.resources import build_resources
from recsys_assets.resources.model_store import BundleExistsError, ModelStoreError, sha256
from recsys_assets.resources.s3_model_store import S3ModelStore
from recsys_assets.resources.secrets import LocalSecretStore, SecretNotFoundError
from recsys_assets_tests.support.clients import PREFIX, make_store, secrets_dir

FILES = {"item_factors.npy": b"\x93NUMPY factors", "model_card.md": b"# card", "metrics.png": b"\x89PNG"}


@pytest.mark.slow
def test_publish_round_trip(s3_standin, tmp_path):
    store = make_store(s3_standin, tmp_path)
    uri = store.publish_bundle("m", "v1", FILES, {"version": "v1"})

    assert uri == f"s3://{s3_standin.bucket}/{PREFIX}/models/m/v1/"
    assert s3_standin.keys() == sorted(f"{PREFIX}/models/m/v1/{name}" for name in [*FILES, "manifest.json"])
    manifest = json.loads(s3_standin.read(f"{PREFIX}/models/m/v1/manifest.json"))
    assert manifest["version"] == "v1" and manifest["files"] == {n: sha256(d) for n, d in FILES.items()}
    assert store.read_file("m", "v1", "model_card.md") == b"# card"
    assert store.list_versions("m") == ["v1"]


def test_uploads_carry_a_sha256_the_store_can_verify(s3_standin, tmp_path):
    # moto accepts but does not check x-amz-checksum-sha256 (AWS does), so look at what went on the wire.
    store = make_store(s3_standin, tmp_path)
    sent: list[tuple[str, str | None]] = []

    def capture(request, **_):
        header = request.headers.get("x-amz-checksum-sha256")
        sent.append((request.url.rsplit("/", 1)[-1], header.decode() if isinstance(header, bytes) else header))

    store._s3().meta.events.register("before-send.s3.PutObject", capture)
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    expected = {name: base64.b64encode(hashlib.sha256(data).digest()).decode() for name, data in FILES.items()}
    assert {name: header for name, header in sent if name in FILES} == expected
    assert dict(sent)["manifest.json"]  # the conditional put too


def test_an_existing_version_is_never_overwritten(s3_standin, tmp_path):
    store = make_store(s3_standin, tmp_path)
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    manifest_before = s3_standin.read(f"{PREFIX}/models/m/v1/manifest.json")

    with pytest.raises(BundleExistsError, match="m/v1 already exists"):
        store.publish_bundle("m", "v1", {"model_card.md": b"other"}, {"version": "v1"})
    # The conditional put itself refuses, as when two runs race past the existence check.
    assert store.put_object_if_absent("models/m/v1/manifest.json", b"{}") is False
    assert s3_standin.read(f"{PREFIX}/models/m/v1/manifest.json") == manifest_before
    assert store.read_file("m", "v1", "model_card.md") == b"# card"
    assert store.put_object_if_absent("models/m/v2/manifest.json", b"{}") is True


class FailingStore(S3ModelStore):
    """Dies on the second file, as a crash or a lost connection midway through an upload would."""

    def put_object(self, key: str, data: bytes) -> None:
        if key.endswith("model_card.md"):
            raise ModelStoreError("connection reset")
        super().put_object(key, data)


@pytest.mark.slow
def test_failure_midway_leaves_nothing_behind_and_a_retry_completes(s3_standin, tmp_path):
    with pytest.raises(ModelStoreError):
        make_store(s3_standin, tmp_path, FailingStore).publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert s3_standin.keys() == []  # no manifest, and the file uploaded before the failure deleted again

    store = make_store(s3_standin, tmp_path)
    assert store.read_manifest("m", "v1") is None and store.list_versions("m") == []
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert store.list_versions("m") == ["v1"]


class CorruptingStore(S3ModelStore):
    """Reads back different bytes than were written, as a broken proxy or cache would."""

    def get_object(self, key: str) -> bytes | None:
        data = super().get_object(key)
        return data[:-1] + b"!" if data and not key.endswith("manifest.json") else data


@pytest.mark.slow
def test_checksum_mismatch_stops_before_the_manifest(s3_standin, tmp_path):
    with pytest.raises(BundleIntegrityError, match=f"checksum mismatch after uploading s3://{s3_standin.bucket}/"):
        make_store(s3_standin, tmp_path, CorruptingStore).publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert not any(key.endswith("manifest.json") for key in s3_standin.keys())


def test_champion_pointer_only_names_complete_bundles(s3_standin, tmp_path):
    store = make_store(s3_standin, tmp_path)
    assert store.read_champion("m") is None
    with pytest.raises(FileNotFoundError):
        store.write_champion("m", "v9")
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    store.write_champion("m", "v1", release="https://github.example/pr/1")
    pointer = json.loads(s3_standin.read(f"{PREFIX}/models/m/champion.json"))
    assert pointer["version"] == "v1" and store.read_champion("m")["release"] == "https://github.example/pr/1"


@pytest.mark.slow
def test_credentials_come_from_the_secrets_resource(s3_standin, tmp_path):
    key_id, secret_key = s3_standin.require_signed_requests()
    secrets = LocalSecretStore(directory=secrets_dir(tmp_path, key_id, secret_key), env_prefix="RECSYS_TEST_UNSET_")
    store = make_store(s3_standin, tmp_path, secrets=secrets)

    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert store.secret_references() == [
        f"aws-access-key-id@file:{tmp_path}/secrets/aws-access-key-id",
        f"aws-secret-access-key@file:{tmp_path}/secrets/aws-secret-access-key",
    ]
    assert key_id not in repr(store) and secret_key not in repr(store)

    # The same store with a wrong secret key is refused by the server, and the error shows no credential;
    # it is the interface's ModelStoreError (an OSError), which every backend raises.
    wrong = LocalSecretStore(
        directory=secrets_dir(tmp_path / "wrong", key_id, "not-the-key"), env_prefix="RECSYS_TEST_UNSET_"
    )
    with pytest.raises(ModelStoreError, match=r"s3://recsys-models/recsys/models/m/v2/.*HTTP 403") as caught:
        make_store(s3_standin, tmp_path, secrets=wrong).publish_bundle("m", "v2", FILES, {"version": "v2"})
    text = "".join(traceback.format_exception(caught.value))
    assert "not-the-key" not in text and key_id not in text


def test_missing_credential_secret_names_it(s3_standin, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    store = make_store(
        s3_standin, tmp_path, secrets=LocalSecretStore(directory=str(empty), env_prefix="RECSYS_TEST_UNSET_")
    )
    with pytest.raises(SecretNotFoundError, match="'aws-access-key-id'"):
        store.get_object("models/m/champion.json")


@pytest.mark.slow
def test_default_credential_chain_when_no_secret_names(s3_standin, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-environment")
    store = make_store(s3_standin, tmp_path, access_key_secret=None, secret_key_secret=None, prefix="")
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert store.secret_references() == []
    assert "models/m/v1/manifest.json" in s3_standin.keys()
    with pytest.raises(ValueError, match="both"):
        make_store(s3_standin, tmp_path, secret_key_secret=None).get_object("x")


def test_selected_by_environment(s3_standin, tmp_path):
    env = {
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_SECRETS_DIR": secrets_dir(tmp_path),
        "RECSYS_MODEL_STORE": "s3",
        "RECSYS_S3_BUCKET": s3_standin.bucket,
        "RECSYS_S3_PREFIX": "team/recsys",
        "RECSYS_S3_ENDPOINT_URL": s3_standin.endpoint_url,
        "RECSYS_S3_REGION": s3_standin.region,
        "RECSYS_S3_ACCESS_KEY_SECRET": "aws-access-key-id@latest",
    }
    resources = build_resources(env)
    store = resources["model_store"]
    assert isinstance(store, S3ModelStore) and store.secrets is resources["secrets"]
    assert store.access_key_secret == "aws-access-key-id" and store.access_key_secret_version == "latest"
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert "team/recsys/models/m/v1/manifest.json" in s3_standin.keys()
    with pytest.raises(ValueError, match="RECSYS_S3_BUCKET"):
        build_resources({**env, "RECSYS_S3_BUCKET": ""})
