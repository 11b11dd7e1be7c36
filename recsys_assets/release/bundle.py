"""Assemble a model bundle: open-format factors and ids, a model card with a plot, and the manifest."""

from __future__ import annotations

import io
import os
import subprocess
from datetime import datetime

import matplotlib

matplotlib.use("Agg")  # headless: the bundle is built on servers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recsys_assets.evaluation.metrics import headline_names  # noqa: E402
from recsys_assets.settings import REPO_ROOT  # noqa: E402

MODEL_CARD = "model_card.md"
METRICS_PLOT = "metrics.png"


def code_version() -> str | None:
    """The git commit the code runs from: set by CI/the image build, else asked of git, else None."""
    if os.environ.get("RECSYS_CODE_VERSION"):
        return os.environ["RECSYS_CODE_VERSION"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def headline(metrics: dict[str, float], k: int) -> dict[str, float]:
    """The manifest's metric block: precision/recall/ndcg/map at k and coverage."""
    return {name: metrics[name] for name in headline_names(k)}


def metrics_plot(series: dict[str, dict[str, float]]) -> bytes:
    """Grouped bar chart of every headline metric for the model and each comparison."""
    metric_names = list(next(iter(series.values())))
    positions = np.arange(len(metric_names))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for offset, (label, values) in enumerate(series.items()):
        ax.bar(positions + offset * width, [values[m] for m in metric_names], width, label=label)
    ax.set_xticks(positions + width * (len(series) - 1) / 2, metric_names)
    ax.set_ylabel("score on the holdout")
    ax.set_title("Model against baselines")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def model_card(manifest: dict, comparison: dict[str, dict[str, float]]) -> str:
    """The Markdown model card shipped in the bundle."""
    metric_names = list(comparison["model"])
    rows = "\n".join(
        f"| {label} | " + " | ".join(f"{values[m]:.4f}" for m in metric_names) + " |"
        for label, values in comparison.items()
    )
    data = manifest["data"]
    hp = manifest["hyperparameters"]
    return f"""# Model card: {manifest['model_name']} {manifest['version']}

Implicit-feedback ALS recommender (implicit {manifest['library_versions']['implicit']}) trained
on user-item interactions from {data['window']['start']} to {data['window']['end']}
({data['window']['days']} daily partitions, {data['train_pairs']:,} user-item pairs,
{data['users']:,} users, {data['items']:,} items; content hash `{data['content_hash'][:16]}`).

- Created: {manifest['created_at']}
- Code version: {manifest['code_version'] or 'unknown'}
- Image: {manifest['image'] or 'local (no container)'}
- Hyperparameters: factors={hp['factors']}, regularization={hp['regularization']}, alpha={hp['alpha']},
  iterations={hp['iterations']}, BM25 K1={hp['bm25_k1']} B={hp['bm25_b']}

## Offline evaluation

Each user's most recent interactions were held out; every model recommends {manifest['k']} unseen
items per user and is scored on the same {manifest['holdout_users']:,} users. precision@k = hits/k,
recall@k = hits/|relevant|, MAP@k and NDCG@k normalise by min(k, |relevant|), coverage = share of
the catalogue recommended to anyone.

| model | {' | '.join(metric_names)} |
|---{'|---' * len(metric_names)}|
{rows}

![metrics]({METRICS_PLOT})

## Intended use and limits

Ranks open job postings for a signed-in engineer from their past views, bookmarks and
applications. Users and items outside the training window have no factors; new items need a
retrain before they can be recommended.
"""


def new_version(now: datetime, run_id: str) -> str:
    """Sortable, unique version name: UTC creation time plus the Dagster run id prefix."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{run_id[:8]}"
