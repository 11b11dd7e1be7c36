"""The released champion's top-n lists for every recently active user, written back to the warehouse each day."""

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.delivery.checks import NO_SEEN_OR_CLOSED_ITEMS
from recsys_assets.domain import storage
from recsys_assets.domain.events import filled_numpy
from recsys_assets.domain.items import as_of
from recsys_assets.domain.layout import ModelStoreKeys
from recsys_assets.domain.served_lists import (
    LISTS_SCHEMA,
    interaction_matrix,
    popularity_lists,
    recommend_lists,
)
from recsys_assets.domain.serving import Bundle, open_bundle
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.catalogue import ItemCatalogue
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.resources.recommendation_store import RecommendationStore
from recsys_assets.resources.registry import ModelRegistry
from recsys_assets.resources.warehouse import Warehouse
from recsys_assets.settings import SETTINGS
from recsys_assets.step_errors import guarded_step

# Without a champion, the lists are popularity over this many days before the partition's end.
FALLBACK_POPULARITY_DAYS = 7


class RecommendationsConfig(dg.Config):
    n: int = Field(default=20, ge=1, le=1000, description="Items per user's list.")
    active_days: int = Field(
        default=28, ge=1, le=366, description="A user gets a list when they interacted in this many days up to the day."
    )


def lists_path(root_uri: str, day: str) -> str:
    """The Parquet copy of a day's lists in the artefact store (rewritten whole by a rerun of the day)."""
    return storage.join(root_uri, "recommendations", day, "recommendations.parquet")


def day_bounds(day: date, days: int) -> tuple[datetime, datetime]:
    """[start, end) of the `days` days ending with `day`, in UTC."""
    end = datetime.combine(day + timedelta(days=1), clock(), tzinfo=UTC)
    return end - timedelta(days=days), end


def champion_bundle(store: ModelStore, model_name: str, version: str) -> Bundle:
    """The released version's bundle, every file checked against its manifest.

    Raises:
        dg.Failure: the version is incomplete, unreadable or fails its checksums (one line naming the
            version and the file; not retried: the bytes will not change by themselves).
    """
    keys = ModelStoreKeys(model_name)

    def read(name: str) -> bytes:
        data = store.get_object(keys.bundle_file(version, name))
        if data is None:
            raise FileNotFoundError(f"{name} is missing from {store.uri(keys.bundle_prefix(version))}")
        return data

    try:
        return open_bundle(store.uri(keys.bundle_prefix(version)), read)
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, ConnectionError | TimeoutError):
            raise  # an outage: the step's retry policy decides
        raise dg.Failure(
            f"champion {model_name}/{version} cannot be served: {' '.join(str(exc).split())}; "
            "earlier days' lists are untouched",
            allow_retries=False,
        ) from None


def utc(ts: datetime) -> pa.Scalar:
    """`ts` as a scalar comparable with the events' `event_ts`."""
    return pa.scalar(ts, pa.timestamp("us", tz="UTC"))


def column_schema() -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(field.name, str(field.type)) for field in LISTS_SCHEMA])


@dg.asset(
    partitions_def=daily_partitions,
    deps=["interactions", "items"],
    group_name=GROUP,
    retry_policy=SERVICE_RETRY_POLICY,
    **asset_attributes("recommendation_store", "model_store", extra_kinds=("parquet",)),
    check_specs=[NO_SEEN_OR_CLOSED_ITEMS.spec],
)
@guarded_step
def recommendations(
    context: dg.AssetExecutionContext,
    config: RecommendationsConfig,
    warehouse: Warehouse,
    item_catalogue: ItemCatalogue,
    model_store: ModelStore,
    recommendation_store: RecommendationStore,
    artifacts: ArtifactStore,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The released champion's top-n lists of the day for every recently active user, in the warehouse."""
    started = time.perf_counter()
    day = date.fromisoformat(context.partition_key)
    events = warehouse.read_events(*day_bounds(day, config.active_days)).select(["user_id", "item_id", "event_ts"])
    users = pc.unique(events["user_id"]).sort()
    snapshot = as_of(item_catalogue.read_items(day), day)
    closed = snapshot.filter(pc.is_valid(snapshot["closed_date"]))["item_id"].combine_chunks()
    registry = ModelRegistry(model_store, SETTINGS.model_name)
    champion = registry.champion()
    notes: dict[str, Any] = {}
    if champion is None:
        recent = events.filter(pc.greater_equal(events["event_ts"], utc(day_bounds(day, FALLBACK_POPULARITY_DAYS)[0])))
        lists = popularity_lists(users, recent, config.n, day, seen=events, closed_item_ids=closed)
        note = f"no champion released yet: popularity of the last {FALLBACK_POPULARITY_DAYS} days for every user"
        context.log.warning(note)
        notes = {"note": note, "champion": "none"}
        known_items = pa.array([], pa.string())
        unknown_users = len(users)
    else:
        version = champion.version
        bundle = champion_bundle(model_store, SETTINGS.model_name, version)
        if snapshot.num_rows:
            bundle.exclude_closed(snapshot)
        histories = interaction_matrix(users, bundle.item_ids, events)
        # A champion trained on data after the day (a backfill) knows interactions the day did not: what a
        # user saw is then taken from the day's window alone, never from the bundle's.
        trained_until = date.fromisoformat(str(bundle.manifest.data.window.end)) if bundle.manifest else None
        backfill = trained_until is not None and trained_until > day
        lists = recommend_lists(bundle, users, config.n, day, histories, bundle_history=not backfill)
        notes = {"champion": version, "model_family": bundle.model.family}
        if backfill:
            notes["note"] = (
                f"backfill: {version} was trained on data up to {trained_until}, after {day}; its lists exclude "
                f"the interactions up to {day} only, and its model has seen later ones"
            )
            context.log.warning(str(notes["note"]))
        known_items = bundle.item_ids
        unknown_users = int(np.count_nonzero(~filled_numpy(pc.is_in(users, value_set=bundle.user_ids), False)))
    written = recommendation_store.replace_day(day, lists)
    path = lists_path(artifacts.root_uri, context.partition_key)
    storage.write_bytes(path, storage.table_to_bytes(lists))
    served_users = pc.count_distinct(lists["user_id"]).as_py() if lists.num_rows else 0
    distinct_items = pc.count_distinct(lists["item_id"]).as_py() if lists.num_rows else 0
    open_postings = snapshot.num_rows - len(closed)
    fallback_users = (
        pc.count_distinct(lists.filter(pc.equal(lists["source"], pa.scalar("fallback")))["user_id"]).as_py()
        if written
        else 0
    )
    today = events.filter(pc.greater_equal(events["event_ts"], utc(day_bounds(day, 1)[0])))
    on_unseen_items = int(np.count_nonzero(~filled_numpy(pc.is_in(today["item_id"], value_set=known_items), False)))
    if not written:
        context.log.warning(f"no user was active in the {config.active_days} days up to {day}: an empty partition")
        empty = f"no active users in the {config.active_days} days up to {day}: an empty partition"
        notes["note"] = f"{empty}; {notes['note']}" if "note" in notes else empty
    context.log.info(f"{written:,} rows for {served_users:,} users written to {recommendation_store.table_ref}")
    yield dg.MaterializeResult(
        metadata={
            **notes,
            "dagster/row_count": written,
            "dagster/column_schema": column_schema(),
            "rows": written,
            "users": served_users,
            "distinct_items": distinct_items,
            "catalogue_coverage": round(distinct_items / open_postings, 6) if open_postings > 0 else 0.0,
            "fallback_share": round(fallback_users / served_users, 6) if served_users else 0.0,
            # Drift: active users the champion does not know, and the day's interactions on items it never saw.
            "unknown_user_share": round(unknown_users / len(users), 6) if len(users) else 0.0,
            "unseen_item_share": round(on_unseen_items / today.num_rows, 6) if today.num_rows else 0.0,
            "seconds": round(time.perf_counter() - started, 3),
            "table": recommendation_store.table_ref,
            "path": dg.MetadataValue.path(path),
        }
    )
    yield NO_SEEN_OR_CLOSED_ITEMS(lists, events, closed)
