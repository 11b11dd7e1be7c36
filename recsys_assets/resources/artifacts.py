"""Where intermediate artefacts (extracts, training sets, models) live between steps."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from recsys_assets.domain.layout import ArtifactLayout


class ArtifactStore(dg.ConfigurableResource):
    """Root URI (local folder, s3:// or gs://) of the per-partition intermediate artefacts."""

    root_uri: str = Field(description="Local folder or object-store URI that holds intermediate artefacts.")

    def layout(self, run: dg.DagsterRun) -> ArtifactLayout:
        """Typed addresses of `run`'s artefacts; a re-execution keeps its original run's folders."""
        return ArtifactLayout(self.root_uri, run=run.root_run_id or run.run_id)

    def layout_of(self, context: dg.AssetExecutionContext, asset: str) -> ArtifactLayout:
        """Where to read `asset`'s files for this partition: this run's, when this run materialized `asset`,
        else those of the run that materialized it last (an asset re-run on its own, or a retrain that
        found nothing changed and built nothing).
        """
        layout = self.optional_layout_of(context, asset)
        if layout is None:
            raise dg.Failure(f"{asset} was never materialized for partition {context.partition_key}: build it first")
        return layout

    def optional_layout_of(self, context: dg.AssetExecutionContext, asset: str) -> ArtifactLayout | None:
        """`layout_of`, or None when `asset` was never materialized for this partition (an optional input)."""
        key, partition = dg.AssetKey(asset), context.partition_key
        latest = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        if not latest:
            return None
        # This run's own files, also when a concurrent run of the partition materialized the asset after it.
        if latest[0].run_id == context.run.run_id or _materialized_in(context, key, partition):
            return self.layout(context.run)
        producer = context.instance.get_run_by_id(latest[0].run_id)
        return None if producer is None else self.layout(producer)


def _materialized_in(context: dg.AssetExecutionContext, key: dg.AssetKey, partition: str) -> bool:
    """Whether this run recorded a materialization of `key` for `partition` (a step's own are recorded when it ends)."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    return any(
        (event := record.event_log_entry.dagster_event) is not None
        and event.asset_key == key
        and event.partition == partition
        for record in records  # one per asset this run materialized, not per row
    )
