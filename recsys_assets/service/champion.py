"""Follow the champion: read the model store's pointer, load and verify a new version aside, swap it in whole.

Requests and swaps both run on the event loop's thread: a request reads `ChampionFollower.champion`
once and uses that object to the end, and a swap is one assignment between two requests, so no
request ever sees a half-loaded model. Loading (reading, checksumming, unpacking) runs in a worker
thread while the old version keeps serving; a version that fails is refused and never replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import pyarrow as pa

from recsys_assets.domain.families.topk import pin_blas_to_one_thread
from recsys_assets.domain.items import as_of
from recsys_assets.domain.layout import BundleFile, ModelStoreKeys
from recsys_assets.domain.names import safe_name
from recsys_assets.domain.redaction import scrub
from recsys_assets.domain.serving import Bundle, BundleIntegrityError, open_bundle
from recsys_assets.resources.catalogue import ItemCatalogue
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.service.metrics import ServiceMetrics

LOG = logging.getLogger("recsys_assets.service")
# The GIL switch interval while a champion loads beside the requests (seconds; Python's default is 0.005).
LOADING_SWITCH_INTERVAL = 0.0005


class StoreUnreachable(RuntimeError):
    """Reading the model store failed: an outage, retried at the next check (never a refusal)."""


def error_text(exc: BaseException) -> str:
    """One line naming an error, for logs, `/readyz` and 503 bodies: every error text the service shows passes
    here, through the project's secret scrubber (an S3 or catalogue error never shows a credential)."""
    return scrub(" ".join(f"{type(exc).__name__}: {exc}".split()))


@dataclass(frozen=True)
class Champion:
    """The version being served: a loaded, verified bundle and what its lists exclude."""

    bundle: Bundle
    version: str
    family: str
    loaded_at: datetime
    # The day whose catalogue snapshot says which postings are closed; None: the bundle's own build-time mask.
    catalogue_day: date | None
    closed_items: int

    def describe(self) -> dict:
        return {
            "model_version": self.version,
            "model_family": self.family,
            "loaded_at": self.loaded_at.isoformat(),
            "users": len(self.bundle.user_ids),
            "items": len(self.bundle.item_ids),
            "closed_items": self.closed_items,
            "closed_from": f"catalogue of {self.catalogue_day}" if self.catalogue_day else "bundle build",
        }


def load_champion_bundle(store: ModelStore, model_name: str, version: str) -> Bundle:
    """Version `version` of `model_name` from `store`, every file checked against its manifest.

    Raises:
        StoreUnreachable: the store could not be read (retry later).
        BundleIntegrityError, ValueError, ...: the version is broken (refuse it).
    """
    keys = ModelStoreKeys(model_name)

    def read(name: str) -> bytes:
        try:
            data = store.get_object(keys.bundle_file(version, name))
        except Exception as exc:  # the store's own errors: S3, permissions, I/O
            raise StoreUnreachable(error_text(exc)) from exc
        if data is None:
            raise FileNotFoundError(f"champion {model_name}/{version} has no {name} in {store.uri('')}")
        return data

    bundle = open_bundle(store.uri(keys.bundle_prefix(version)), read)
    if bundle.history is None:
        raise BundleIntegrityError(
            f"bundle {model_name}/{version} has no {BundleFile.HISTORY} (written before the service existed): "
            "it cannot exclude what a user saw; retrain, or promote a newer version"
        )
    return bundle


def catalogue_snapshot(catalogue: ItemCatalogue, day: date) -> pa.Table:
    """The catalogue as known at the end of `day`: what the `items` asset snapshots for that partition."""
    return as_of(catalogue.read_items(day), day)


class ChampionFollower:
    """Keeps the served champion in step with the pointer in the model store, and its closed postings with the day."""

    def __init__(
        self,
        store: ModelStore,
        model_name: str,
        metrics: ServiceMetrics,
        catalogue: ItemCatalogue | None = None,
        reload_seconds: float = 30.0,
        catalogue_seconds: float = 300.0,
        day: date | None = None,
        service_process: bool = False,
    ) -> None:
        self.store = store
        # True in `serve`'s own process, which does nothing but answer requests on the event loop's thread: the
        # follower then sets process-wide state for them (BLAS single-threaded for good once a champion is
        # loaded, so no request limits it again; a short GIL switch interval while a new one loads). Off where
        # the process does other work too (tests serve in their own process).
        self.service_process = service_process
        self.model_name = safe_name(model_name, "model name")
        self.metrics = metrics
        self.catalogue = catalogue
        self.reload_seconds = reload_seconds
        self.catalogue_seconds = catalogue_seconds
        self._day = day
        self.champion: Champion | None = None
        # Why nothing is served while `champion` is None.
        self.waiting_reason = "starting: the champion pointer has not been read yet"
        # Versions that failed verification or loading, with the reason: not tried again until the pointer moves.
        self.refused: dict[str, str] = {}
        # Something an operator should know while a champion is served (the pointer unreadable or removed).
        self.warning: str | None = None
        self._snapshot: pa.Table | None = None
        self._snapshot_day: date | None = None
        self._snapshot_read_at = float("-inf")

    @property
    def day(self) -> date:
        """The day whose catalogue snapshot decides which postings are closed (today, UTC, unless pinned)."""
        return self._day or datetime.now(UTC).date()

    async def run(self) -> None:
        """Check the pointer every `reload_seconds`, for ever (cancelled when the app stops)."""
        while True:
            try:
                await self.follow_once()
            except Exception:  # a bug here must not end the following: the next check tries again
                self.metrics.reloads.labels("failure").inc()
                LOG.exception("checking the champion failed")
            await asyncio.sleep(self.reload_seconds)

    async def follow_once(self) -> None:
        """One check: refresh the closed postings when due, then load and swap in a new champion if the pointer moved."""
        await self._refresh_catalogue()
        try:
            pointer = await asyncio.to_thread(self.store.read_champion, self.model_name)
            version = None if pointer is None else safe_name(str(pointer["version"]), "champion version")
        except Exception as exc:  # an unreadable pointer must never stop the loop or the serving
            self._failed(f"cannot read the champion pointer of {self.model_name}: {error_text(exc)}")
            return
        if version is None:
            self._no_pointer()
            return
        if self.champion is not None and version == self.champion.version:
            self.warning = None
            return
        if version in self.refused:
            return
        await self._load(version)

    async def _load(self, version: str) -> None:
        if self.champion is None:
            self.waiting_reason = f"loading champion {self.model_name}/{version}"
        LOG.info("loading champion %s/%s", self.model_name, version)
        started = time.perf_counter()
        try:
            with self._requests_first():
                champion = await asyncio.to_thread(self._prepared, version, self._snapshot, self._snapshot_day)
        except StoreUnreachable as exc:
            self._failed(f"cannot read champion {self.model_name}/{version}: {exc}")
            return
        except Exception as exc:
            reason = error_text(exc)
            self.refused[version] = reason
            self._failed(
                f"refused champion {self.model_name}/{version}: {reason}; "
                "not tried again until the champion pointer moves (or the service restarts)",
                waiting=f"champion {self.model_name}/{version} refused: {reason}",
            )
            return
        previous = self.champion
        self.champion = champion  # the swap: one assignment on the loop's thread, between two requests
        self.warning = None
        self.metrics.reloads.labels("success").inc()
        self.metrics.serving(self.model_name, champion.version, champion.family)
        self.metrics.closed_items.set(champion.closed_items)
        LOG.info(
            "serving %s/%s (%s), loaded and verified in %.1f s%s",
            self.model_name,
            champion.version,
            champion.family,
            time.perf_counter() - started,
            f"; replaced {previous.version}" if previous else "",
        )

    def _prepared(self, version: str, snapshot: pa.Table | None, snapshot_day: date | None) -> Champion:
        """A champion ready to serve (runs in a worker thread: nothing reads this bundle yet)."""
        bundle = load_champion_bundle(self.store, self.model_name, version)
        closed = self._apply(bundle, snapshot)
        # Built before the swap, so the first request after it pays for nothing.
        bundle.popular([], 1)
        if self.service_process:
            pin_blas_to_one_thread()  # the model's libraries are loaded by now
        return Champion(
            bundle=bundle,
            version=version,
            family=bundle.model.family,
            loaded_at=datetime.now(UTC),
            catalogue_day=snapshot_day if closed is not None else None,
            closed_items=closed if closed is not None else _excluded(bundle),
        )

    @contextlib.contextmanager
    def _requests_first(self) -> Iterator[None]:
        """While a champion loads in its thread: in the service's process, a GIL switch interval of 0.5 ms.

        The loading thread runs Python (id maps, checksums) for seconds; each time a request's handling lets
        the GIL go (socket I/O, NumPy), the loader keeps it for up to the switch interval (5 ms by default)
        before the request may go on, so a request waited tens of milliseconds and, at 200 requests/s, the
        queue grew to seconds for the length of the load (benchmarks/README.md). The loader runs a little
        slower instead.
        """
        if not self.service_process:
            yield
            return
        interval = sys.getswitchinterval()
        sys.setswitchinterval(LOADING_SWITCH_INTERVAL)
        try:
            yield
        finally:
            sys.setswitchinterval(interval)

    @staticmethod
    def _apply(bundle: Bundle, snapshot: pa.Table | None) -> int | None:
        """Exclude what `snapshot` says is closed; None (the build-time mask kept) without a usable snapshot."""
        if snapshot is None or snapshot.num_rows == 0:
            return None
        return bundle.exclude_closed(snapshot)

    async def _refresh_catalogue(self) -> None:
        """Read the day's catalogue snapshot when the day changed or `catalogue_seconds` passed."""
        if self.catalogue is None:
            return
        day = self.day
        if day == self._snapshot_day and time.monotonic() - self._snapshot_read_at < self.catalogue_seconds:
            return
        try:
            snapshot = await asyncio.to_thread(catalogue_snapshot, self.catalogue, day)
        except Exception as exc:  # the warehouse locked or down: keep the last mask, say so
            self.metrics.catalogue_refreshes.labels("failure").inc()
            LOG.warning("cannot read the catalogue of %s (closed postings stay as they were): %s", day, error_text(exc))
            self._snapshot_read_at = time.monotonic()
            return
        self.metrics.catalogue_refreshes.labels("success").inc()
        self._snapshot, self._snapshot_day, self._snapshot_read_at = snapshot, day, time.monotonic()
        champion = self.champion
        if champion is not None:
            closed = self._apply(champion.bundle, snapshot)
            if closed is not None:
                self.champion = replace(champion, catalogue_day=day, closed_items=closed)
                self.metrics.closed_items.set(closed)

    def _no_pointer(self) -> None:
        where = self.store.uri(ModelStoreKeys(self.model_name).champion)
        if self.champion is None:
            self.waiting_reason = f"no champion promoted yet: {where} does not exist"
            return
        warning = f"the champion pointer {where} was removed; still serving {self.champion.version}"
        if warning != self.warning:
            LOG.warning(warning)
            self.warning = warning

    def _failed(self, message: str, waiting: str | None = None) -> None:
        self.metrics.reloads.labels("failure").inc()
        LOG.error(message)
        if self.champion is None:
            self.waiting_reason = waiting or message
        else:
            self.warning = f"{message}; still serving {self.champion.version}"


def _excluded(bundle: Bundle) -> int:
    excluded = bundle.model.excluded
    return 0 if excluded is None else int(excluded.sum())
