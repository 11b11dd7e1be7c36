"""The daily catalogue snapshot (job postings) from the warehouse, with its data-quality checks.

Daily partitioned snapshots, not one snapshot with history: partition D holds the catalogue as it
was known at the end of D (postings posted by D; closings after D not yet known). A training run
for D then sees exactly what production saw that day, and a re-run of an old day rebuilds the same
snapshot even though postings have closed since.
"""

import hashlib
from collections.abc import Iterator
from datetime import date

import dagster as dg
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.domain import storage
from recsys_assets.domain.items import ITEMS_SCHEMA, CatalogueQuality, as_of, measure_quality
from recsys_assets.domain.samples import markdown_sample
from recsys_assets.extract.checks import CLOSED_AFTER_POSTED, ITEMS_CHECKS, POSTINGS_HAVE_TEXT, UNIQUE_ITEM_IDS
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.catalogue import ItemCatalogue
from recsys_assets.retrain_plan import record_skip, unchanged_retrain
from recsys_assets.step_errors import guarded_step

COLUMN_DESCRIPTIONS = {
    "item_id": "The posting's id (a job).",
    "title": "The job title.",
    "description": "The posting's text and skills.",
    "category": "Job category.",
    "location": "Where the job is.",
    "posted_date": "The day it was posted.",
    "closed_date": "The day it closed, if known by the partition's day (else empty).",
}
COLUMN_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(field.name, str(field.type), description=COLUMN_DESCRIPTIONS[field.name])
        for field in ITEMS_SCHEMA
    ]
)


class ItemsConfig(dg.Config):
    max_missing_text_share: float = Field(
        default=0.01, ge=0, le=1, description="Largest share of postings with neither title nor description."
    )


def _checks(quality: CatalogueQuality, config: ItemsConfig) -> Iterator[dg.AssetCheckResult]:
    yield UNIQUE_ITEM_IDS(quality)
    yield POSTINGS_HAVE_TEXT(quality, config.max_missing_text_share)
    yield CLOSED_AFTER_POSTED(quality)


@dg.asset(
    partitions_def=daily_partitions,
    retry_policy=SERVICE_RETRY_POLICY,
    group_name=GROUP,
    metadata={"dagster/column_schema": COLUMN_SCHEMA},
    **asset_attributes("warehouse", extra_kinds=("parquet",)),
    check_specs=[check.spec for check in ITEMS_CHECKS],
    # No output when the run's retrain is unchanged (`retrain_plan`): every later step is then skipped.
    output_required=False,
)
@guarded_step
def items(
    context: dg.AssetExecutionContext, config: ItemsConfig, item_catalogue: ItemCatalogue, artifacts: ArtifactStore
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """The item catalogue as known at the end of the partition's day: text, category, location, open window."""
    day = date.fromisoformat(context.partition_key)
    snapshot = as_of(item_catalogue.read_items(day), day)
    payload = storage.table_to_bytes(snapshot)
    # The content hash is the data version: what the training set and item features record they were made of.
    version = hashlib.sha256(payload).hexdigest()
    quality = measure_quality(snapshot)
    unchanged = unchanged_retrain(context, version)
    if unchanged is not None:
        # Nothing this run would build differs from what the last released retrain was made of: write nothing.
        # The checks still judge the snapshot read (the same content as the latest materialization they attach to).
        context.log.info(f"retrain skipped before rebuilding anything: {unchanged}")
        record_skip(context, unchanged)
        yield from _checks(quality, config)
        return
    files = artifacts.layout(context.run).items(context.partition_key)
    storage.write_bytes(files.items, payload)
    open_now = snapshot.filter(snapshot["closed_date"].is_null()).num_rows
    context.log.info(
        f"{snapshot.num_rows:,} postings known on {day} ({open_now:,} open) from {item_catalogue.table_ref}"
    )
    # The materialization first: each check result then attaches to this run's materialization.
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(version),
        metadata={
            "dagster/row_count": snapshot.num_rows,
            "open_postings": open_now,
            "source": item_catalogue.table_ref,
            "path": dg.MetadataValue.path(files.items),
            "sample": dg.MetadataValue.md(markdown_sample(snapshot)),
        },
    )
    yield from _checks(quality, config)
