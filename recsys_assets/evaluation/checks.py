"""The evaluation's check: the gate against the baselines, judged on the evaluation's numbers."""

from recsys_assets.asset_checks import VerdictCheck
from recsys_assets.domain.evaluation import gate

# Called with (evaluation, min_relative_lift, baseline_tolerance).
BEATS_BASELINES = VerdictCheck(
    "model_evaluation",
    "beats_baselines",
    "On the gating protocol's holdout, the model's NDCG@k is not significantly (95% paired bootstrap over "
    "users) worse than popularity's or item-kNN's beyond the tolerance (and, when min_relative_lift is set, "
    "significantly better by it); no bundle is written otherwise.",
    gate,
)
