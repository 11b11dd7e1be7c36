"""What a run worker process loads by module name in test_event_log.py: a daily asset's range job, and an event
log that notes in a file how each materialization reached it (alone, or in a batch).

No `from __future__ import annotations`: Dagster reads the asset's `context` annotation at definition time.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import Field, StringSource
from dagster._core.events.log import EventLogEntry
from dagster._serdes import ConfigurableClassData

from recsys_assets.instance.event_log import BatchedSqliteEventLogStorage

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-03-01")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """A range-run daily asset, like `interactions`."""
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)}, data_version=dg.DataVersion("v1"))


# In process, like the project's runs: the run worker itself runs the step.
daily_job = dg.define_asset_job("daily_job", selection=[daily], executor_def=dg.in_process_executor)
defs = dg.Definitions(assets=[daily], jobs=[daily_job])


class CountingEventLogStorage(BatchedSqliteEventLogStorage):
    """The project's event log, writing one line per materialization write to `count_file`: `single`, or `batch N`."""

    def __init__(self, base_dir: str, count_file: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data=inst_data)
        self.count_file = Path(count_file)

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {**super().config_type(), "count_file": Field(StringSource)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "CountingEventLogStorage":
        return cls(config_value["base_dir"], config_value["count_file"], inst_data=inst_data)

    def _note(self, line: str) -> None:
        with self.count_file.open("a") as file:
            file.write(line + "\n")

    def store_event(self, event: EventLogEntry) -> None:
        if event.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            self._note("single")
        super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        self._note(f"batch {len(events)}")
        super().store_event_batch(events)
