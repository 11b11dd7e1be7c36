"""The bundle's check: the gate against the promoted champion, judged on the evaluation's numbers."""

from recsys_assets.asset_checks import VerdictCheck
from recsys_assets.domain.evaluation import champion_gate

# Called with (evaluation, tolerance); passes when nothing is promoted yet or the champion cannot be read.
NOT_WORSE_THAN_CHAMPION = VerdictCheck(
    "model_bundle",
    "not_worse_than_champion",
    "The new model is not worse than the promoted champion on NDCG@k beyond the tolerance; the release is "
    "blocked otherwise.",
    champion_gate,
)
