"""Run the graph from Python: materialize a partition the way `run` does (the CLI's, the tests' and benchmarks').

The graph's partitions and training window come from this process's settings (`process_settings()`),
as the asset definitions do, so the window extracted here is the one `training_set` reads.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import create_execution_plan, execute_run
from dagster._core.execution.execution_result import ExecutionResult
from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._core.storage.tags import PARTITION_NAME_TAG as PARTITION_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_shared.error import SerializableErrorInfo

from recsys_assets.assets import ASSETS
from recsys_assets.domain import storage
from recsys_assets.domain.records import BundleRef, EvaluationResult, TrainingReport
from recsys_assets.jobs import delivery_job, interactions_job, retrain_job
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.warehouse import Warehouse
from recsys_assets.sensors.partitions import latest_extracts
from recsys_assets.settings import dagster_home, process_settings
from recsys_assets.step_errors import FAILED_CHECKS

# The code location `make dev` loads (workspace.yaml): the UI lists a run under the job of that location.
LOCATION_NAME = "recsys_assets"
DEFINITIONS_MODULE = "recsys_assets.definitions"


@dataclass
class PipelineOutcome:
    partition_key: str
    success: bool
    failures: list[str]
    evaluation: EvaluationResult | None
    bundle: BundleRef | None
    report: TrainingReport | None = None
    skipped: str | None = None  # why the retrain was skipped (nothing it depends on changed)
    extracted: tuple[str, str] | None = None  # first and last day this run extracted, if any


def instance() -> dg.DagsterInstance:
    """The persistent instance when DAGSTER_HOME is set (so runs show in the UI), else an ephemeral one."""
    return dg.DagsterInstance.get() if dagster_home() else dg.DagsterInstance.ephemeral()


def latest_partition(warehouse: Warehouse) -> str:
    """The most recent day that has events in the warehouse (an unreachable one raises, it is not empty)."""
    partitions = warehouse.existing_partitions()
    if not partitions:
        raise SystemExit(f"the warehouse {warehouse.table_ref} holds no events: run `demo` or `import-events` first")
    return partitions[-1].partition_key


def window(partition_key: str) -> tuple[str, str]:
    """First and last partition key of the training window ending at `partition_key`."""
    settings = process_settings()
    end = date.fromisoformat(partition_key)
    start = max(end - timedelta(days=settings.training_window_days - 1), date.fromisoformat(settings.first_partition))
    return start.isoformat(), end.isoformat()


def days_to_extract(dagster_instance: dg.DagsterInstance, warehouse: Warehouse, start: str, end: str) -> list[str]:
    """The window days never extracted, modified in the warehouse since, or last extracted by a failed run.

    Extracting only these keeps a long window's daily retrain from re-extracting (and recording a
    materialization for) hundreds of unchanged days; a late row still marks its day changed, and a
    day whose blocking check failed is checked again.
    """
    keys = list(daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)))
    latest = latest_extracts(dagster_instance, keys)
    run_ids = sorted({run_id for _, run_id in latest.values()})
    succeeded = (
        {
            run.run_id
            for run in dagster_instance.get_runs(dg.RunsFilter(run_ids=run_ids, statuses=[dg.DagsterRunStatus.SUCCESS]))
        }
        if run_ids
        else set()
    )
    modified = {p.partition_key: p.last_modified_time.timestamp() for p in warehouse.list_partitions()}
    return [
        key
        for key in keys
        if key not in latest
        or latest[key][1] not in succeeded
        or (key in modified and modified[key] > latest[key][0].timestamp())
    ]


def _innermost(error: SerializableErrorInfo) -> SerializableErrorInfo:
    """The exception the step raised, not Dagster's wrappers around it."""
    while error.cause is not None:
        error = error.cause
    return error


def _failures(result: ExecutionResult) -> list[str]:
    """One line per cause: each failed step's own exception, each failed blocking check with its numbers."""
    reasons = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            cause = _innermost(error) if error else None
            if cause is not None and cause.cls_name == "DagsterAssetCheckFailedError":
                continue  # the failed check's own line says which check and by how much
            failure = event.step_failure_data.user_failure_data
            if failure is not None and ("released" in failure.metadata or FAILED_CHECKS in failure.metadata):
                continue  # a blocked release or failed check: the check's own line comes with the numbers
            if failure is not None and failure.description:
                message = failure.description  # a dg.Failure: its description is the whole story
            elif cause is not None:
                # "package.module.ValueError: text" -> "ValueError: text"
                message = re.sub(r"^(?:\w+\.)+(?=\w+: )", "", " ".join(cause.message.split()))
            else:
                message = "unknown error"
            reasons.append(f"run failed: {event.step_key}: {message}")
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not isinstance(evaluation, dg.AssetCheckEvaluation):
                continue
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                reasons.append(f"release blocked: {evaluation.check_name}: {evaluation.description}")
    return reasons


def _config_for(run_config: Mapping[str, Any], assets: set[str]) -> dict[str, Any]:
    """`run_config` restricted to the ops of `assets`: each run validates only its own ops."""
    ops = {name: value for name, value in run_config.get("ops", {}).items() if name in assets}
    return {**run_config, "ops": ops}


def run_job(
    job_name: str,
    resources: Mapping[str, Any],
    dagster_instance: dg.DagsterInstance,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
) -> ExecutionResult:
    """Run the defined job `job_name` in this process, recorded as a run of the code location's job.

    `materialize` would record an `__ephemeral_asset_job__` run with no code location: the UI's
    Overview timeline skips such runs and the job's Runs tab never lists them. The origin names the
    location and module of workspace.yaml, so the UI files the run under its job (and can re-execute it).
    """
    definitions = dg.Definitions(
        assets=ASSETS,
        jobs=[interactions_job, retrain_job, delivery_job],
        resources=resources,
        executor=dg.in_process_executor,
    )
    job_def = definitions.resolve_job_def(job_name)
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=ManagedGrpcPythonEnvCodeLocationOrigin(
                LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE),
                location_name=LOCATION_NAME,
            ),
            repository_name=SINGLETON_REPOSITORY_NAME,
        ),
        job_name=job_name,
    )
    job = InMemoryJob(job_def)
    plan = create_execution_plan(
        job,
        run_config=run_config,
        tags=tags,
        instance_ref=dagster_instance.get_ref() if dagster_instance.is_persistent else None,
    )
    run = dagster_instance.create_run_for_job(
        job_def=job_def,
        execution_plan=plan,
        run_config=run_config,
        tags={**job_def.run_tags, **tags},
        remote_job_origin=origin,
    )
    return execute_run(job, run, dagster_instance)


class PartitionBusyError(RuntimeError):
    """Another run of the same partition is in progress; nothing was started."""


def refuse_if_busy(dagster_instance: dg.DagsterInstance, partition_key: str) -> None:
    """Refuse to start while the instance records an unfinished run of `partition_key`.

    The daemon serialises queued runs of a partition (`tag_concurrency_limits` in dagster.yaml);
    the CLI runs in process, outside the queue, so it asks the same run records instead.
    """
    busy = dagster_instance.get_run_records(
        dg.RunsFilter(tags={PARTITION_TAG: partition_key}, statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=1
    )
    if busy:
        run = busy[0].dagster_run
        raise PartitionBusyError(
            f"run {run.run_id} of partition {partition_key} is {run.status.value}; wait for it to finish, "
            f"or if its process is gone, `python -m recsys_assets runs terminate {run.run_id}` and run again"
        )


class RunNotTerminated(RuntimeError):
    """The run is unknown, already finished, or its process is still alive: nothing was changed."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: checks the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def terminate_stale_run(dagster_instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    """Mark an unfinished run whose process is gone (a killed CLI) canceled, through the instance's own API.

    Safe by construction: it refuses while any process that recorded an event of the run is alive on
    this machine (stop it, or let it finish), and never touches a finished run. A run the deployment
    launched on another machine is terminated in the UI, which asks its run launcher.
    """
    run = dagster_instance.get_run_by_id(run_id)
    if run is None:
        raise RunNotTerminated(f"no run {run_id} in this Dagster instance ({dagster_home() or 'ephemeral'})")
    if run.status not in IN_PROGRESS_RUN_STATUSES:
        raise RunNotTerminated(f"run {run_id} is {run.status.value}: it is not running, nothing to terminate")
    pids = {
        record.event_log_entry.dagster_event.pid
        for record in dagster_instance.get_records_for_run(run_id, limit=10_000).records
        if record.event_log_entry.dagster_event is not None and record.event_log_entry.dagster_event.pid
    }
    alive = sorted(pid for pid in pids if pid is not None and _alive(pid))
    if alive:
        raise RunNotTerminated(
            f"run {run_id} is {run.status.value} and its process {', '.join(map(str, alive))} is alive: "
            "wait for it, or stop it (kill PID) and terminate again"
        )
    dagster_instance.report_run_canceled(
        run, message="Marked canceled by `python -m recsys_assets runs terminate`: its process was gone."
    )
    updated = dagster_instance.get_run_by_id(run_id)
    assert updated is not None
    return updated


def materialize_partition(
    partition_key: str,
    resources: Mapping[str, Any],
    dagster_instance: dg.DagsterInstance | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> PipelineOutcome:
    """Extract the window's new and changed days (one range run), then rebuild everything downstream."""
    if not daily_partitions.has_partition_key(partition_key):
        raise SystemExit(
            f"{partition_key} is outside the partitions ({process_settings().first_partition} to yesterday); "
            "set RECSYS_PARTITIONS_START earlier for older data"
        )
    # The retrain run comes after the extract run: its launcher's preparation overlaps the extract.
    resources["training_launcher"].prepare()
    dagster_instance = dagster_instance or instance()
    refuse_if_busy(dagster_instance, partition_key)
    # Step progress at INFO is what a person follows; DEBUG engine events drown it.
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    start, end = window(partition_key)
    days = days_to_extract(dagster_instance, resources["warehouse"], start, end)
    failures: list[str] = []
    # One range run from the first to the last day that needs it (unchanged days between are redone).
    extracted = (days[0], days[-1]) if days else None
    if extracted:
        extract = run_job(
            interactions_job.name,
            resources,
            dagster_instance,
            _config_for(run_config, {"interactions"}),
            {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]},
        )
        failures = _failures(extract)
        if not extract.success:
            return PipelineOutcome(partition_key, False, failures, None, None, extracted=extracted)
    retrain = run_job(
        retrain_job.name,
        resources,
        dagster_instance,
        _config_for(run_config, {a.key.to_user_string() for a in ASSETS} - {"interactions"}),
        {PARTITION_TAG: partition_key},
    )
    failures += _failures(retrain)
    artifacts: ArtifactStore = resources["artifacts"]
    layout = artifacts.layout(retrain.dagster_run)
    evaluation_uri = layout.model_evaluation(partition_key).metrics
    report_uri = layout.trained_model(partition_key).report
    bundle_uri = layout.model_bundle(partition_key).ref
    bundle_written = any(
        e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION and e.asset_key == dg.AssetKey("model_bundle")
        for e in retrain.all_events
    )
    skipped = next(
        (
            str(event.asset_observation_data.asset_observation.metadata["skipped"].value)
            for event in retrain.all_events
            if event.event_type == dg.DagsterEventType.ASSET_OBSERVATION
            and event.asset_key == dg.AssetKey("trained_model")
            and "skipped" in event.asset_observation_data.asset_observation.metadata
        ),
        None,
    )
    return PipelineOutcome(
        skipped=skipped,
        extracted=extracted,
        partition_key=partition_key,
        success=retrain.success and not failures,
        failures=failures,
        evaluation=EvaluationResult.from_json(storage.read_bytes(evaluation_uri))
        if storage.exists(evaluation_uri)
        else None,
        bundle=BundleRef.from_json(storage.read_bytes(bundle_uri)) if bundle_written else None,
        report=TrainingReport.from_json(storage.read_bytes(report_uri)) if storage.exists(report_uri) else None,
    )


def materialize_delivery(
    partition_key: str, resources: Mapping[str, Any], dagster_instance: dg.DagsterInstance | None = None
) -> list[str]:
    """The released champion's lists of the day before `partition_key` and of that day, and the outcome of the
    first measured on the second (the delivery job's assets, one run per day); the failures, if any."""
    dagster_instance = dagster_instance or instance()
    failures: list[str] = []
    before = (date.fromisoformat(partition_key) - timedelta(days=1)).isoformat()
    days = [before, partition_key] if daily_partitions.has_partition_key(before) else [partition_key]
    for day in days:
        result = run_job(delivery_job.name, resources, dagster_instance, {}, {PARTITION_TAG: day})
        failures += _failures(result)
    return failures
