"""The evaluation's check: the gate against the baselines, judged on the evaluation's numbers."""

from recsys_assets.asset_checks import VerdictCheck
from recsys_assets.domain.evaluation import gate

# Called with (evaluation, min_relative_lift).
BEATS_BASELINES = VerdictCheck(
    "model_evaluation",
    "beats_baselines",
    "On the gating protocol's holdout, the model beats popularity and item-kNN on NDCG@k by the configured "
    "margin; no bundle is written otherwise.",
    gate,
)
