"""The versioned model bundle in the model store, gated by the champion comparison."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.domain import storage
from recsys_assets.domain.bundle import build_manifest, bundle_files, new_version
from recsys_assets.domain.layout import BundleFile
from recsys_assets.domain.records import BundleRef, DagsterRun, EvaluationResult, TrainingReport
from recsys_assets.domain.reports import comparison_table, metrics_plot, model_card, png_data_uri
from recsys_assets.partitions import daily_partitions
from recsys_assets.release.checks import NOT_WORSE_THAN_CHAMPION
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.resources.tracking import ExperimentTracker
from recsys_assets.resources.training_launcher import TrainingLauncher
from recsys_assets.settings import SETTINGS, code_version
from recsys_assets.step_errors import guarded_step


class BundleConfig(dg.Config):
    champion_tolerance: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="The release is blocked when the new model's NDCG@k is more than this fraction below the champion's.",
    )


# The release outcome of a run, for the runs list: "blocked", or the version's state once proposed.
RELEASE_TAG = "recsys/release"


def item_transformer(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> str | None:
    """Where this partition's fitted item feature transformer is (a bundle carries it), or None when none was built."""
    layout = artifacts.optional_layout_of(context, "item_features")
    if layout is None:
        return None
    files = layout.item_features(context.partition_key)
    return files.transformer if storage.exists(files.transformer) else None


@dg.asset(
    partitions_def=daily_partitions,
    deps=["model_evaluation"],
    group_name=GROUP,
    **asset_attributes("model_store"),
    retry_policy=SERVICE_RETRY_POLICY,
    check_specs=[NOT_WORSE_THAN_CHAMPION.spec],
)
@guarded_step
def model_bundle(
    context: dg.AssetExecutionContext,
    config: BundleConfig,
    artifacts: ArtifactStore,
    model_store: ModelStore,
    training_launcher: TrainingLauncher,
    tracker: ExperimentTracker,
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Write-once, versioned model bundle: factors, id maps, model card and manifest.json."""
    key = context.partition_key
    evaluation_files = artifacts.layout_of(context, "model_evaluation").model_evaluation(key)
    evaluation = EvaluationResult.from_json(storage.read_bytes(evaluation_files.metrics))
    trained = artifacts.layout_of(context, "trained_model").trained_model(key)
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
    training_files = artifacts.layout_of(context, "training_set").training_set(key)
    transformer = item_transformer(context, artifacts)
    plot = (
        # Drawn by the evaluation step; an evaluation from before it drew one gets it drawn here.
        storage.read_bytes(evaluation_files.plot) if storage.exists(evaluation_files.plot) else metrics_plot(comparison)
    )
    files = bundle_files(
        manifest,
        comparison,
        report,
        plot,
        stored={
            # Served: the refit on the whole window; kept beside it, each protocol's scored model.
            BundleFile.MODEL: trained.served_model,
            **{BundleFile.evaluated(protocol): trained.model(protocol) for protocol in evaluation.protocols},
            BundleFile.USER_IDS: training_files.user_ids,
            BundleFile.ITEM_IDS: training_files.item_ids,
            # What each user saw in the served model's window: the online service excludes it and ranks from it.
            # Written by the split step as it is shipped, so the matrix is never rebuilt here.
            BundleFile.HISTORY: training_files.history,
            **({BundleFile.ITEM_TRANSFORMER: transformer} if transformer is not None else {}),
        },
    )
    uri = model_store.publish_bundle(SETTINGS.model_name, version, files, manifest.model_dump(mode="json"))
    storage.write_bytes(
        artifacts.layout(context.run).model_bundle(key).ref, BundleRef(version=version, uri=uri).to_json()
    )
    context.log.info(f"bundle {SETTINGS.model_name}/{version} written to {uri}")
    tracker.log_version(manifest, report, uri)

    check = NOT_WORSE_THAN_CHAMPION(evaluation, config.champion_tolerance)
    blocked = not check.passed
    # The materialization first: the check result then attaches to this run's materialization.
    yield dg.MaterializeResult(
        metadata={
            "version": version,
            "release_blocked": blocked,
            "uri": dg.MetadataValue.url(uri) if "://" in uri else dg.MetadataValue.path(uri),
            "family": manifest.model.family,
            # The plot inline: a relative link to the bundle's metrics.png would be a broken image in the UI.
            "model_card": dg.MetadataValue.md(model_card(manifest, comparison, report, plot_src=png_data_uri(plot))),
            "metrics_plot": dg.MetadataValue.md(f"![metrics]({png_data_uri(plot)})"),
            **{f"model_{name}": round(value, 4) for name, value in comparison["model"].items()},
            "code_version": manifest.code_version or "unknown",
            "image": manifest.image or "local",
            "credentials_used": dg.MetadataValue.json(model_store.secret_references()),
        }
    )
    yield check
    if blocked:
        # Said in the run's tags and the step error, so a blocked release reads as one, not as a crash.
        context.instance.add_run_tags(context.run.run_id, {RELEASE_TAG: "blocked"})
        raise dg.Failure(
            description=f"release blocked, bundle {version} kept but not released: {check.description}",
            metadata={"released": False, "version": version},
            # A verdict, not an outage: retrying cannot change it.
            allow_retries=False,
        )
