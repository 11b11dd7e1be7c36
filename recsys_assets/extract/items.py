"""The daily catalogue snapshot (job postings) from the warehouse, with its data-quality checks.

Daily partitioned snapshots, not one snapshot with history: partition D holds the catalogue as it
was known at the end of D (postings posted by D; closings after D not yet known). A training run
for D then sees exactly what production saw that day, and a re-run of an old day rebuilds the same
snapshot even though postings have closed since.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.domain import storage
from recsys_assets.domain.items import as_of, measure_quality
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.catalogue import ItemCatalogue
from recsys_assets.step_errors import guarded_step

CHECK_UNIQUE_IDS = "unique_item_ids"
CHECK_TEXT = "postings_have_text"
CHECK_WINDOW = "closed_after_posted"


class ItemsConfig(dg.Config):
    max_missing_text_share: float = Field(
        default=0.01, ge=0, le=1, description="Largest share of postings with neither title nor description."
    )


def _spec(name: str, description: str, blocking: bool = True) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name, asset="items", partitions_def=daily_partitions, blocking=blocking, description=description
    )


@dg.asset(
    partitions_def=daily_partitions,
    retry_policy=SERVICE_RETRY_POLICY,
    group_name=GROUP,
    **asset_attributes("warehouse", extra_kinds=("parquet",)),
    check_specs=[
        _spec(CHECK_UNIQUE_IDS, "No item id occurs twice and none is null."),
        _spec(CHECK_TEXT, "Postings without title and description stay under the configured share."),
        _spec(CHECK_WINDOW, "No posting closes before it was posted."),
    ],
)
@guarded_step
def items(
    context: dg.AssetExecutionContext, config: ItemsConfig, item_catalogue: ItemCatalogue, artifacts: ArtifactStore
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """The item catalogue as known at the end of the partition's day: text, category, location, open window."""
    day = date.fromisoformat(context.partition_key)
    snapshot = as_of(item_catalogue.read_items(day), day)
    files = artifacts.layout(context.run).items(context.partition_key)
    storage.write_bytes(files.items, storage.table_to_bytes(snapshot))
    quality = measure_quality(snapshot)
    open_now = snapshot.filter(snapshot["closed_date"].is_null()).num_rows
    context.log.info(
        f"{snapshot.num_rows:,} postings known on {day} ({open_now:,} open) from {item_catalogue.table_ref}"
    )
    # The materialization first: each check result then attaches to this run's materialization.
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": snapshot.num_rows,
            "open_postings": open_now,
            "source": item_catalogue.table_ref,
            "path": dg.MetadataValue.path(files.items),
        }
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_UNIQUE_IDS,
        passed=quality.duplicate_ids == 0 and quality.null_ids == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{quality.duplicate_ids} duplicated and {quality.null_ids} null item ids in {quality.rows} rows",
        metadata={"duplicate_ids": quality.duplicate_ids, "null_ids": quality.null_ids},
    )
    share = quality.missing_text / max(quality.rows, 1)
    yield dg.AssetCheckResult(
        check_name=CHECK_TEXT,
        passed=share <= config.max_missing_text_share,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{quality.missing_text} of {quality.rows} postings have no text "
            f"({share:.2%}; limit {config.max_missing_text_share:.2%})"
        ),
        metadata={"rows": quality.missing_text, "share": round(share, 6), "limit": config.max_missing_text_share},
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_WINDOW,
        passed=quality.closed_before_posted == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{quality.closed_before_posted} postings close before they were posted",
        metadata={"rows": quality.closed_before_posted},
    )
