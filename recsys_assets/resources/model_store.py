"""Write-once, versioned store of model bundles, and its local-filesystem implementation."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from recsys_assets.domain.errors import BundleIntegrityError
from recsys_assets.domain.failures import Verdict, local_write_verdict
from recsys_assets.domain.layout import BundleFile, ModelStoreKeys


class BundleExistsError(RuntimeError):
    """A complete bundle (one with a manifest) already exists for this version."""


class ModelStoreError(OSError):
    """The model store could not be read or written (full disk, permissions, an S3 error): an outage, not a
    failed check. Every backend raises this one class, so catching it catches them all; its text names the
    object and never a credential.

    Raised as an OSError (`ModelStoreError(errno, text)`: the errno classifies it) or, by a backend whose
    client has no errno, `classified` with the verdict of the error it replaces (`domain.failures`):
    e.g. S3 throttling and 5xx are transient, a denied or invalid request permanent.
    """

    verdict: Verdict = "unknown"

    @classmethod
    def classified(cls, message: str, verdict: Verdict) -> ModelStoreError:
        error = cls(message)
        error.verdict = verdict
        return error


def sha256(data: bytes) -> str:
    """Hex SHA-256 of `data`: the checksum a manifest records for each bundle file."""
    return hashlib.sha256(data).hexdigest()


class ModelStore(dg.ConfigurableResource, ABC):
    """Versioned, write-once object store for model bundles and the champion pointer."""

    # Backends implement these storage primitives on object keys ("models/<name>/<version>/<file>");
    # the bundle protocol on top of them is shared so every backend is all-or-nothing in the same way.
    @abstractmethod
    def put_object(self, key: str, data: bytes) -> None:
        """Write `data` at `key`, replacing what is there."""

    @abstractmethod
    def put_object_if_absent(self, key: str, data: bytes) -> bool:
        """Write `data` at `key` only if nothing is there; False (and no write) when it exists."""

    @abstractmethod
    def get_object(self, key: str) -> bytes | None:
        """The bytes at `key`, or None when absent."""

    @abstractmethod
    def delete_object(self, key: str) -> None:
        """Remove `key` if it exists."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`."""

    def object_sizes(self, prefix: str) -> dict[str, int]:
        """The size in bytes of every key under `prefix` (a backend whose listing has sizes overrides this)."""
        return {key: len(self.get_object(key) or b"") for key in self.list_keys(prefix)}

    @abstractmethod
    def uri(self, key: str) -> str:
        """Address of `key` a person can open (file path or s3:// URI)."""

    def secret_references(self) -> list[str]:
        """The secrets (name@version, never values) this store's credentials came from."""
        return []

    def read_manifest(self, model_name: str, version: str) -> dict[str, Any] | None:
        """The manifest as stored (a JSON object), or None when the version is incomplete or absent."""
        data = self.get_object(ModelStoreKeys(model_name).manifest(version))
        return None if data is None else json.loads(data)

    def read_file(self, model_name: str, version: str, name: str) -> bytes:
        """A bundle file, verified against the checksum its manifest recorded."""
        manifest = self.read_manifest(model_name, version)
        if manifest is None:
            raise FileNotFoundError(f"no complete bundle {model_name}/{version} in {self.uri('')}")
        data = self.get_object(ModelStoreKeys(model_name).bundle_file(version, name))
        if data is None or sha256(data) != manifest["files"].get(name):
            raise BundleIntegrityError(f"{name} of bundle {model_name}/{version} is missing or corrupt")
        return data

    def list_versions(self, model_name: str) -> list[str]:
        """Versions with a manifest (complete bundles), oldest first."""
        keys = ModelStoreKeys(model_name)
        versions = (keys.version_of_manifest_key(key) for key in self.list_keys(keys.models_prefix))
        return sorted(version for version in versions if version)

    def publish_bundle(
        self, model_name: str, version: str, files: Mapping[str, bytes], manifest: dict[str, Any]
    ) -> str:
        """Upload a bundle all-or-nothing and return its URI.

        Files go first and are read back and checksummed; `manifest.json` goes last with a
        conditional write, so a version is complete exactly when its manifest exists and an
        existing version is never overwritten. A failure midway leaves no manifest, and the files
        it uploaded are deleted again (as far as the store lets: its error is the one raised).
        `files` is iterated once, so a mapping that reads each file on lookup (`storage.StoredFiles`)
        keeps one file in memory at a time: the file, then its read-back copy.
        """
        keys = ModelStoreKeys(model_name)
        prefix = keys.bundle_prefix(version)
        if self.get_object(keys.manifest(version)) is not None:
            raise BundleExistsError(f"bundle {model_name}/{version} already exists at {self.uri(prefix)}")
        written: list[str] = []
        try:
            checksums = {}
            for name, data in files.items():
                key = prefix + name
                written.append(key)
                self.put_object(key, data)
                checksums[name] = sha256(data)
                # Dropped before the read-back and before the next file is read (`files` may read each on
                # lookup): one file in memory at a time (history.npz is 0.3 GiB at 100 M events).
                del data
                stored = self.get_object(key)
                if stored is None or sha256(stored) != checksums[name]:
                    raise BundleIntegrityError(f"checksum mismatch after uploading {self.uri(key)}")
                del stored
            manifest = {**manifest, "files": checksums}
            body = json.dumps(manifest, indent=2, sort_keys=True).encode()
            if not self.put_object_if_absent(keys.manifest(version), body):
                written.clear()  # the files are the other run's now
                raise BundleExistsError(f"bundle {model_name}/{version} was completed by another run")
        except BaseException:
            for key in written:
                with contextlib.suppress(Exception):  # the store may be what failed
                    self.delete_object(key)
            raise
        return self.uri(prefix)

    def read_champion(self, model_name: str) -> dict[str, Any] | None:
        """The promoted version's pointer ({"version", "promoted_at", ...}), or None."""
        data = self.get_object(ModelStoreKeys(model_name).champion)
        return None if data is None else json.loads(data)

    def write_champion(self, model_name: str, version: str, **details: Any) -> None:
        """Point the champion at a complete bundle."""
        if self.read_manifest(model_name, version) is None:
            raise FileNotFoundError(f"cannot promote {model_name}/{version}: no complete bundle")
        pointer = {
            "model_name": model_name,
            "version": version,
            "promoted_at": datetime.now(UTC).isoformat(),
            **details,
        }
        self.put_object(ModelStoreKeys(model_name).champion, json.dumps(pointer, indent=2).encode())

    def clear_champion(self, model_name: str) -> None:
        """No champion: the next model is compared with nothing (after the only release was rolled back)."""
        self.delete_object(ModelStoreKeys(model_name).champion)


# Under the local store's root, outside `models/`: bundles are assembled here, then renamed into place.
STAGING_FOLDER = ".staging"


class LocalModelStore(ModelStore):
    """Model store on the local filesystem (the embedded default)."""

    root: str = Field(description="Folder that holds models/<model_name>/<version>/.")

    def _path(self, key: str) -> Path:
        return Path(self.root) / key

    def publish_bundle(
        self, model_name: str, version: str, files: Mapping[str, bytes], manifest: dict[str, Any]
    ) -> str:
        """Assemble the bundle under a temporary folder, then rename it into place: a version folder
        appears complete or not at all (a full disk or a kill midway leaves no half-written version)."""
        keys = ModelStoreKeys(model_name)
        final = self._path(keys.bundle_prefix(version))
        if (final / BundleFile.MANIFEST).is_file():
            raise BundleExistsError(f"bundle {model_name}/{version} already exists at {final}/")
        staging = self._path(STAGING_FOLDER) / f"{version}-{uuid.uuid4().hex[:8]}"
        try:
            ModelStore.publish_bundle(type(self)(root=str(staging)), model_name, version, files, manifest)
            self._rename_into_place(staging / keys.bundle_prefix(version), final, f"{model_name}/{version}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.uri(keys.bundle_prefix(version))

    def _rename_into_place(self, assembled: Path, final: Path, name: str) -> None:
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(assembled, final)  # atomic; fails on a non-empty target
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if (final / BundleFile.MANIFEST).is_file():
                    raise BundleExistsError(f"bundle {name} was completed by another run") from None
                # Files without a manifest: left by a version of this code that wrote in place.
                shutil.rmtree(final)
                os.rename(assembled, final)
        except BundleExistsError:
            raise
        except OSError as exc:
            raise self._error(exc, f"cannot move bundle {name} into place") from exc

    def _error(self, exc: OSError, action: str) -> ModelStoreError:
        error = ModelStoreError(exc.errno, f"model store {self.root}: {action}: {exc.strerror or exc}")
        error.verdict = local_write_verdict(exc)
        return error

    def put_object(self, key: str, data: bytes) -> None:
        with self._writing(key, data) as tmp:
            # Write-then-rename so a reader never sees a half-written file.
            os.replace(tmp, self._path(key))

    def put_object_if_absent(self, key: str, data: bytes) -> bool:
        with self._writing(key, data) as tmp:
            try:
                os.link(tmp, self._path(key))  # atomic, and fails if the target exists
                return True
            except FileExistsError:
                return False

    @contextlib.contextmanager
    def _writing(self, key: str, data: bytes) -> Iterator[str]:
        """A temporary file next to `key` holding `data`; removed afterwards unless moved into place.

        Created with the mode every other file gets (0666 less the umask, 0644 as a rule), not
        tempfile's 0600: a serving process running as another user reads the bundle.
        """
        path = self._path(key)
        tmp = str(path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
        created = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            created = True
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
            yield tmp
        except OSError as exc:
            raise self._error(exc, f"cannot write {key}") from exc
        finally:
            if created and os.path.exists(tmp):
                os.unlink(tmp)

    def get_object(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def delete_object(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")
        )

    def object_sizes(self, prefix: str) -> dict[str, int]:
        return {key: self._path(key).stat().st_size for key in self.list_keys(prefix)}

    def uri(self, key: str) -> str:
        return str(self._path(key))
