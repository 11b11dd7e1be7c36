"""The versioned model bundle in the model store, and the release that promotes it."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from recsys_assets.domain import storage
from recsys_assets.domain.bundle import (
    build_manifest,
    bundle_files,
    comparison_table,
    model_card,
    new_version,
    pull_request_body,
)
from recsys_assets.domain.layout import BundleFile, ModelStoreKeys
from recsys_assets.domain.records import BundleRef, DagsterRun, EvaluationResult, Manifest, TrainingReport
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import ModelStore, sha256
from recsys_assets.resources.release import ReleaseProposal, ReleasePublisher
from recsys_assets.resources.training_launcher import TrainingLauncher
from recsys_assets.settings import SETTINGS, code_version

CHECK_NOT_WORSE_THAN_CHAMPION = "not_worse_than_champion"


class BundleConfig(dg.Config):
    champion_tolerance: float = Field(
        default=0.02,
        description="The release is blocked when the new model's NDCG@k is more than this fraction below the champion's.",
    )


def champion_check(evaluation: EvaluationResult, tolerance: float) -> tuple[bool, str]:
    """Whether the challenger is within `tolerance` of the champion's NDCG@k, and why."""
    ndcg = f"ndcg@{evaluation.k}"
    champion = evaluation.champion
    if champion is None:
        return True, "no champion promoted yet: the first model is released"
    floor = champion.metrics[ndcg] * (1 - tolerance)
    challenger = evaluation.model[ndcg]
    passed = challenger >= floor
    return passed, (
        f"challenger {ndcg} {challenger:.4f} {'>=' if passed else '<'} {floor:.4f} "
        f"(champion {champion.version} {champion.metrics[ndcg]:.4f} - {tolerance:.0%})"
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=["model_evaluation"],
    group_name="release",
    kinds={"s3"},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_NOT_WORSE_THAN_CHAMPION,
            asset="model_bundle",
            blocking=True,
            description="The new model is not worse than the promoted champion on NDCG@k beyond the tolerance; "
            "the release is blocked otherwise.",
        )
    ],
)
def model_bundle(
    context: dg.AssetExecutionContext,
    config: BundleConfig,
    artifacts: ArtifactStore,
    model_store: ModelStore,
    training_launcher: TrainingLauncher,
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Write-once, versioned model bundle: factors, id maps, model card and manifest.json."""
    key = context.partition_key
    layout = artifacts.layout
    evaluation = EvaluationResult.from_json(storage.read_bytes(layout.model_evaluation(key).metrics))
    trained = layout.als_model(key)
    report = TrainingReport.from_json(storage.read_bytes(trained.report))
    now = datetime.now(UTC)
    version = new_version(now, context.run.run_id)
    manifest = build_manifest(
        model_name=SETTINGS.model_name,
        version=version,
        created_at=now,
        code_version=code_version(),
        image=training_launcher.image,
        evaluation=evaluation,
        report=report,
        run=DagsterRun(run_id=context.run.run_id, partition=key),
    )
    comparison = comparison_table(evaluation)
    training_files = layout.training_set(key)
    files = bundle_files(
        manifest,
        comparison,
        # The gating protocol's model: the one the evaluation scored, and serving reproduces.
        model=storage.read_bytes(trained.model(evaluation.protocol)),
        user_ids=storage.read_bytes(training_files.user_ids),
        item_ids=storage.read_bytes(training_files.item_ids),
        report=report,
    )
    uri = model_store.publish_bundle(SETTINGS.model_name, version, files, manifest.model_dump(mode="json"))
    storage.write_bytes(layout.model_bundle(key).ref, BundleRef(version=version, uri=uri).to_json())
    context.log.info(f"bundle {SETTINGS.model_name}/{version} written to {uri}")

    passed, description = champion_check(evaluation, config.champion_tolerance)
    yield dg.AssetCheckResult(
        check_name=CHECK_NOT_WORSE_THAN_CHAMPION,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
    )
    yield dg.MaterializeResult(
        metadata={
            "version": version,
            "uri": dg.MetadataValue.url(uri) if "://" in uri else dg.MetadataValue.path(uri),
            "family": manifest.model.family,
            "model_card": dg.MetadataValue.md(model_card(manifest, comparison, report)),
            **{f"model_{name}": value for name, value in comparison["model"].items()},
            "code_version": manifest.code_version or "unknown",
            "image": manifest.image or "local",
            "credentials_used": dg.MetadataValue.json(model_store.secret_references()),
        }
    )


class ReleaseConfig(dg.Config):
    pointer_path: str = Field(
        default=f"models/{SETTINGS.model_name}.json",
        description="Path, in the serving repository, of the file that names the served model version.",
    )


@dg.asset(partitions_def=daily_partitions, deps=["model_bundle"], group_name="release", kinds={"github"})
def model_release(
    context: dg.AssetExecutionContext,
    config: ReleaseConfig,
    artifacts: ArtifactStore,
    model_store: ModelStore,
    release_publisher: ReleasePublisher,
) -> dg.MaterializeResult:
    """Release pull request that points serving at the new bundle, then records it as the champion."""
    bundle = BundleRef.from_json(storage.read_bytes(artifacts.layout.model_bundle(context.partition_key).ref))
    name, version = SETTINGS.model_name, bundle.version
    # One read: the pointer pins the exact manifest bytes the metrics below come from.
    manifest_bytes = model_store.get_object(ModelStoreKeys(name).manifest(version))
    if manifest_bytes is None:
        raise dg.Failure(f"bundle {name}/{version} has no manifest in the model store: it was never completed")
    manifest = Manifest.from_json(manifest_bytes)
    champion = model_store.read_champion(name)
    champion_raw = model_store.read_manifest(name, champion["version"]) if champion else None
    champion_manifest = Manifest.from_dict(champion_raw) if champion_raw else None
    pointer = {
        "model_name": name,
        "version": version,
        "uri": bundle.uri,
        # Serving verifies the bundle against this before loading it.
        "manifest_sha256": sha256(manifest_bytes),
        "metrics": manifest.metrics.model,
    }
    proposal = ReleaseProposal(
        model_name=name,
        version=version,
        pointer_path=config.pointer_path,
        pointer_content=json.dumps(pointer, indent=2) + "\n",
        title=f"Release {name} {version}",
        body=pull_request_body(manifest, champion_manifest, storage.join(bundle.uri, BundleFile.MODEL_CARD)),
    )
    result = release_publisher.propose(proposal)
    model_store.write_champion(name, version, release=result.url)
    context.log.info(f"release {'opened' if result.created else 'already open'}: {result.url}")
    return dg.MaterializeResult(
        metadata={
            "version": version,
            "pull_request": dg.MetadataValue.url(result.url)
            if "://" in result.url
            else dg.MetadataValue.path(result.url),
            "created": result.created,
            "previous_champion": champion["version"] if champion else "none",
            "credentials_used": dg.MetadataValue.json(release_publisher.secret_references()),
            "body": dg.MetadataValue.md(proposal.body),
        }
    )
