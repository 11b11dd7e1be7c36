"""The local model store keeps the all-or-nothing, write-once bundle protocol."""

import json
import os
from collections.abc import Mapping

import pytest

from recsys_assets.domain.failures import classify
from recsys_assets.domain.storage import StoredFiles
from recsys_assets.resources.model_store import STAGING_FOLDER, BundleExistsError, LocalModelStore, ModelStoreError

# What a serving process catches: the one BundleIntegrityError, whichever store or loader raised it.
from recsys_assets.serving import BundleIntegrityError
from recsys_assets_tests.support.filesystems import file_size_limit, read_only

FILES = {"item_factors.npy": b"\x93NUMPY factors", "model_card.md": b"# card"}


def test_publish_then_read_back_with_checksums(tmp_path):
    store = LocalModelStore(root=str(tmp_path))
    uri = store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    manifest = json.loads((tmp_path / "models/m/v1/manifest.json").read_text())
    assert uri == str(tmp_path / "models/m/v1/") and manifest["version"] == "v1"
    assert set(manifest["files"]) == set(FILES)
    assert store.read_file("m", "v1", "model_card.md") == b"# card"
    assert store.list_versions("m") == ["v1"]


def test_stored_files_are_read_one_at_a_time_as_the_bundle_is_published(tmp_path):
    (tmp_path / "artefacts").mkdir()
    for name in ("model.npz", "history.npz"):
        (tmp_path / "artefacts" / name).write_bytes(name.encode() * 1000)
    reads: list[str] = []

    class Recorded(StoredFiles):
        def __getitem__(self, name):
            reads.append(name)
            return super().__getitem__(name)

    files = Recorded({n: str(tmp_path / "artefacts" / n) for n in ("model.npz", "history.npz")}, FILES)
    assert reads == [], "nothing is read before the store asks for it"
    store = LocalModelStore(root=str(tmp_path / "store"))
    store.publish_bundle("m", "v1", files, {"version": "v1"})
    assert sorted(reads) == sorted([*FILES, "model.npz", "history.npz"]), "each file read once, when published"
    assert store.read_file("m", "v1", "history.npz") == b"history.npz" * 1000
    with pytest.raises(ValueError, match="given twice"):
        StoredFiles({"model_card.md": "x"}, FILES)


def test_each_file_is_dropped_before_it_is_read_back_so_one_is_held_at_a_time(tmp_path):
    alive: set[str] = set()

    class Tracked(bytes):
        """A file's bytes that say when they are freed."""

        name = ""

        def __del__(self):
            alive.discard(self.name)

    class Lazy(Mapping):
        """Each file made on lookup, as `StoredFiles` reads it."""

        names = ("model.npz", "history.npz", "user_ids.parquet")

        def __getitem__(self, name):
            data = Tracked(name.encode() * 1000)
            data.name = name
            alive.add(name)
            return data

        def __iter__(self):
            return iter(self.names)

        def __len__(self):
            return len(self.names)

    held_at_read_back: list[set[str]] = []

    class Store(LocalModelStore):
        def get_object(self, key):
            held_at_read_back.append(set(alive))
            return super().get_object(key)

    Store(root=str(tmp_path)).publish_bundle("m", "v1", Lazy(), {"version": "v1"})
    # The first read-back is the "already published?" check; each file's comes after it was written.
    assert held_at_read_back[1:4] == [set(), set(), set()]


def test_an_existing_version_is_never_overwritten(tmp_path):
    store = LocalModelStore(root=str(tmp_path))
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    with pytest.raises(BundleExistsError):
        store.publish_bundle("m", "v1", {"model_card.md": b"other"}, {"version": "v1"})
    assert store.read_file("m", "v1", "model_card.md") == b"# card"
    assert store.put_object_if_absent("models/m/v1/manifest.json", b"{}") is False


class FailingStore(LocalModelStore):
    """Dies on the second file, as a crash or lost connection midway through an upload would."""

    def put_object(self, key, data):
        if key.endswith("model_card.md"):
            raise OSError("disk full")
        super().put_object(key, data)


def test_failure_midway_leaves_no_manifest_and_a_retry_completes(tmp_path):
    with pytest.raises(OSError):
        FailingStore(root=str(tmp_path)).publish_bundle("m", "v1", FILES, {"version": "v1"})
    store = LocalModelStore(root=str(tmp_path))
    assert store.read_manifest("m", "v1") is None and store.list_versions("m") == []
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert store.list_versions("m") == ["v1"]


class CorruptingStore(LocalModelStore):
    """Reads back different bytes than were written, as a flaky disk or proxy would."""

    def get_object(self, key):
        data = super().get_object(key)
        return data[:-1] + b"!" if data and not key.endswith("manifest.json") else data


def test_checksum_mismatch_stops_before_the_manifest(tmp_path):
    with pytest.raises(BundleIntegrityError, match="checksum mismatch"):
        CorruptingStore(root=str(tmp_path)).publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert LocalModelStore(root=str(tmp_path)).read_manifest("m", "v1") is None


def test_champion_pointer_only_names_complete_bundles(tmp_path):
    store = LocalModelStore(root=str(tmp_path))
    with pytest.raises(FileNotFoundError):
        store.write_champion("m", "v9")
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    store.write_champion("m", "v1", release="pr-1")
    assert store.read_champion("m")["version"] == "v1" and store.read_champion("m")["release"] == "pr-1"


def test_bundle_files_are_readable_by_other_users_like_every_other_file(tmp_path):
    store = LocalModelStore(root=str(tmp_path))
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    store.write_champion("m", "v1")
    bundle = tmp_path / "models/m/v1"
    paths = [bundle, *bundle.iterdir(), tmp_path / "models/m/champion.json"]
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in paths}
    # 0666/0777 less the umask: what `open()` and `mkdir` give every other file (0644/0755 under umask 022).
    umask = os.umask(0)
    os.umask(umask)
    expected = {name: oct((0o777 if name == "v1" else 0o666) & ~umask) for name in modes}
    assert modes == expected and expected["manifest.json"] != oct(0o600)


def test_a_full_disk_fails_naming_the_path_and_leaves_no_version_folder(tmp_path):
    store = LocalModelStore(root=str(tmp_path))
    big = {"model.npz": b"x" * 200_000, "model_card.md": b"# card"}
    with file_size_limit(100_000), pytest.raises(ModelStoreError) as raised:
        store.publish_bundle("m", "v1", big, {"version": "v1"})
    assert classify(raised.value) == "permanent"
    assert str(tmp_path) in str(raised.value) and "File too large" in str(raised.value)
    assert not (tmp_path / "models/m/v1").exists() and list((tmp_path / STAGING_FOLDER).iterdir()) == []
    assert store.list_versions("m") == []


@pytest.mark.parametrize("root", ["/proc/recsys-models", "/proc"])
def test_a_store_where_nothing_can_be_written_is_a_permanent_error_naming_it(root):
    with pytest.raises(ModelStoreError, match=f"model store {root}") as raised:
        LocalModelStore(root=root).publish_bundle("m", "v1", FILES, {"version": "v1"})
    assert classify(raised.value) == "permanent"


def test_a_read_only_store_is_a_permanent_error_and_keeps_what_it_holds(tmp_path):
    store = LocalModelStore(root=str(tmp_path))
    store.publish_bundle("m", "v1", FILES, {"version": "v1"})
    with read_only(tmp_path), pytest.raises(ModelStoreError) as raised:
        store.publish_bundle("m", "v2", FILES, {"version": "v2"})
    assert classify(raised.value) == "permanent" and str(tmp_path) in str(raised.value)
    assert store.list_versions("m") == ["v1"] and not (tmp_path / "models/m/v2").exists()
