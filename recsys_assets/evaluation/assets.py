"""Offline evaluation of the model against its baselines (and the current champion) on one holdout."""

import io
from collections.abc import Iterator

import dagster as dg
import numpy as np
import pyarrow as pa
from pydantic import Field

from recsys_assets.catalog import GROUP, asset_attributes
from recsys_assets.domain import storage
from recsys_assets.domain.champion import ChampionModel, score_champion, shared_items
from recsys_assets.domain.layout import BundleFile
from recsys_assets.domain.metrics import evaluate, metrics_table
from recsys_assets.domain.recommenders import als_from_bytes, knn_from_bytes, ranker
from recsys_assets.domain.records import EvaluationResult, HoldoutSize, Manifest
from recsys_assets.domain.splitting import TrainingSet
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import BundleIntegrityError, ModelStore
from recsys_assets.settings import SETTINGS

CHECK_BEATS_POPULARITY = "beats_popularity"


class EvaluationConfig(dg.Config):
    k: int = Field(default=10, ge=1, le=1000, description="Cut-off of every ranking metric.")
    min_relative_lift: float = Field(
        default=0.05,
        ge=-1,
        le=10,
        description="The model's NDCG@k must exceed popularity's by this fraction (0.05 = 5%).",
    )


class ChampionUnreadableError(RuntimeError):
    """The champion pointer or bundle cannot be used: the comparison is impossible, not failed."""


def load_champion(store: ModelStore, model_name: str) -> ChampionModel | None:
    """The promoted bundle's item factors, ids and parameters, or None when nothing is promoted yet.

    Raises:
        ChampionUnreadableError: the pointer or manifest is unreadable, or a file is missing or does
            not match its checksum. Errors reaching the store itself are not caught: they are outages.
    """
    try:
        pointer = store.read_champion(model_name)
        if pointer is None:
            return None
        version = pointer["version"]
        raw_manifest = store.read_manifest(model_name, version)
        if raw_manifest is None:
            raise FileNotFoundError(f"the champion {model_name}/{version} has no manifest in {store.uri('')}")
        manifest = Manifest.from_dict(raw_manifest)
        return ChampionModel(
            version=version,
            item_factors=np.load(
                io.BytesIO(store.read_file(model_name, version, BundleFile.ITEM_FACTORS)), allow_pickle=False
            ),
            item_ids=storage.table_from_bytes(store.read_file(model_name, version, BundleFile.ITEM_IDS))[
                "item_id"
            ].combine_chunks(),
            params=manifest.model.params,
        )
    except (FileNotFoundError, BundleIntegrityError, KeyError, TypeError, ValueError, pa.ArrowInvalid) as exc:
        raise ChampionUnreadableError(f"{type(exc).__name__}: {exc}") from exc


def champion_comparison(evaluation: EvaluationResult) -> str:
    """One line on how the champion was compared: scored, scored with no overlap, impossible, or none yet."""
    champion = evaluation.champion
    if evaluation.champion_unavailable:
        return f"impossible: {evaluation.champion_unavailable}"
    if champion is None:
        return "no champion promoted yet"
    if evaluation.champion_shared_items == 0:
        return f"champion {champion.version} shares no items with the new data: scored as no overlap (metrics 0)"
    return f"champion {champion.version} scored on {evaluation.champion_shared_items} shared items"


@dg.asset(
    partitions_def=daily_partitions,
    deps=["als_model", "baseline_models"],
    group_name=GROUP,
    **asset_attributes("model_store", extra_kinds=("python",)),
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_BEATS_POPULARITY,
            asset="model_evaluation",
            partitions_def=daily_partitions,
            blocking=True,
            description="The model beats the popularity baseline on NDCG@k by the configured margin; "
            "no bundle is written otherwise.",
        )
    ],
)
def model_evaluation(
    context: dg.AssetExecutionContext, config: EvaluationConfig, artifacts: ArtifactStore, model_store: ModelStore
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Precision, recall, NDCG and MAP at k plus coverage for the model, each baseline and the champion."""
    key = context.partition_key
    data = TrainingSet.load(artifacts.layout_of(context, "training_set").training_set(key))
    baselines = artifacts.layout_of(context, "baseline_models").baseline_models(key)
    models = {
        "model": als_from_bytes(storage.read_bytes(artifacts.layout_of(context, "als_model").als_model(key).model)),
        "popularity": als_from_bytes(storage.read_bytes(baselines.model("popularity"))),
        "item_knn": knn_from_bytes(storage.read_bytes(baselines.model("item_knn"))),
    }
    results = {}
    for name, model in models.items():
        results[name] = evaluate(ranker(model, data.train, config.k), data.holdout, config.k)
        context.log.info(
            f"evaluated {name} on {results[name]['users_evaluated']:,} users: ndcg@{config.k} "
            f"{results[name][f'ndcg@{config.k}']:.4f}"
        )
    unavailable = None
    try:
        champion_model = load_champion(model_store, SETTINGS.model_name)
    except ChampionUnreadableError as exc:
        champion_model, unavailable = None, f"the champion cannot be read ({exc})"
        context.log.warning(f"comparison with the champion impossible: {unavailable}")
    champion = score_champion(champion_model, data, config.k) if champion_model else None
    shared = shared_items(champion_model, data) if champion_model else None
    if champion is not None:
        context.log.info(f"champion {champion.version}: ndcg@{config.k} {champion.metrics[f'ndcg@{config.k}']:.4f}")
        if shared == 0:
            context.log.warning(
                f"champion {champion.version} shares no items with this training set: scored as no overlap "
                "(every metric 0)"
            )

    evaluation = EvaluationResult(
        k=config.k,
        model=results["model"],
        baselines={name: m for name, m in results.items() if name != "model"},
        champion=champion,
        holdout=HoldoutSize(users=int(results["model"]["users_evaluated"]), pairs=int(data.holdout.nnz)),
        training_set=data.summary,
        champion_shared_items=shared,
        champion_unavailable=unavailable,
    )
    metrics_uri = artifacts.layout(context.run).model_evaluation(key).metrics
    storage.write_bytes(metrics_uri, evaluation.to_json())

    ndcg = f"ndcg@{config.k}"
    model_ndcg, popularity_ndcg = results["model"][ndcg], results["popularity"][ndcg]
    required = popularity_ndcg * (1 + config.min_relative_lift)
    passed = model_ndcg > required
    # The materialization first: the check result then attaches to this run's materialization.
    table = {**results, **({f"champion ({champion.version})": champion.metrics} if champion else {})}
    yield dg.MaterializeResult(
        metadata={
            **{name: round(value, 4) for name, value in results["model"].items()},
            f"popularity_{ndcg}": round(popularity_ndcg, 4),
            f"item_knn_{ndcg}": round(results["item_knn"][ndcg], 4),
            "champion_version": champion.version if champion else "none",
            "champion_comparison": champion_comparison(evaluation),
            "metrics": dg.MetadataValue.md(metrics_table(table)),
            "path": dg.MetadataValue.path(metrics_uri),
        }
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_BEATS_POPULARITY,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"model {ndcg} {model_ndcg:.4f} {'>' if passed else '<='} required {required:.4f} "
            f"(popularity {popularity_ndcg:.4f} + {config.min_relative_lift:.0%})"
        ),
        # Numbers, so the UI plots them over partitions.
        metadata={
            "challenger": round(model_ndcg, 4),
            "popularity": round(popularity_ndcg, 4),
            "required": round(required, 4),
            "margin": config.min_relative_lift,
        },
    )
