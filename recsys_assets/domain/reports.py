"""Every rendered table and document: what the CLI prints, the UI shows, and a bundle carries for people.

The numbers come from the records (`records.py`), the maths (`metrics.py`) and the registry's states
(`registry.py`); this module only lays them out: Markdown tables, the model card, the release pull
request's text, the registry's listings (`models list/show/diff`), the metrics plot.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recsys_assets.domain.layout import BundleFile
from recsys_assets.domain.metrics import METRIC_NAMES, headline, headline_names
from recsys_assets.domain.records import EvaluationResult, Lift, Manifest, Metrics, SplitCounts, TrainingReport
from recsys_assets.domain.registry import VersionStatus
from recsys_assets.domain.splitting import PROTOCOLS

# Text from settings or data (code version, image, ids, parameters, reasons) may hold anything: in
# Markdown that GitHub and the Dagster UI render, a newline starts a heading, `<` starts HTML, `|`
# ends a table cell, `[` starts a link and a backtick ends a code span.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MARKDOWN_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "[": "\\[", "]": "\\]", "`": "&#96;"}
)


def markdown_text(value: object) -> str:
    """`value` as inline Markdown text: one line, no HTML, no link, no cell or code-span break (ordinary values unchanged)."""
    return _CONTROL.sub(" ", str(value)).translate(_MARKDOWN_ESCAPES)


def shown(value: Any) -> str:
    """A parameter value for a table: floats to 4 significant digits, nested parameters likewise."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{name}: {shown(inner)}" for name, inner in value.items()) + "}"
    return str(value)


def metrics_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of the headline metrics (precision, recall, NDCG, MAP at k, coverage), one row per model.

    The columns are the headline metrics the first row has, in their display order.
    """
    order = {name: position for position, name in enumerate((*METRIC_NAMES, "coverage"))}
    headline_of = [name for name in next(iter(rows.values())) if name.split("@")[0] in order]
    names = sorted(headline_of, key=lambda name: order[name.split("@")[0]])
    lines = ["| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [
        f"| {markdown_text(label)} | " + " | ".join(f"{m[n]:.4f}" for n in names) + " |" for label, m in rows.items()
    ]
    return "\n".join(lines)


def cold_items_table(
    cold: Mapping[str, Mapping[str, float]], share: Mapping[str, float], days: int | None, k: int
) -> str:
    """Each model's recall and NDCG on cold-item pairs, the users scored, and its slots given to new postings."""
    lines = [
        f"| model | cold recall@{k} | cold ndcg@{k} | cold users | slots to postings < {days} days old |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {markdown_text(name)} | {m.get(f'recall@{k}', 0.0):.4f} | {m.get(f'ndcg@{k}', 0.0):.4f} | "
        f"{int(m.get('users_evaluated', 0)):,} | {share.get(name, 0.0):.2%} |"
        for name, m in cold.items()
    ]
    return "\n".join(lines)


def lifts_table(lifts: Mapping[str, Lift], k: int, same_as: str | None = None) -> str:
    """The model's NDCG@k against each reference on the same users: lift and its 95% paired-bootstrap interval."""
    lines = [
        f"| against | their ndcg@{k} | model ndcg@{k} | lift | 95% interval | users |",
        "|---|---|---|---|---|---|",
    ]
    for name, lift in lifts.items():
        label = markdown_text(f"{name} (the model's own configuration)" if name == same_as else name)
        if lift.lift is None or lift.low is None or lift.high is None:
            change, interval = "-", "-"
        else:
            change, interval = f"{lift.lift:+.1%}", f"[{lift.low:+.1%}, {lift.high:+.1%}]"
        lines.append(f"| {label} | {lift.reference:.4f} | {lift.model:.4f} | {change} | {interval} | {lift.users:,} |")
    return "\n".join(lines)


def gated_lifts(evaluation: EvaluationResult) -> dict[str, Lift]:
    """The gating protocol's lifts over each baseline, then over the champion when it was scored."""
    result = evaluation.protocols.get(evaluation.protocol)
    lifts = dict(result.lifts) if result else {}
    if evaluation.champion and evaluation.champion_lift:
        lifts["champion"] = evaluation.champion_lift
    return lifts


def trials_table(report: TrainingReport) -> str:
    """Markdown table of every search trial, then the skipped families."""
    lines = [
        "| # | family | params | validation ndcg@k (mean) | per fold, latest first | seconds | state |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, trial in enumerate(report.search, 1):
        params = markdown_text(", ".join(f"{name}={shown(value)}" for name, value in trial.params.items()))
        folds = " / ".join(f"{score:.4f}" for score in trial.fold_ndcg)
        lines.append(
            f"| {number} | {markdown_text(trial.family)} | {params} | {trial.validation_ndcg:.4f} | {folds} "
            f"| {trial.seconds:.2f} | {markdown_text(trial.state)} |"
        )
    lines += [
        f"| - | {markdown_text(family)} | skipped: {markdown_text(reason)} | | | | |"
        for family, reason in report.skipped.items()
    ]
    return "\n".join(lines)


def split_table(counts: SplitCounts) -> str:
    """Markdown table of every protocol's split: pairs per part, users scored, and what the holdout left out."""
    lines = [
        "| protocol | fit | validation | train | holdout | holdout users | cold-item pairs | unscored pairs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {c.fit_pairs:,} | {c.validation_pairs:,} | {c.train_pairs:,} | {c.holdout_pairs:,} | "
        f"{c.holdout_users:,} | {c.cold_item_pairs:,} | {c.unscored_holdout_pairs:,} |"
        for name, c in counts.protocols.items()
    ]
    return "\n".join(lines)


def selection_text(report: TrainingReport) -> str:
    """What the CLI prints of a search: every trial, then the selection."""
    return (
        f"\nCandidates tried (validation on the {report.protocol} protocol, {report.search_seconds:.1f} s):\n\n"
        f"{trials_table(report)}\n\n{selection_rule_text(report)}selected: {report.model.family} "
        f"{shown(report.model.params)}"
    )


def ceiling_table(report: TrainingReport) -> str:
    """Per protocol, the selected model's holdout NDCG@k beside every family's best trial refitted ("selected / best")."""
    if not report.ceiling:
        return ""
    families = list(dict.fromkeys(family for scores in report.ceiling.values() for family in scores))
    lines = [
        "| protocol | selected / best | " + " | ".join(markdown_text(family) for family in families) + " |",
        "|---|---|" + "---|" * len(families),
    ]
    for protocol, scores in report.ceiling.items():
        ratio = report.selected_over_best(protocol)
        shown_ratio = (
            "-" if ratio is None or ratio[2] <= 0 else f"{ratio[0] / ratio[2]:.3f} ({markdown_text(ratio[1])} best)"
        )
        cells = [
            "-"
            if family not in scores
            else f"**{scores[family]:.4f}**"
            if family == report.model.family
            else f"{scores[family]:.4f}"
            for family in families
        ]
        lines.append(f"| {markdown_text(protocol)} | {shown_ratio} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def selection_rule_text(report: TrainingReport) -> str:
    """The rule that picked the selected trial and the families it found tied, as a paragraph (or nothing)."""
    if not report.selection_rule:
        return ""
    tied = f" Tied within noise: {markdown_text(', '.join(report.tied))}." if len(report.tied) > 1 else ""
    return f"Selection rule: {markdown_text(report.selection_rule)}.{tied}\n\n"


def protocol_rows(evaluation: EvaluationResult, protocol: str, family: str) -> dict[str, Metrics]:
    """The rows of one protocol's metrics table: the model, each baseline, and on the gating protocol the champion."""
    result = evaluation.protocols[protocol]
    rows = {f"model ({family})": result.model, **result.baselines}
    if evaluation.champion and protocol == evaluation.protocol:
        rows[f"champion {evaluation.champion.version}"] = evaluation.champion.metrics
    return rows


def evaluation_tables(evaluation: EvaluationResult, family: str) -> dict[str, str]:
    """Markdown tables of an evaluation, by metadata name: `metrics_<protocol>` and `cold_items_<protocol>`."""
    tables = {
        f"metrics_{protocol}": metrics_table(protocol_rows(evaluation, protocol, family))
        for protocol in evaluation.protocols
    }
    tables |= {
        f"lifts_{protocol}": lifts_table(
            gated_lifts(evaluation) if protocol == evaluation.protocol else result.lifts,
            evaluation.k,
            evaluation.same_as,
        )
        for protocol, result in evaluation.protocols.items()
        if result.lifts
    }
    tables |= {
        f"cold_items_{protocol}": cold_items_table(
            result.cold_items, result.new_item_share, result.new_item_days, evaluation.k
        )
        for protocol, result in evaluation.protocols.items()
        if result.cold_items
    }
    return tables


def evaluation_text(evaluation: EvaluationResult, family: str, partition_key: str) -> str:
    """What the CLI prints of an evaluation: each protocol's metrics, then its cold items."""
    lines = []
    for protocol, result in evaluation.protocols.items():
        gate = ", gates the release" if protocol == evaluation.protocol else ""
        lines += [
            "",
            f"{protocol} holdout of partition {partition_key}: {result.holdout.users:,} users, k={evaluation.k}{gate}",
            "",
            metrics_table(protocol_rows(evaluation, protocol, family)),
        ]
        lifts = gated_lifts(evaluation) if protocol == evaluation.protocol else result.lifts
        if lifts:
            lines += ["", lifts_table(lifts, evaluation.k, evaluation.same_as)]
        if result.cold_items and result.cold_holdout is not None:
            lines += [
                "",
                f"cold items ({protocol}): {result.cold_holdout.pairs:,} held-out pairs of postings unseen in "
                f"training, {result.cold_holdout.users:,} users",
                "",
                cold_items_table(result.cold_items, result.new_item_share, result.new_item_days, evaluation.k),
            ]
    return "\n".join(lines)


def comparison_table(evaluation: EvaluationResult) -> dict[str, Metrics]:
    """Headline metrics of the model, each baseline and the champion (gating protocol), in display order."""
    k = evaluation.k
    comparison = {
        "model": headline(evaluation.model, k),
        **{name: headline(metrics, k) for name, metrics in evaluation.baselines.items()},
    }
    if evaluation.champion:
        comparison[f"champion {evaluation.champion.version}"] = headline(evaluation.champion.metrics, k)
    return comparison


def metrics_plot(series: Mapping[str, Mapping[str, float]]) -> bytes:
    """Grouped bar chart of every headline metric for the model and each comparison, as PNG."""
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


def png_data_uri(png: bytes) -> str:
    """A PNG as a `data:` URI, so Markdown shown outside the bundle (the Dagster UI) displays it inline."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def protocol_tables(manifest: Manifest) -> str:
    """Every protocol's tables, the gating one marked."""
    sections = []
    for protocol, result in manifest.protocols.items():
        gate = " (gates the release)" if protocol == manifest.protocol else ""
        rows = {f"model ({manifest.model.family})": result.model, **result.baselines}
        described = PROTOCOLS[protocol].description if protocol in PROTOCOLS else protocol
        sections.append(
            f"### {markdown_text(protocol)}{gate}\n\n{markdown_text(described)}; {result.holdout_users:,} users scored."
            f"\n\n{metrics_table(rows)}"
        )
        if result.cold_items:
            sections.append(
                f"Cold items ({markdown_text(protocol)}): {result.cold_pairs:,} held-out pairs of postings unseen in training "
                "(a collaborative model scores 0 on them by construction).\n\n"
                + cold_items_table(result.cold_items, result.new_item_share, result.new_item_days, manifest.k)
            )
    return "\n\n".join(sections)


def ceiling_section(report: TrainingReport) -> str:
    """The model card's "selected / best" paragraph (empty for reports without it)."""
    table = ceiling_table(report)
    if not table:
        return ""
    return (
        "Holdout NDCG@k of each family's best validation trial refitted on each protocol's train split (the "
        "selected family in bold; a dash: not measured within `ceiling_seconds`):\n\n" + table + "\n"
    )


def lifts_section(manifest: Manifest) -> str:
    """The gating protocol's lifts with their intervals, for the model card (empty for bundles without them)."""
    if not manifest.metrics.lifts:
        return ""
    return (
        "\nThe model's NDCG@k lift over each comparison on the same users, with its 95% paired-bootstrap "
        "interval (resampling users); the gate blocks when the whole interval lies below the tolerance.\n\n"
        f"{lifts_table(manifest.metrics.lifts, manifest.k)}\n"
    )


def trained_on_list(manifest: Manifest) -> str:
    """One Markdown bullet per model file: the data it was trained on."""
    return "\n".join(f"- `{markdown_text(name)}`: {markdown_text(data)}" for name, data in manifest.trained_on.items())


def model_card(
    manifest: Manifest,
    comparison: Mapping[str, Mapping[str, float]],
    report: TrainingReport,
    plot_src: str = BundleFile.METRICS_PLOT,
) -> str:
    """The Markdown model card; `plot_src` is where its plot is read from (the bundle's file by default)."""
    data = manifest.data
    params = markdown_text(", ".join(f"{name}={value}" for name, value in manifest.model.params.items()))
    name, version, family, protocol = (
        markdown_text(text)
        for text in (manifest.model_name, manifest.version, manifest.model.family, manifest.protocol)
    )
    return f"""# Model card: {name} {version}

**{family}** recommender, selected among {len({t.family for t in report.search})} families
({len(report.search)} trials, {report.search_seconds:.1f} s) by validation NDCG@{manifest.k} on the
{protocol} protocol, trained on user-item interactions from {data.window.start} to {data.window.end}
({data.window.days} daily partitions, {data.full_pairs or data.train_pairs:,} user-item pairs,
{data.users:,} users, {data.items:,} items; content hash `{markdown_text(data.content_hash[:16])}`).

- Created: {markdown_text(manifest.created_at)}
- Code version: {markdown_text(manifest.code_version or "unknown")}
- Image: {markdown_text(manifest.image or "local (no container)")}
- Parameters: {params}

## Models in this bundle

{trained_on_list(manifest)}

## Offline evaluation

The evaluated models (`{BundleFile.EVALUATED_FOLDER}/<protocol>.npz`) are scored; `{BundleFile.MODEL}` is the same
family and parameters refitted on the whole window, which no holdout can score.
Every model recommends {manifest.k} unseen items per user and is scored on the same holdout users;
the table below is the gating protocol's ({protocol}).
precision@k = hits/k, recall@k = hits/|relevant|, MAP@k and NDCG@k normalise by min(k, |relevant|),
coverage = share of the catalogue recommended to anyone.

{metrics_table(comparison)}
{lifts_section(manifest)}
![metrics]({plot_src})

## Both protocols

{protocol_tables(manifest)}

## Candidates tried

{selection_rule_text(report)}{trials_table(report)}

{ceiling_section(report)}
## Intended use and limits

Ranks open job postings for a signed-in engineer from their past views, bookmarks and
applications. Collaborative families cannot recommend items outside the training window until a
retrain; the content and hybrid families score new postings from their features
(`{BundleFile.ITEM_TRANSFORMER}` when present); users
outside it are folded in from their history where the family allows (not BPR).
"""


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
    champion = markdown_text(champion_manifest.version if champion_manifest else "none")
    data = manifest.data
    name, version, family, protocol = (
        markdown_text(text)
        for text in (manifest.model_name, manifest.version, manifest.model.family, manifest.protocol)
    )
    return (
        f"Promotes **{name}** to version `{version}` (champion: `{champion}`), "
        f"a **{family}** model gated on the {protocol} protocol.\n\n"
        f"| metric | champion | challenger | change |\n|---|---|---|---|\n{rows}\n\n"
        f"{protocol_tables(manifest)}\n\n"
        f"Data: {data.window.start}..{data.window.end}, "
        f"{data.train_pairs:,} pairs, hash `{markdown_text(data.content_hash[:16])}`. "
        f"Code `{markdown_text(manifest.code_version or 'unknown')}`, image `{markdown_text(manifest.image or 'local')}`."
        "\n\n"
        + (
            f"Served model `{BundleFile.MODEL}`: {markdown_text(manifest.trained_on[BundleFile.MODEL])}.\n\n"
            if BundleFile.MODEL in manifest.trained_on
            else ""
        )
        + f"Model card: {markdown_text(card_uri)}\n"
    )


def versions_table(statuses: Mapping[str, VersionStatus], limit: int = 10) -> str:
    """Markdown table of the last `limit` versions (newest first) with their states and pull requests."""
    rows = [
        f"| {markdown_text(s.version)} | {s.state} | {s.since} | {markdown_text(s.pull_request or '—')} |"
        for s in sorted(statuses.values(), key=lambda s: s.version, reverse=True)[:limit]
    ]
    return "| version | state | since | pull request |\n|---|---|---|---|\n" + "\n".join(rows)


def registry_listing(
    champion: str | None, versions: Sequence[tuple[str, VersionStatus | None, Manifest | None]]
) -> str:
    """`models list`: the champion, then one row per (version, status, manifest); None: not proposed / unreadable."""
    lines = [
        f"champion: {champion or 'none'}",
        "",
        "| version | state | created | family | data window | metrics | pull request |",
        "|---|---|---|---|---|---|---|",
    ]
    for version, status, manifest in versions:
        state = status.state if status else "not proposed"
        pull_request = (status.pull_request if status else None) or "—"
        if manifest is None:
            lines.append(f"| {version} | {state} | — | unreadable manifest | — | — | {pull_request} |")
            continue
        metrics = " ".join(
            f"{name} {manifest.metrics.model[name]:.4f}"
            for name in headline_names(manifest.k)[:3]
            if name in manifest.metrics.model
        )
        window = manifest.data.window
        lines.append(
            f"| {version} | {state} | {manifest.created_at[:19]} | {manifest.model.family} "
            f"| {window.start}..{window.end} | {metrics} | {pull_request} |"
        )
    return "\n".join(lines)


def version_summary(model_name: str, version: str, manifest: Manifest, status: VersionStatus | None) -> str:
    """`models show`: one version's manifest summary, metrics and state history."""
    lines = [
        f"{model_name} {version}: {status.state if status else 'not proposed'}",
        f"created {manifest.created_at}, family {manifest.model.family}, params {manifest.model.params}",
        f"data {manifest.data.window.start}..{manifest.data.window.end}, {manifest.data.train_pairs:,} pairs",
        f"code {manifest.code_version or 'unknown'}, image {manifest.image or 'local'}, run {manifest.dagster.run_id}",
    ]
    lines += [f"  {name}: {value:.4f}" for name, value in manifest.metrics.model.items()]
    lines += [
        f"{event.at}  {event.state:<11}  {event.reason}" + (f"  {event.pull_request}" if event.pull_request else "")
        for event in (status.history if status else ())
    ]
    return "\n".join(lines)


def versions_diff_table(a: str, b: str, left: Manifest, right: Manifest) -> str:
    """`models diff`: two versions' metrics, parameters and data side by side."""
    lines = [f"| | {a} | {b} | change |", "|---|---|---|---|"]
    for name in sorted(set(left.metrics.model) | set(right.metrics.model)):
        x, y = left.metrics.model.get(name), right.metrics.model.get(name)
        change = f"{y - x:+.4f}" if x is not None and y is not None else "—"
        lines.append(f"| {name} | {x if x is None else f'{x:.4f}'} | {y if y is None else f'{y:.4f}'} | {change} |")
    for label, x, y in (
        ("family", left.model.family, right.model.family),
        ("params", left.model.params, right.model.params),
        ("window", left.data.window, right.data.window),
        ("content_hash", left.data.content_hash[:16], right.data.content_hash[:16]),
    ):
        lines.append(f"| {label} | {x} | {y} | {'same' if x == y else 'differs'} |")
    return "\n".join(lines)
