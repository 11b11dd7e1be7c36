"""The release that promotes a bundle: a pull request whose merge makes it the champion."""

from typing import Annotated

import dagster as dg
from pydantic import AfterValidator, Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.domain import storage
from recsys_assets.domain.layout import serving_pointer_path
from recsys_assets.domain.names import safe_relative_path
from recsys_assets.domain.records import BundleRef
from recsys_assets.domain.registry import TransitionError, champion_of
from recsys_assets.domain.reports import versions_table
from recsys_assets.partitions import daily_partitions
from recsys_assets.release.model_bundle import RELEASE_TAG
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.resources.registry import ModelRegistry, Transition, UnknownVersionError, propose_release
from recsys_assets.resources.release import ReleasePublisher
from recsys_assets.resources.tracking import ExperimentTracker
from recsys_assets.settings import SETTINGS
from recsys_assets.step_errors import guarded_step


def release_observation(registry: ModelRegistry, transition: Transition) -> dg.AssetObservation:
    """A registry change (merge, reject, rollback, proposal) as an observation of the version's `model_release`.

    The CLI and the release sensor record one per change, so the asset shows the new state and
    champion at once instead of the last run's.
    """
    statuses = registry.statuses()
    status, champion = statuses.get(transition.version), champion_of(statuses)
    return dg.AssetObservation(
        asset_key="model_release",
        partition=registry.manifest(transition.version).dagster.partition,
        metadata={
            "version": transition.version,
            "state": transition.state,
            "reason": transition.reason,
            "champion": champion.version if champion else "none",
            "pending": dg.MetadataValue.json(sorted(v for v, s in statuses.items() if s.state == "proposed")),
            "pull_request": (status.pull_request if status else None) or "none",
        },
    )


class ReleaseConfig(dg.Config):
    pointer_path: Annotated[str, AfterValidator(lambda value: safe_relative_path(value, "pointer_path"))] = Field(
        default=serving_pointer_path(SETTINGS.model_name),
        description="Path, in the serving repository, of the file that names the served model version.",
    )
    versions_shown: int = Field(default=10, description="How many recent versions the registry table shows.")


@dg.asset(
    partitions_def=daily_partitions,
    deps=["model_bundle"],
    group_name=GROUP,
    **asset_attributes("release_publisher", "model_store"),
    retry_policy=SERVICE_RETRY_POLICY,
)
@guarded_step
def model_release(
    context: dg.AssetExecutionContext,
    config: ReleaseConfig,
    artifacts: ArtifactStore,
    model_store: ModelStore,
    release_publisher: ReleasePublisher,
    tracker: ExperimentTracker,
) -> dg.MaterializeResult:
    """Release pull request that proposes the new bundle; the champion moves only once it is merged."""
    bundle = BundleRef.from_json(
        storage.read_bytes(artifacts.layout_of(context, "model_bundle").model_bundle(context.partition_key).ref)
    )
    registry = ModelRegistry(model_store, SETTINGS.model_name, tracker)
    reviewed = registry.status(bundle.version)
    if reviewed is not None and reviewed.state != "proposed":
        # A rerun after the review: proposing this version again is a decision for `models promote`.
        url, created = reviewed.pull_request or "none", False
        context.log.info(f"{bundle.version} is already {reviewed.state}; no new release proposed")
    else:
        try:
            result = propose_release(
                registry, release_publisher, bundle.version, config.pointer_path, f"run {context.run.run_id}"
            )
        except (UnknownVersionError, TransitionError) as exc:
            raise dg.Failure(str(exc)) from None
        url, created = result.url, result.created
        context.log.info(f"release {'opened' if created else 'already open'}: {url}")
    statuses = registry.statuses()
    context.instance.add_run_tags(context.run.run_id, {RELEASE_TAG: statuses[bundle.version].state})
    champion = champion_of(statuses)
    for note in registry.quarantined:
        context.log.warning(note.line())
    return dg.MaterializeResult(
        metadata={
            "version": bundle.version,
            "state": statuses[bundle.version].state,
            "pull_request": dg.MetadataValue.url(url) if "://" in url else dg.MetadataValue.path(url),
            "created": created,
            "champion": champion.version if champion else "none",
            "pending": dg.MetadataValue.json(sorted(v for v, s in statuses.items() if s.state == "proposed")),
            "versions": dg.MetadataValue.md(versions_table(statuses, config.versions_shown)),
            "credentials_used": dg.MetadataValue.json(release_publisher.secret_references()),
            # Registry records found unreadable on the way (moved aside or skipped), by path and version.
            "unreadable_records": dg.MetadataValue.json([note.line() for note in registry.quarantined]),
        }
    )
