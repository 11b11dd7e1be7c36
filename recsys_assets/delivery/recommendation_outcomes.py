"""The tracked indicator: how the lists served on D-1 did on D, beside a popularity counterfactual."""

import time
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pyarrow.compute as pc
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.delivery.recommendations import FALLBACK_POPULARITY_DAYS, day_bounds, utc
from recsys_assets.domain import storage
from recsys_assets.domain.events import EVENT_TYPE_WEIGHTS
from recsys_assets.domain.items import as_of
from recsys_assets.domain.outcomes import COUNTERFACTUAL, outcome_table, outcomes
from recsys_assets.domain.served_lists import popularity_lists
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.catalogue import ItemCatalogue
from recsys_assets.resources.recommendation_store import RecommendationStore
from recsys_assets.resources.warehouse import Warehouse
from recsys_assets.step_errors import guarded_step

# Days shown in the Markdown table of each materialization.
TABLE_DAYS = 14


class OutcomesConfig(dg.Config):
    horizon_days: int = Field(
        default=1, ge=1, le=28, description="Days of interactions, from the partition's day, the lists are judged on."
    )
    active_days: int = Field(
        default=28, ge=1, le=366, description="Days of history the counterfactual never lists back (as the lists)."
    )
    event_type_weights: dict[str, float] = Field(
        default_factory=lambda: dict(EVENT_TYPE_WEIGHTS),
        description="Gain of each event type (training's confidence weights by default).",
    )


def outcome_path(root_uri: str, day: str) -> str:
    """A day's outcome record in the artefact store (what the 14-day table and `models show` read)."""
    return storage.join(root_uri, "recommendation_outcomes", day, "outcome.json")


def recorded_outcomes(root_uri: str, until: date, days: int) -> list[dict[str, Any]]:
    """The outcome records of the `days` days up to `until` that exist, oldest first."""
    paths = [outcome_path(root_uri, (until - timedelta(days=back)).isoformat()) for back in range(days - 1, -1, -1)]
    return [storage.read_json(path) for path in paths if storage.exists(path)]


def version_outcomes(root_uri: str, version: str) -> list[dict[str, Any]]:
    """Every recorded day whose lists `version` served (the most users), oldest first: what `models show` prints."""
    folder = storage.join(root_uri, "recommendation_outcomes")
    paths = [outcome_path(root_uri, day) for day in storage.child_names(folder)]
    records = [storage.read_json(path) for path in paths if storage.exists(path)]
    return [record for record in records if record.get("version") == version]


@dg.asset(
    partitions_def=daily_partitions,
    deps=["recommendations", "interactions"],
    group_name=GROUP,
    retry_policy=SERVICE_RETRY_POLICY,
    **asset_attributes("recommendation_store", "warehouse"),
)
@guarded_step
def recommendation_outcomes(
    context: dg.AssetExecutionContext,
    config: OutcomesConfig,
    warehouse: Warehouse,
    item_catalogue: ItemCatalogue,
    recommendation_store: RecommendationStore,
    artifacts: ArtifactStore,
) -> dg.MaterializeResult:
    """Hit rate, precision, recall, NDCG and interaction share of the lists served on D-1, beside popularity's."""
    started = time.perf_counter()
    day = date.fromisoformat(context.partition_key)
    served_on = day - timedelta(days=1)
    lists = recommendation_store.read_day(served_on)
    record: dict[str, Any] = {"day": day.isoformat(), "served_on": served_on.isoformat()}
    numbers: dict[str, Any] = {}
    if lists.num_rows == 0:
        note = f"no lists served on D-1 ({served_on}): nothing to measure"
        context.log.warning(note)
        record["note"] = note
    else:
        start, _ = day_bounds(day, 1)
        events = warehouse.read_events(start, start + timedelta(days=config.horizon_days))
        n = int(pc.max(lists["rank"]).as_py())
        by_version = outcomes(lists, events, n, config.event_type_weights)
        # The counterfactual that day: popularity of the 7 days before it, for the same users, minus
        # what they interacted with and the postings closed then (as the served lists).
        history = warehouse.read_events(*day_bounds(served_on, config.active_days))
        recent = history.filter(
            pc.greater_equal(history["event_ts"], utc(day_bounds(served_on, FALLBACK_POPULARITY_DAYS)[0]))
        )
        snapshot = as_of(item_catalogue.read_items(served_on), served_on)
        closed = snapshot.filter(pc.is_valid(snapshot["closed_date"]))["item_id"].combine_chunks()
        users = pc.unique(lists["user_id"])
        counterfactual_lists = popularity_lists(users, recent, n, served_on, history, closed, COUNTERFACTUAL)
        [counterfactual] = outcomes(counterfactual_lists, events, n, config.event_type_weights) or [None]
        main = max(by_version, key=lambda outcome: outcome.users)
        numbers = {
            **main.numbers("model"),
            **(counterfactual.numbers("counterfactual") if counterfactual else {}),
            "lift_hit_rate": round(main.hit_rate - (counterfactual.hit_rate if counterfactual else 0.0), 6),
            "lift_ndcg": round(main.ndcg - (counterfactual.ndcg if counterfactual else 0.0), 6),
            "interactions": events.num_rows,
            "n": n,
        }
        record |= {
            "version": main.version,
            "users": main.users,
            **{name: getattr(main, name) for name in ("hit_rate", "precision", "recall", "ndcg", "interaction_share")},
            "counterfactual_hit_rate": counterfactual.hit_rate if counterfactual else 0.0,
            "counterfactual_ndcg": counterfactual.ndcg if counterfactual else 0.0,
            "by_version": [outcome.__dict__ for outcome in by_version],
            "counterfactual": counterfactual.__dict__ if counterfactual else None,
            "horizon_days": config.horizon_days,
        }
        context.log.info(
            f"lists of {served_on} ({main.version}): hit rate {main.hit_rate:.4f} against "
            f"{record['counterfactual_hit_rate']:.4f} for popularity over {FALLBACK_POPULARITY_DAYS} days"
        )
    path = outcome_path(artifacts.root_uri, context.partition_key)
    storage.write_json(path, record)
    recent_rows = recorded_outcomes(artifacts.root_uri, day, TABLE_DAYS)
    by_version_table = outcome_table(
        [
            {
                "day": day.isoformat(),
                **outcome,
                "counterfactual_hit_rate": record.get("counterfactual_hit_rate", 0.0),
                "counterfactual_ndcg": record.get("counterfactual_ndcg", 0.0),
            }
            for outcome in record.get("by_version", [])
        ]
    )
    return dg.MaterializeResult(
        metadata={
            **numbers,
            "model_version": record.get("version", "none"),
            "served_on": served_on.isoformat(),
            **({"note": record["note"]} if "note" in record else {}),
            "by_version": dg.MetadataValue.md(by_version_table),
            "last_14_days": dg.MetadataValue.md(outcome_table(recent_rows)),
            "seconds": round(time.perf_counter() - started, 3),
            "path": dg.MetadataValue.path(path),
        }
    )
