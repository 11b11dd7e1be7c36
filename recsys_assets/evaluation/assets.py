"""Offline evaluation of the model against its baselines (and the current champion) on one holdout."""

import dagster as dg
from pydantic import Field

from recsys_assets import storage
from recsys_assets.evaluation.champion import evaluate_champion
from recsys_assets.evaluation.metrics import headline_names
from recsys_assets.features.training_set import TrainingSet
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.settings import SETTINGS
from recsys_assets.training.assets import load_als, load_baselines
from recsys_assets.training.models import evaluate

METRICS_FILE = "metrics.json"
CHECK_BEATS_POPULARITY = "beats_popularity"


class EvaluationConfig(dg.Config):
    k: int = Field(default=10, ge=1, description="Cut-off of every ranking metric.")
    min_relative_lift: float = Field(
        default=0.05, description="The model's NDCG@k must exceed popularity's by this fraction (0.05 = 5%)."
    )


def metrics_table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table of metrics, one row per model."""
    k = next(int(n.split("@")[1]) for n in next(iter(results.values())) if "@" in n)
    names = headline_names(k)
    lines = ["| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {model} | " + " | ".join(f"{m[n]:.4f}" for n in names) + " |" for model, m in results.items()]
    return "\n".join(lines)


@dg.asset(
    partitions_def=daily_partitions,
    deps=["als_model", "baseline_models"],
    group_name="evaluation",
    kinds={"python"},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_BEATS_POPULARITY, asset="model_evaluation", blocking=True,
            description="The model beats the popularity baseline on NDCG@k by the configured margin; "
            "no bundle is written otherwise.",
        )
    ],
)
def model_evaluation(
    context: dg.AssetExecutionContext, config: EvaluationConfig, artifacts: ArtifactStore, model_store: ModelStore
):
    """Precision, recall, NDCG and MAP at k plus coverage for the model, each baseline and the champion."""
    key = context.partition_key
    data = TrainingSet.load(artifacts.uri("training_set", key))
    models = {"model": load_als(artifacts, key), **load_baselines(artifacts, key)}
    results = {}
    for name, model in models.items():
        results[name] = evaluate(model, data.train, data.holdout, config.k)
        context.log.info(f"evaluated {name} on {results[name]['users_evaluated']:,} users: ndcg@{config.k} "
                         f"{results[name][f'ndcg@{config.k}']:.4f}")
    champion = evaluate_champion(model_store, SETTINGS.model_name, data, config.k)
    if champion is not None:
        context.log.info(f"champion {champion['version']}: ndcg@{config.k} {champion['metrics'][f'ndcg@{config.k}']:.4f}")

    evaluation = {
        "k": config.k,
        "model": results["model"],
        "baselines": {name: m for name, m in results.items() if name != "model"},
        "champion": champion,
        "holdout": {"users": results["model"]["users_evaluated"], "pairs": int(data.holdout.nnz)},
        "training_set": data.summary,
    }
    storage.write_json(artifacts.uri("model_evaluation", key, METRICS_FILE), evaluation)

    ndcg = f"ndcg@{config.k}"
    model_ndcg, popularity_ndcg = results["model"][ndcg], results["popularity"][ndcg]
    required = popularity_ndcg * (1 + config.min_relative_lift)
    passed = model_ndcg > required
    yield dg.AssetCheckResult(
        check_name=CHECK_BEATS_POPULARITY,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"model {ndcg} {model_ndcg:.4f} {'>' if passed else '<='} required {required:.4f} "
            f"(popularity {popularity_ndcg:.4f} + {config.min_relative_lift:.0%})"
        ),
        metadata={"model_" + ndcg: model_ndcg, "popularity_" + ndcg: popularity_ndcg, "required": required},
    )
    table = {**results, **({f"champion ({champion['version']})": champion["metrics"]} if champion else {})}
    yield dg.MaterializeResult(
        metadata={
            **results["model"],
            **{f"popularity_{ndcg}": popularity_ndcg, f"item_knn_{ndcg}": results["item_knn"][ndcg]},
            "champion_version": champion["version"] if champion else "none",
            "metrics": dg.MetadataValue.md(metrics_table(table)),
            "path": dg.MetadataValue.path(artifacts.uri("model_evaluation", key, METRICS_FILE)),
        }
    )
