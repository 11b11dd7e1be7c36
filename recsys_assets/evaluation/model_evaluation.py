"""Offline evaluation of the selected model against its baselines (and the champion), under every protocol."""

from collections.abc import Iterator

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.domain import serving, storage
from recsys_assets.domain.bootstrap import paired_lift
from recsys_assets.domain.champion import score_champion, shared_items
from recsys_assets.domain.evaluation import champion_comparison, score_protocol
from recsys_assets.domain.families.registry import BASELINES, load_model
from recsys_assets.domain.item_side import ItemSource
from recsys_assets.domain.layout import BundleFile, ModelStoreKeys
from recsys_assets.domain.records import EvaluationResult, Manifest, ModelSpec, ProtocolResult, TrainingReport
from recsys_assets.domain.reports import evaluation_tables, gated_lifts
from recsys_assets.domain.serving import Bundle, open_bundle
from recsys_assets.domain.splitting import TrainingSet
from recsys_assets.evaluation.checks import BEATS_BASELINES
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import BundleIntegrityError, ModelStore
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


class ChampionUnreadableError(RuntimeError):
    """The champion pointer or bundle cannot be used: the comparison is impossible, not failed."""


def load_champion(store: ModelStore, model_name: str, protocol: str) -> Bundle | None:
    """The promoted bundle, verified and loaded as serving loads it, or None when nothing is promoted yet.

    The model loaded is the one the champion's own `protocol` evaluation scored: its served refit saw
    the latest days, which the new holdout covers. Bundles from before the refit have only `model.npz`,
    which was the evaluated model.

    Raises:
        ChampionUnreadableError: the pointer or manifest is unreadable, or a file is missing or does
            not match its checksum. Errors reaching the store itself are not caught: they are outages.
    """
    try:
        pointer = store.read_champion(model_name)
        if pointer is None:
            return None
        version = pointer["version"]
        keys = ModelStoreKeys(model_name)

        def read(name: str) -> bytes:
            data = store.get_object(keys.bundle_file(version, name))
            if data is None:
                raise FileNotFoundError(f"the champion {model_name}/{version} has no {name} in {store.uri('')}")
            return data

        manifest = Manifest.from_json(read(BundleFile.MANIFEST))
        evaluated = BundleFile.evaluated(protocol) in manifest.files
        return open_bundle(store.uri(keys.bundle_prefix(version)), read, protocol if evaluated else None)
    except (
        FileNotFoundError,
        BundleIntegrityError,
        serving.BundleIntegrityError,
        KeyError,
        TypeError,
        ValueError,
        pa.ArrowInvalid,
    ) as exc:
        raise ChampionUnreadableError(f"{type(exc).__name__}: {exc}") from exc


def baseline_configuration(model: ModelSpec) -> str | None:
    """The baseline whose family and parameters the model has (the gate does not compare it with itself), or None."""
    return next(
        (name for name, (family, params) in BASELINES.items() if ModelSpec(family=family, params=params) == model),
        None,
    )


def item_source(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> ItemSource | None:
    """This partition's item features with each posting's open window, or None without a catalogue."""
    layout = artifacts.optional_layout_of(context, "item_features")
    return None if layout is None else ItemSource.load(layout.item_features(context.partition_key))


@dg.asset(
    partitions_def=daily_partitions,
    deps=["trained_model", "baseline_models", "item_features"],
    group_name=GROUP,
    **asset_attributes("model_store", extra_kinds=("python",)),
    check_specs=[BEATS_BASELINES.spec],
)
@guarded_step
def model_evaluation(
    context: dg.AssetExecutionContext, config: EvaluationConfig, artifacts: ArtifactStore, model_store: ModelStore
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Ranking metrics of the model and each baseline under every protocol, and of the champion."""
    key = context.partition_key
    k = config.k
    data = TrainingSet.load(artifacts.layout_of(context, "training_set").training_set(key))
    trained = artifacts.layout_of(context, "trained_model").trained_model(key)
    report = TrainingReport.from_json(storage.read_bytes(trained.report))
    baselines = artifacts.layout_of(context, "baseline_models").baseline_models(key)
    source = item_source(context, artifacts)
    posted = np.full(len(data.item_ids), np.nan) if source is None else source.side(data.item_ids, None).posted
    protocols: dict[str, ProtocolResult] = {}
    closed_at: dict[str, np.ndarray | None] = {}
    model_by_user: dict[str, np.ndarray] = {}
    for protocol, split in data.protocols.items():
        # Every model, baselines included, is scored without the postings closed at the protocol's cut.
        closed_at[protocol] = None if source is None else source.side(data.item_ids, split.train_reference_day).closed
        result, by_user = score_protocol(
            split,
            load_model(report.model.family, report.model.params, storage.read_bytes(trained.model(protocol))),
            {
                name: load_model(family, params, storage.read_bytes(baselines.model(f"{name}_{protocol}")))
                for name, (family, params) in BASELINES.items()
            },
            k=k,
            posted=posted,
            new_item_days=config.new_item_days,
            closed=closed_at[protocol],
        )
        protocols[protocol], model_by_user[protocol] = result, by_user
        scores = {"model": result.model, **result.baselines}
        context.log.info(
            f"{protocol}: "
            + ", ".join(f"{name} ndcg@{k} {metrics[f'ndcg@{k}']:.4f}" for name, metrics in scores.items())
        )
    gated = protocols[report.protocol]
    gated_split = data.protocols[report.protocol]

    unavailable = None
    try:
        champion_bundle = load_champion(model_store, SETTINGS.model_name, report.protocol)
    except ChampionUnreadableError as exc:
        champion_bundle, unavailable = None, f"the champion cannot be read ({exc})"
        context.log.warning(f"comparison with the champion impossible: {unavailable}")
    champion, shared, champion_lift = None, None, None
    if champion_bundle is not None:
        champion, champion_by_user = score_champion(
            champion_bundle,
            gated_split.train,
            gated_split.holdout,
            data.user_ids,
            data.item_ids,
            k,
            excluded=closed_at[report.protocol],
        )
        shared = shared_items(champion_bundle.item_ids, data.item_ids)
        champion_lift = paired_lift(model_by_user[report.protocol], champion_by_user)
        context.log.info(
            f"champion {champion.version} ({report.protocol}): ndcg@{k} {champion.metrics[f'ndcg@{k}']:.4f}, "
            f"model's lift {champion_lift.text()} over {champion_lift.users:,} users"
        )
        if shared == 0:
            context.log.warning(
                f"champion {champion.version} shares no items with this training set: scored as no overlap "
                "(every metric 0)"
            )

    evaluation = EvaluationResult(
        k=k,
        protocol=report.protocol,
        model=gated.model,
        baselines=gated.baselines,
        champion=champion,
        holdout=gated.holdout,
        protocols=protocols,
        training_set=data.summary,
        champion_shared_items=shared,
        champion_unavailable=unavailable,
        champion_lift=champion_lift,
        same_as=baseline_configuration(report.model),
    )
    metrics_uri = artifacts.layout(context.run).model_evaluation(key).metrics
    storage.write_bytes(metrics_uri, evaluation.to_json())

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
            "champion_version": champion.version if champion else "none",
            "champion_comparison": champion_comparison(evaluation),
            **{
                name: dg.MetadataValue.md(table)
                for name, table in evaluation_tables(evaluation, report.model.family).items()
            },
            "path": dg.MetadataValue.path(metrics_uri),
        }
    )
    yield BEATS_BASELINES(evaluation, config.min_relative_lift, config.baseline_tolerance)
