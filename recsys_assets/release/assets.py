"""The versioned model bundle in the model store, and the release that promotes it."""

import json
from datetime import datetime, timezone
from importlib.metadata import version as package_version

import dagster as dg
from pydantic import Field

from recsys_assets import storage, train
from recsys_assets.evaluation.assets import METRICS_FILE
from recsys_assets.evaluation.metrics import headline_names
from recsys_assets.features.training_set import ITEM_IDS_FILE, USER_IDS_FILE
from recsys_assets.partitions import daily_partitions
from recsys_assets.release.bundle import (
    METRICS_PLOT,
    MODEL_CARD,
    code_version,
    headline,
    metrics_plot,
    model_card,
    new_version,
    npy_bytes,
)
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import MANIFEST, ModelStore, sha256
from recsys_assets.resources.release import ReleaseProposal, ReleasePublisher
from recsys_assets.resources.training_launcher import TrainingLauncher
from recsys_assets.settings import SETTINGS
from recsys_assets.training.assets import load_als

BUNDLE_REF_FILE = "bundle.json"
CHECK_NOT_WORSE_THAN_CHAMPION = "not_worse_than_champion"


class BundleConfig(dg.Config):
    champion_tolerance: float = Field(
        default=0.02,
        description="The release is blocked when the new model's NDCG@k is more than this fraction below the champion's.",
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=["model_evaluation"],
    group_name="release",
    kinds={"s3"},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_NOT_WORSE_THAN_CHAMPION, asset="model_bundle", blocking=True,
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
):
    """Write-once, versioned model bundle: factors, id maps, model card and manifest.json."""
    key = context.partition_key
    evaluation = storage.read_json(artifacts.uri("model_evaluation", key, METRICS_FILE))
    report = storage.read_json(artifacts.uri("als_model", key, train.REPORT_FILE))
    model = load_als(artifacts, key)
    k = evaluation["k"]
    now = datetime.now(timezone.utc)
    version = new_version(now, context.run.run_id)
    summary = evaluation["training_set"]
    comparison = {
        "model": headline(evaluation["model"], k),
        **{name: headline(m, k) for name, m in evaluation["baselines"].items()},
    }
    if evaluation["champion"]:
        comparison[f"champion {evaluation['champion']['version']}"] = headline(evaluation["champion"]["metrics"], k)
    manifest = {
        "model_name": SETTINGS.model_name,
        "version": version,
        "created_at": now.isoformat(),
        "code_version": code_version(),
        "image": training_launcher.image,
        "library_versions": {name: package_version(name) for name in ("implicit", "dagster", "numpy", "scipy")},
        "data": {
            "window": summary["window"],
            "partitions": summary["partitions"],
            "events": summary["events"],
            "train_pairs": summary["train_pairs"],
            "holdout_pairs": summary["holdout_pairs"],
            "users": summary["users"],
            "items": summary["items"],
            "content_hash": summary["content_hash"],
        },
        "hyperparameters": report["hyperparameters"],
        "k": k,
        "holdout_users": evaluation["holdout"]["users"],
        "metrics": {"model": comparison["model"], "baselines": {n: comparison[n] for n in evaluation["baselines"]}},
        "champion": (
            {"version": evaluation["champion"]["version"], "metrics": headline(evaluation["champion"]["metrics"], k)}
            if evaluation["champion"] else None
        ),
        "dagster": {"run_id": context.run.run_id, "partition": key},
    }
    training_files = artifacts.uri("training_set", key)
    files = {
        "user_factors.npy": npy_bytes(model.user_factors),
        "item_factors.npy": npy_bytes(model.item_factors),
        USER_IDS_FILE: storage.read_bytes(storage.join(training_files, USER_IDS_FILE)),
        ITEM_IDS_FILE: storage.read_bytes(storage.join(training_files, ITEM_IDS_FILE)),
        "training_report.json": json.dumps(report, indent=2).encode(),
        METRICS_PLOT: metrics_plot(comparison),
        MODEL_CARD: model_card(manifest, comparison).encode(),
    }
    uri = model_store.publish_bundle(SETTINGS.model_name, version, files, manifest)
    storage.write_json(artifacts.uri("model_bundle", key, BUNDLE_REF_FILE), {"version": version, "uri": uri})
    context.log.info(f"bundle {SETTINGS.model_name}/{version} written to {uri}")

    ndcg = f"ndcg@{k}"
    champion = evaluation["champion"]
    if champion is None:
        passed, description = True, "no champion promoted yet: the first model is released"
    else:
        floor = champion["metrics"][ndcg] * (1 - config.champion_tolerance)
        passed = evaluation["model"][ndcg] >= floor
        description = (
            f"challenger {ndcg} {evaluation['model'][ndcg]:.4f} {'>=' if passed else '<'} {floor:.4f} "
            f"(champion {champion['version']} {champion['metrics'][ndcg]:.4f} - {config.champion_tolerance:.0%})"
        )
    yield dg.AssetCheckResult(
        check_name=CHECK_NOT_WORSE_THAN_CHAMPION, passed=passed, severity=dg.AssetCheckSeverity.ERROR,
        description=description,
    )
    yield dg.MaterializeResult(
        metadata={
            "version": version,
            "uri": dg.MetadataValue.url(uri) if "://" in uri else dg.MetadataValue.path(uri),
            "model_card": dg.MetadataValue.md(model_card(manifest, comparison)),
            **{f"model_{name}": value for name, value in comparison["model"].items()},
            "code_version": manifest["code_version"] or "unknown",
            "image": manifest["image"] or "local",
            "credentials_used": dg.MetadataValue.json(model_store.secret_references()),
        }
    )


def pull_request_body(manifest: dict, champion_manifest: dict | None, card_uri: str) -> str:
    """Release PR text: the metric diff against the champion and a link to the model card."""
    new = manifest["metrics"]["model"]
    old = (champion_manifest or {}).get("metrics", {}).get("model", {})
    rows = "\n".join(
        f"| {name} | {old[name]:.4f} | {new[name]:.4f} | {new[name] - old[name]:+.4f} |" if name in old
        else f"| {name} | — | {new[name]:.4f} | — |"
        for name in headline_names(manifest["k"])
    )
    champion = champion_manifest["version"] if champion_manifest else "none"
    return (
        f"Promotes **{manifest['model_name']}** to version `{manifest['version']}` (champion: `{champion}`).\n\n"
        f"| metric | champion | challenger | change |\n|---|---|---|---|\n{rows}\n\n"
        f"Data: {manifest['data']['window']['start']}..{manifest['data']['window']['end']}, "
        f"{manifest['data']['train_pairs']:,} pairs, hash `{manifest['data']['content_hash'][:16]}`. "
        f"Code `{manifest['code_version'] or 'unknown'}`, image `{manifest['image'] or 'local'}`.\n\n"
        f"Model card: {card_uri}\n"
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
):
    """Release pull request that points serving at the new bundle, then records it as the champion."""
    bundle = storage.read_json(artifacts.uri("model_bundle", context.partition_key, BUNDLE_REF_FILE))
    name, version = SETTINGS.model_name, bundle["version"]
    # One read: the pointer pins the exact manifest bytes the metrics below come from.
    manifest_bytes = model_store.get_object(model_store.bundle_prefix(name, version) + MANIFEST)
    manifest = json.loads(manifest_bytes)
    champion = model_store.read_champion(name)
    champion_manifest = model_store.read_manifest(name, champion["version"]) if champion else None
    pointer = {
        "model_name": name,
        "version": version,
        "uri": bundle["uri"],
        # Serving verifies the bundle against this before loading it.
        "manifest_sha256": sha256(manifest_bytes),
        "metrics": manifest["metrics"]["model"],
    }
    proposal = ReleaseProposal(
        model_name=name,
        version=version,
        pointer_path=config.pointer_path,
        pointer_content=json.dumps(pointer, indent=2) + "\n",
        title=f"Release {name} {version}",
        body=pull_request_body(manifest, champion_manifest, storage.join(bundle["uri"], MODEL_CARD)),
    )
    result = release_publisher.propose(proposal)
    model_store.write_champion(name, version, release=result.url)
    context.log.info(f"release {'opened' if result.created else 'already open'}: {result.url}")
    return dg.MaterializeResult(
        metadata={
            "version": version,
            "pull_request": dg.MetadataValue.url(result.url) if "://" in result.url else dg.MetadataValue.path(result.url),
            "created": result.created,
            "previous_champion": champion["version"] if champion else "none",
            "credentials_used": dg.MetadataValue.json(release_publisher.secret_references()),
            "body": dg.MetadataValue.md(proposal.body),
        }
    )
