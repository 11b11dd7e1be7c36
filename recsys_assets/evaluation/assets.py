"""Offline evaluation of the selected model against its baselines (and the champion), under both protocols."""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from recsys_assets.domain import storage
from recsys_assets.domain.champion import score_champion
from recsys_assets.domain.families import BASELINES, load_model, rank_users
from recsys_assets.domain.layout import ModelStoreKeys
from recsys_assets.domain.metrics import evaluate, metrics_table
from recsys_assets.domain.records import EvaluationResult, HoldoutSize, ProtocolResult, TrainingReport
from recsys_assets.domain.serving import Bundle, open_bundle
from recsys_assets.domain.splitting import PROTOCOLS, TrainingSet
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.settings import SETTINGS

CHECK_BEATS_BASELINES = "beats_baselines"


class EvaluationConfig(dg.Config):
    k: int = Field(default=10, ge=1, description="Cut-off of every ranking metric.")
    min_relative_lift: float = Field(
        default=0.05,
        description="The model's NDCG@k must exceed popularity's and item-kNN's by this fraction (0.05 = 5%).",
    )


def load_champion(store: ModelStore, model_name: str) -> Bundle | None:
    """The promoted bundle, verified and loaded as serving loads it, or None when nothing is promoted yet."""
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

    return open_bundle(store.uri(keys.bundle_prefix(version)), read)


def gate(results: dict[str, dict[str, float]], k: int, lift: float) -> tuple[bool, str, dict[str, float]]:
    """Whether the model beats every baseline's NDCG@k by `lift`, why, and the numbers."""
    ndcg = f"ndcg@{k}"
    model = results["model"][ndcg]
    required = {name: results[name][ndcg] * (1 + lift) for name in BASELINES}
    passed = all(model > floor for floor in required.values())
    reasons = ", ".join(f"{name} {results[name][ndcg]:.4f} (needs > {required[name]:.4f})" for name in BASELINES)
    metadata = {f"model_{ndcg}": model} | {f"{name}_{ndcg}": results[name][ndcg] for name in BASELINES}
    metadata |= {f"required_over_{name}": floor for name, floor in required.items()}
    return (
        passed,
        f"model {ndcg} {model:.4f} {'beats' if passed else 'does not beat'} {reasons} by {lift:.0%}",
        metadata,
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=["als_model", "baseline_models"],
    group_name="evaluation",
    kinds={"python"},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_BEATS_BASELINES,
            asset="model_evaluation",
            blocking=True,
            description="On the gating protocol's holdout, the model beats popularity and item-kNN on NDCG@k by "
            "the configured margin; no bundle is written otherwise.",
        )
    ],
)
def model_evaluation(
    context: dg.AssetExecutionContext, config: EvaluationConfig, artifacts: ArtifactStore, model_store: ModelStore
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Precision, recall, NDCG and MAP at k plus coverage for the model and each baseline under both protocols, and the champion."""
    key = context.partition_key
    layout = artifacts.layout
    k = config.k
    data = TrainingSet.load(layout.training_set(key))
    trained = layout.als_model(key)
    report = TrainingReport.from_json(storage.read_bytes(trained.report))
    baselines = layout.baseline_models(key)
    protocols: dict[str, ProtocolResult] = {}
    for protocol in PROTOCOLS:
        split = data.protocol(protocol)
        models = {
            "model": load_model(report.model.family, report.model.params, storage.read_bytes(trained.model(protocol)))
        }
        for name, (family, params) in BASELINES.items():
            models[name] = load_model(family, params, storage.read_bytes(baselines.model(f"{name}_{protocol}")))
        results = {
            name: evaluate(rank_users(model, split.train, k), split.holdout, k) for name, model in models.items()
        }
        context.log.info(
            f"{protocol}: "
            + ", ".join(f"{name} ndcg@{k} {metrics[f'ndcg@{k}']:.4f}" for name, metrics in results.items())
        )
        protocols[protocol] = ProtocolResult(
            model=results["model"],
            baselines={name: results[name] for name in BASELINES},
            holdout=HoldoutSize(users=int(results["model"]["users_evaluated"]), pairs=int(split.holdout.nnz)),
        )
    gated = protocols[report.protocol]
    gated_split = data.protocol(report.protocol)
    champion_bundle = load_champion(model_store, SETTINGS.model_name)
    champion = (
        score_champion(champion_bundle, gated_split.train, gated_split.holdout, data.user_ids, data.item_ids, k)
        if champion_bundle
        else None
    )
    if champion is not None:
        context.log.info(
            f"champion {champion.version} ({report.protocol}): ndcg@{k} {champion.metrics[f'ndcg@{k}']:.4f}"
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
    )
    metrics_uri = layout.model_evaluation(key).metrics
    storage.write_bytes(metrics_uri, evaluation.to_json())

    passed, description, numbers = gate({"model": gated.model, **gated.baselines}, k, config.min_relative_lift)
    yield dg.AssetCheckResult(
        check_name=CHECK_BEATS_BASELINES,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{report.protocol}: {description}",
        metadata={**numbers, "protocol": report.protocol},
    )
    ndcg = f"ndcg@{k}"
    tables = {
        f"metrics_{protocol}": dg.MetadataValue.md(
            metrics_table(
                {"model": result.model, **result.baselines}
                | (
                    {f"champion ({champion.version})": champion.metrics}
                    if champion and protocol == report.protocol
                    else {}
                )
            )
        )
        for protocol, result in protocols.items()
    }
    yield dg.MaterializeResult(
        metadata={
            **gated.model,
            "protocol": report.protocol,
            "family": report.model.family,
            **{f"{name}_{ndcg}": metrics[ndcg] for name, metrics in gated.baselines.items()},
            **{f"{protocol}_model_{ndcg}": result.model[ndcg] for protocol, result in protocols.items()},
            "champion_version": champion.version if champion else "none",
            **tables,
            "path": dg.MetadataValue.path(metrics_uri),
        }
    )
