"""Offline evaluation of the selected model against its baselines (and the champion), under every protocol."""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.domain import storage
from recsys_assets.domain.evaluation import champion_comparison
from recsys_assets.domain.families.registry import BASELINES
from recsys_assets.domain.layout import BundleFile, ModelStoreKeys
from recsys_assets.domain.records import EvaluationRequest, EvaluationResult, Manifest, ModelSpec, TrainingReport
from recsys_assets.domain.reports import evaluation_tables, gated_lifts
from recsys_assets.evaluation.checks import BEATS_BASELINES
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import BundleIntegrityError, ModelStore
from recsys_assets.resources.training_launcher import TrainingLauncher, refusal
from recsys_assets.settings import SETTINGS
from recsys_assets.step_errors import guarded_step


class EvaluationConfig(dg.Config):
    k: int = Field(default=10, ge=1, le=1000, description="Cut-off of every ranking metric.")
    new_item_days: int = Field(
        default=7, ge=1, le=365, description="Items posted fewer days ago than this count as new (slot share)."
    )
    baseline_tolerance: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="The release is blocked when the model's NDCG@k is significantly (95% paired interval) more "
        "than this fraction below a baseline's.",
    )
    min_relative_lift: float | None = Field(
        default=None,
        ge=-1,
        le=10,
        description="When set, the model's NDCG@k must also be significantly (95% paired interval) more than this "
        "fraction above each baseline's (0.05 = 5%).",
    )


def stage_champion(store: ModelStore, model_name: str, folder: str) -> tuple[str | None, str | None]:
    """Copy the promoted bundle's files into `folder` for the evaluation step, one file at a time.

    Returns the folder (None when nothing is promoted yet) and why the champion cannot be compared
    (None when it could be staged). The evaluation step verifies the files against the manifest's
    checksums, as serving does. Errors reaching the store itself are not caught: they are outages.
    """
    try:
        pointer = store.read_champion(model_name)
        if pointer is None:
            return None, None
        version = pointer["version"]
        keys = ModelStoreKeys(model_name)

        def read(name: str) -> bytes:
            data = store.get_object(keys.bundle_file(version, name))
            if data is None:
                raise FileNotFoundError(f"the champion {model_name}/{version} has no {name} in {store.uri('')}")
            return data

        raw = read(BundleFile.MANIFEST)
        manifest = Manifest.from_json(raw)
        storage.write_bytes(storage.join(folder, BundleFile.MANIFEST), raw)
        for name in manifest.files:
            storage.write_bytes(storage.join(folder, name), read(name))
        return folder, None
    except (FileNotFoundError, BundleIntegrityError, KeyError, TypeError, ValueError) as exc:
        return None, f"the champion cannot be read ({type(exc).__name__}: {exc})"


def baseline_configuration(model: ModelSpec) -> str | None:
    """The baseline whose family and parameters the model has (the gate does not compare it with itself), or None."""
    return next(
        (name for name, (family, params) in BASELINES.items() if ModelSpec(family=family, params=params) == model),
        None,
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=["trained_model", "baseline_models", "item_features"],
    group_name=GROUP,
    **asset_attributes("model_store", extra_kinds=("python",)),
    check_specs=[BEATS_BASELINES.spec],
)
@guarded_step
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    artifacts: ArtifactStore,
    model_store: ModelStore,
    training_launcher: TrainingLauncher,
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Ranking metrics of the model and each baseline under every protocol, and of the champion."""
    key = context.partition_key
    k = config.k
    trained = artifacts.layout_of(context, "trained_model").trained_model(key)
    report = TrainingReport.from_json(storage.read_bytes(trained.report))
    files = artifacts.layout(context.run).model_evaluation(key)
    champion, unavailable = stage_champion(model_store, SETTINGS.model_name, files.champion)
    if unavailable is not None:
        context.log.warning(f"comparison with the champion impossible: {unavailable}")
    item_features = artifacts.optional_layout_of(context, "item_features")
    request = EvaluationRequest(
        training_set=artifacts.layout_of(context, "training_set").training_set(key).folder,
        trained_model=trained.folder,
        baselines=artifacts.layout_of(context, "baseline_models").baseline_models(key).folder,
        item_features=None if item_features is None else item_features.item_features(key).folder,
        output=files.metrics,
        plot=files.plot,
        k=k,
        new_item_days=config.new_item_days,
        champion=champion,
        champion_unavailable=unavailable,
        same_as=baseline_configuration(report.model),
    )
    # Scored where the model was trained: the matrices never enter this process.
    refused = refusal(training_launcher.launch(context, request.to_extras()))
    if refused is not None:
        raise dg.Failure(description=f"evaluation refused: {refused}", allow_retries=False)
    evaluation = EvaluationResult.from_json(storage.read_bytes(files.metrics))
    gated, protocols = evaluation.protocols[evaluation.protocol], evaluation.protocols
    metrics_uri = files.metrics

    ndcg = f"ndcg@{k}"
    # The materialization first: the check result then attaches to this run's materialization.
    yield dg.MaterializeResult(
        metadata={
            **{name: round(value, 4) for name, value in gated.model.items()},
            "protocol": report.protocol,
            "family": report.model.family,
            **{f"{name}_{ndcg}": round(metrics[ndcg], 4) for name, metrics in gated.baselines.items()},
            **{f"{protocol}_model_{ndcg}": round(result.model[ndcg], 4) for protocol, result in protocols.items()},
            **{
                f"{protocol}_cold_item_recall@{k}": round(result.cold_items["model"][f"recall@{k}"], 4)
                for protocol, result in protocols.items()
            },
            "holdout_users": gated.holdout.users,
            **{f"lift_over_{name}": lift.text() for name, lift in gated_lifts(evaluation).items()},
            "new_item_share": round(gated.new_item_share.get("model", 0.0), 4),
            "champion_version": evaluation.champion.version if evaluation.champion else "none",
            "champion_comparison": champion_comparison(evaluation),
            **{
                name: dg.MetadataValue.md(table)
                for name, table in evaluation_tables(evaluation, report.model.family).items()
            },
            "path": dg.MetadataValue.path(metrics_uri),
        }
    )
    yield BEATS_BASELINES(evaluation, config.min_relative_lift, config.baseline_tolerance)
