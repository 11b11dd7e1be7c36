"""Assemble a model bundle: open-format factors and ids, a model card with a plot, and the manifest."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version

import numpy as np

from recsys_assets.domain.layout import BundleFile
from recsys_assets.domain.metrics import headline_names
from recsys_assets.domain.records import (
    DagsterRun,
    EvaluationResult,
    Manifest,
    ManifestData,
    ManifestMetrics,
    Metrics,
    ProtocolMetrics,
    TrainingReport,
    TrainingSetSummary,
)

# Recorded in every manifest: what a bundle needs to be loaded and reproduced.
RECORDED_LIBRARIES = ("implicit", "dagster", "numpy", "scipy")


def headline(metrics: Mapping[str, float], k: int) -> Metrics:
    """The manifest's metric block: precision/recall/ndcg/map at k and coverage."""
    return {name: metrics[name] for name in headline_names(k)}


def metrics_plot(series: Mapping[str, Mapping[str, float]]) -> bytes:
    """Grouped bar chart of every headline metric for the model and each comparison."""
    metric_names = list(next(iter(series.values())))
    positions = np.arange(len(metric_names))
    width = 0.8 / len(series)
    # Imported here: matplotlib takes half a second to import, and only the bundle step draws.
    from matplotlib.figure import Figure

    # The Figure API draws without pyplot's global state or a display backend.
    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.subplots()
    for offset, (label, values) in enumerate(series.items()):
        ax.bar(positions + offset * width, [values[m] for m in metric_names], width, label=label)
    ax.set_xticks(positions + width * (len(series) - 1) / 2, metric_names)
    ax.set_ylabel("score on the holdout")
    ax.set_title("Model against baselines")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def comparison_table(evaluation: EvaluationResult) -> dict[str, Metrics]:
    """Headline metrics of the model, each baseline and the champion, in display order."""
    k = evaluation.k
    comparison = {
        "model": headline(evaluation.model, k),
        **{name: headline(metrics, k) for name, metrics in evaluation.baselines.items()},
    }
    if evaluation.champion:
        comparison[f"champion {evaluation.champion.version}"] = headline(evaluation.champion.metrics, k)
    return comparison


def day_text(day: float) -> str:
    """A day counted from the epoch (as in the training-set summary) as YYYY-MM-DD."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).date().isoformat()


def trained_on(summary: TrainingSetSummary, protocols: Iterable[str]) -> dict[str, str]:
    """What each model file of the bundle was trained on, by file name."""
    window = f"{summary.window.start}..{summary.window.end}"
    cut = day_text(summary.end_day - summary.cut_days)
    described = {
        "per_user": f"per_user train split of {window}: {summary.train_pairs:,} pairs, each user's most recent "
        "items held out (the model the per_user evaluation scored)",
        "global_cut": f"global_cut train split: {summary.cut_train_pairs:,} pairs first seen before {cut}, the last "
        f"{summary.cut_days} days held out (the model the global_cut evaluation scored)",
    }
    return {
        BundleFile.MODEL: f"the whole window {window}: {summary.full_pairs:,} pairs, both holdouts included "
        "(the served model; refitted with the selected family and parameters, not scored offline)",
        **{BundleFile.evaluated(protocol): described.get(protocol, protocol) for protocol in protocols},
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
        # The manifest keeps the summary's fields that identify the data, under the same names.
        data=ManifestData.model_validate(summary.model_dump(include=set(ManifestData.model_fields))),
        model=report.model,
        k=k,
        holdout_users=evaluation.holdout.users,
        metrics=ManifestMetrics(
            model=headline(evaluation.model, k),
            baselines={name: headline(metrics, k) for name, metrics in evaluation.baselines.items()},
        ),
        protocol=evaluation.protocol,
        protocols={
            protocol: ProtocolMetrics(
                model=headline(result.model, k),
                baselines={name: headline(metrics, k) for name, metrics in result.baselines.items()},
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


def png_data_uri(png: bytes) -> str:
    """A PNG as a `data:` URI, so Markdown shown outside the bundle (the Dagster UI) displays it inline."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


PROTOCOL_TEXT = {
    "per_user": "each user's most recent interactions held out (good for comparing models; it leaks the future)",
    "global_cut": "a global time cut: trained before the last days of the window, scored on those days "
    "(what deployment sees)",
}


def table(comparison: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of headline metrics, one row per model."""
    metric_names = list(next(iter(comparison.values())))
    rows = "\n".join(
        f"| {label} | " + " | ".join(f"{values[m]:.4f}" for m in metric_names) + " |"
        for label, values in comparison.items()
    )
    return f"| model | {' | '.join(metric_names)} |\n|---{'|---' * len(metric_names)}|\n{rows}"


def protocol_tables(manifest: Manifest) -> str:
    """Both protocols' tables, the gating one marked."""
    sections = []
    for protocol, result in manifest.protocols.items():
        gate = " (gates the release)" if protocol == manifest.protocol else ""
        comparison = {f"model ({manifest.model.family})": result.model, **result.baselines}
        sections.append(
            f"### {protocol}{gate}\n\n{PROTOCOL_TEXT.get(protocol, protocol)}; "
            f"{result.holdout_users:,} users scored.\n\n{table(comparison)}"
        )
        if result.cold_items:
            sections.append(
                f"Cold items ({protocol}): {result.cold_pairs:,} held-out pairs of postings unseen in training "
                "(a collaborative model scores 0 on them by construction).\n\n"
                + cold_items_markdown(result.cold_items, result.new_item_share, result.new_item_days, manifest.k)
            )
    return "\n\n".join(sections)


def cold_items_markdown(
    cold: Mapping[str, Mapping[str, float]], share: Mapping[str, float], days: int | None, k: int
) -> str:
    """Each model's recall and NDCG on cold-item pairs, the users scored, and its slots given to new postings."""
    lines = [
        f"| model | cold recall@{k} | cold ndcg@{k} | cold users | slots to postings < {days} days old |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {m.get(f'recall@{k}', 0.0):.4f} | {m.get(f'ndcg@{k}', 0.0):.4f} | "
        f"{int(m.get('users_evaluated', 0)):,} | {share.get(name, 0.0):.2%} |"
        for name, m in cold.items()
    ]
    return "\n".join(lines)


def trained_on_list(manifest: Manifest) -> str:
    """One Markdown bullet per model file: the data it was trained on."""
    return "\n".join(f"- `{name}`: {data}" for name, data in manifest.trained_on.items())


def model_card(
    manifest: Manifest,
    comparison: Mapping[str, Mapping[str, float]],
    report: TrainingReport,
    plot_src: str = BundleFile.METRICS_PLOT,
) -> str:
    """The Markdown model card; `plot_src` is where its plot is read from (the bundle's file by default)."""
    data = manifest.data
    params = ", ".join(f"{name}={value}" for name, value in manifest.model.params.items())
    return f"""# Model card: {manifest.model_name} {manifest.version}

**{manifest.model.family}** recommender, selected among {len({t.family for t in report.search})} families
({len(report.search)} trials, {report.search_seconds:.1f} s) by validation NDCG@{manifest.k} on the
{manifest.protocol} protocol, trained on user-item interactions from {data.window.start} to {data.window.end}
({data.window.days} daily partitions, {data.full_pairs or data.train_pairs:,} user-item pairs,
{data.users:,} users, {data.items:,} items; content hash `{data.content_hash[:16]}`).

- Created: {manifest.created_at}
- Code version: {manifest.code_version or "unknown"}
- Image: {manifest.image or "local (no container)"}
- Parameters: {params}

## Models in this bundle

{trained_on_list(manifest)}

## Offline evaluation

The evaluated models (`{BundleFile.EVALUATED_FOLDER}/<protocol>.npz`) are scored; `{BundleFile.MODEL}` is the same
family and parameters refitted on the whole window, which no holdout can score.
Every model recommends {manifest.k} unseen items per user and is scored on the same holdout users;
the table below is the gating protocol's ({manifest.protocol}).
precision@k = hits/k, recall@k = hits/|relevant|, MAP@k and NDCG@k normalise by min(k, |relevant|),
coverage = share of the catalogue recommended to anyone.

{table(comparison)}

![metrics]({plot_src})

## Both protocols

{protocol_tables(manifest)}

## Candidates tried

{report.trials_table()}

## Intended use and limits

Ranks open job postings for a signed-in engineer from their past views, bookmarks and
applications. Collaborative families cannot recommend items outside the training window until a
retrain; the content and hybrid families score new postings from their features
(`{BundleFile.ITEM_TRANSFORMER}` when present); users
outside it are folded in from their history where the family allows (not BPR).
"""


def new_version(now: datetime, run_id: str) -> str:
    """Sortable, unique version name: UTC creation time plus the Dagster run id prefix."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{run_id[:8]}"


def bundle_files(
    manifest: Manifest,
    comparison: Mapping[str, Mapping[str, float]],
    model: bytes,
    evaluated: Mapping[str, bytes],
    user_ids: bytes,
    item_ids: bytes,
    report: TrainingReport,
    history: bytes,
) -> dict[str, bytes]:
    """Every file of a bundle except the manifest, by its name in the bundle.

    `model` is the served model (refitted on the whole window); `evaluated` the model each protocol scored;
    `history` the binary users x items matrix of that window (what each user saw, `BundleFile.HISTORY`).
    """
    return {
        BundleFile.MODEL: model,
        **{BundleFile.evaluated(protocol): data for protocol, data in evaluated.items()},
        BundleFile.USER_IDS: user_ids,
        BundleFile.ITEM_IDS: item_ids,
        BundleFile.HISTORY: history,
        BundleFile.TRAINING_REPORT: report.to_json(),
        BundleFile.METRICS_PLOT: metrics_plot(comparison),
        BundleFile.MODEL_CARD: model_card(manifest, comparison, report).encode(),
    }


def pull_request_body(manifest: Manifest, champion_manifest: Manifest | None, card_uri: str) -> str:
    """Release PR text: the metric diff against the champion and a link to the model card."""
    new = manifest.metrics.model
    old = champion_manifest.metrics.model if champion_manifest else {}
    rows = "\n".join(
        f"| {name} | {old[name]:.4f} | {new[name]:.4f} | {new[name] - old[name]:+.4f} |"
        if name in old
        else f"| {name} | — | {new[name]:.4f} | — |"
        for name in headline_names(manifest.k)
    )
    champion = champion_manifest.version if champion_manifest else "none"
    data = manifest.data
    return (
        f"Promotes **{manifest.model_name}** to version `{manifest.version}` (champion: `{champion}`), "
        f"a **{manifest.model.family}** model gated on the {manifest.protocol} protocol.\n\n"
        f"| metric | champion | challenger | change |\n|---|---|---|---|\n{rows}\n\n"
        f"{protocol_tables(manifest)}\n\n"
        f"Data: {data.window.start}..{data.window.end}, "
        f"{data.train_pairs:,} pairs, hash `{data.content_hash[:16]}`. "
        f"Code `{manifest.code_version or 'unknown'}`, image `{manifest.image or 'local'}`.\n\n"
        + (
            f"Served model `{BundleFile.MODEL}`: {manifest.trained_on[BundleFile.MODEL]}.\n\n"
            if BundleFile.MODEL in manifest.trained_on
            else ""
        )
        + f"Model card: {card_uri}\n"
    )
