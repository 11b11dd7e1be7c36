"""Assemble a model bundle: its manifest and its files (the documents in it are rendered by `reports.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version

from recsys_assets.domain.layout import BundleFile
from recsys_assets.domain.metrics import headline
from recsys_assets.domain.records import (
    DagsterRun,
    EvaluationResult,
    Manifest,
    ManifestData,
    ManifestMetrics,
    ProtocolMetrics,
    TrainingReport,
    TrainingSetSummary,
)
from recsys_assets.domain.reports import gated_lifts, model_card
from recsys_assets.domain.splitting import PER_USER, PROTOCOLS
from recsys_assets.domain.storage import StoredFiles

# Recorded in every manifest: what a bundle needs to be loaded and reproduced.
RECORDED_LIBRARIES = ("implicit", "dagster", "numpy", "scipy")


def day_text(day: float) -> str:
    """A day counted from the epoch (as in the training-set summary) as YYYY-MM-DD."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).date().isoformat()


def trained_on(summary: TrainingSetSummary, protocols: Iterable[str]) -> dict[str, str]:
    """What each model file of the bundle was trained on, by file name."""
    window = f"{summary.window.start}..{summary.window.end}"

    def described(protocol: str) -> str:
        if protocol not in PROTOCOLS or protocol not in summary.protocols:
            return protocol
        counts = summary.protocols[protocol]
        return PROTOCOLS[protocol].train_text.format(
            window=window,
            pairs=counts.train_pairs,
            cut=day_text(counts.train_end),
            days=round(summary.end_day - counts.train_end),
        )

    return {
        BundleFile.MODEL: f"the whole window {window}: {summary.full_pairs:,} pairs, both holdouts included "
        "(the served model; refitted with the selected family and parameters, not scored offline)",
        **{BundleFile.evaluated(protocol): described(protocol) for protocol in protocols},
    }


def build_manifest(
    *,
    model_name: str,
    version: str,
    created_at: datetime,
    code_version: str | None,
    image: str | None,
    evaluation: EvaluationResult,
    report: TrainingReport,
    run: DagsterRun,
) -> Manifest:
    """The manifest of a new bundle (its `files` checksums are added when the bundle is published)."""
    summary = evaluation.training_set
    k = evaluation.k
    champion = evaluation.champion
    return Manifest(
        model_name=model_name,
        version=version,
        created_at=created_at.isoformat(),
        code_version=code_version,
        image=image,
        library_versions={name: package_version(name) for name in RECORDED_LIBRARIES},
        data=ManifestData(
            window=summary.window,
            partitions=summary.partitions,
            events=summary.events,
            # Schema 2 names the per-user split's pairs here (the training set's summary.json has every protocol's).
            train_pairs=summary.protocols[PER_USER].train_pairs,
            holdout_pairs=summary.protocols[PER_USER].holdout_pairs,
            full_pairs=summary.full_pairs,
            users=summary.users,
            items=summary.items,
            content_hash=summary.content_hash,
        ),
        model=report.model,
        k=k,
        holdout_users=evaluation.holdout.users,
        metrics=ManifestMetrics(
            model=headline(evaluation.model, k),
            baselines={name: headline(metrics, k) for name, metrics in evaluation.baselines.items()},
            lifts=gated_lifts(evaluation),
        ),
        protocol=evaluation.protocol,
        protocols={
            protocol: ProtocolMetrics(
                model=headline(result.model, k),
                baselines={name: headline(metrics, k) for name, metrics in result.baselines.items()},
                lifts=result.lifts,
                holdout_users=result.holdout.users,
                cold_items={
                    name: {m: v for m, v in metrics.items() if m in (f"recall@{k}", f"ndcg@{k}", "users_evaluated")}
                    for name, metrics in result.cold_items.items()
                },
                cold_pairs=result.cold_holdout.pairs if result.cold_holdout else 0,
                new_item_share=result.new_item_share,
                new_item_days=result.new_item_days,
            )
            for protocol, result in evaluation.protocols.items()
        },
        champion=champion.model_copy(update={"metrics": headline(champion.metrics, k)}) if champion else None,
        dagster=run,
        trained_on=trained_on(summary, evaluation.protocols),
    )


def new_version(now: datetime, run_id: str) -> str:
    """Sortable, unique version name: UTC creation time plus the Dagster run id prefix."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{run_id[:8]}"


def bundle_files(
    manifest: Manifest,
    comparison: Mapping[str, Mapping[str, float]],
    report: TrainingReport,
    plot: bytes,
    stored: Mapping[str, str],
) -> StoredFiles:
    """Every file of a bundle except the manifest, by its name in the bundle.

    `stored` names the artefacts shipped as they are, by their bundle name (`BundleFile`): the served
    model (refitted on the whole window), the model each protocol scored, the id maps, the binary users x
    items matrix of that window (what each user saw) and the item transformer. They are read one at a
    time as the bundle is published. `plot` is the metrics plot of `comparison` (`reports.metrics_plot`).
    """
    return StoredFiles(
        stored,
        {
            BundleFile.TRAINING_REPORT: report.to_json(),
            BundleFile.METRICS_PLOT: plot,
            BundleFile.MODEL_CARD: model_card(manifest, comparison, report).encode(),
        },
    )
