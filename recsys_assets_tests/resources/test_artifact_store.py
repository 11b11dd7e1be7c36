"""`ArtifactStore.layout_of`: a step reads this run's files of an asset only when this run materialized it,
else those of the run that materialized it last (a retrain that built nothing reads the previous run's).

Real materializations on a test instance; the assets here only write and read one file through the store.
"""

import dagster as dg
import pytest
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import create_execution_plan, execute_run
from dagster._core.storage.tags import PARTITION_NAME_TAG

from recsys_assets.domain import storage
from recsys_assets.resources.artifacts import ArtifactStore

PARTITIONS = dg.StaticPartitionsDefinition(["2026-03-10"])
DAY = "2026-03-10"


class BuildConfig(dg.Config):
    build: bool = True


@dg.asset(name="items", partitions_def=PARTITIONS, output_required=False)
def items(context: dg.AssetExecutionContext, config: BuildConfig, artifacts: ArtifactStore):
    """Writes this run's file, or nothing (as a retrain that found nothing changed)."""
    if config.build:
        storage.write_bytes(artifacts.layout(context.run).items(DAY).items, context.run.run_id.encode())
        yield dg.Output(None)


@dg.asset(partitions_def=PARTITIONS)
def reader(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> dg.MaterializeResult:
    """Reads `items` wherever `layout_of` says (no dependency: it runs whether or not `items` was built)."""
    read = storage.read_bytes(artifacts.layout_of(context, "items").items(DAY).items).decode()
    return dg.MaterializeResult(metadata={"read": read})


@dg.asset(partitions_def=PARTITIONS, deps=[items])
def dependent(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> dg.MaterializeResult:
    """Reads `items` after it in the same run."""
    read = storage.read_bytes(artifacts.layout_of(context, "items").items(DAY).items).decode()
    return dg.MaterializeResult(metadata={"read": read})


def read_by(instance: dg.DagsterInstance, asset: str) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None and event.asset_materialization is not None
    return str(event.asset_materialization.metadata["read"].value)


@pytest.mark.slow
def test_a_run_that_did_not_build_an_asset_reads_the_last_builders_files(tmp_path):
    definitions = dg.Definitions(
        assets=[items, reader, dependent],
        jobs=[
            dg.define_asset_job("build", selection=["items"]),
            dg.define_asset_job("build_and_read", selection=["items", "reader"]),
            dg.define_asset_job("build_then_read", selection=["items", "dependent"]),
        ],
        resources={"artifacts": ArtifactStore(root_uri=str(tmp_path))},
        executor=dg.in_process_executor,  # as the CLI runs them
    )

    def run(name: str, build: bool, instance: dg.DagsterInstance) -> str:
        """Started as the CLI's `run_job` starts `retrain_job`: the run names no asset selection (None)."""
        job = InMemoryJob(definitions.resolve_job_def(name))
        run_config, tags = {"ops": {"items": {"config": {"build": build}}}}, {PARTITION_NAME_TAG: DAY}
        plan = create_execution_plan(job, run_config=run_config, tags=tags)
        dagster_run = instance.create_run_for_job(
            job_def=job.get_definition(), execution_plan=plan, run_config=run_config, tags=tags
        )
        assert dagster_run.asset_selection is None
        assert execute_run(job, dagster_run, instance).success
        return dagster_run.run_id

    with dg.instance_for_test() as instance:
        first = run("build", True, instance)
        # `items` is in this run's job but writes nothing: the reader finds the first run's file.
        second = run("build_and_read", False, instance)
        assert read_by(instance, "reader") == first
        assert not (tmp_path / "items" / DAY / "runs" / second).exists()
        # A run that built it reads its own, not the last builder's.
        third = run("build_then_read", True, instance)
        assert read_by(instance, "dependent") == third
