"""The asset graph without its resources: what `definitions` assembles and the CLI materializes."""

from recsys_assets.delivery.recommendation_outcomes import recommendation_outcomes
from recsys_assets.delivery.recommendations import recommendations
from recsys_assets.evaluation.model_evaluation import model_evaluation
from recsys_assets.extract.interactions import interactions
from recsys_assets.extract.items import items
from recsys_assets.features.item_features import item_features
from recsys_assets.features.training_set import training_set
from recsys_assets.release.model_bundle import model_bundle
from recsys_assets.release.model_release import model_release
from recsys_assets.training.baseline_models import baseline_models
from recsys_assets.training.trained_model import trained_model

ASSETS = [
    interactions,
    items,
    item_features,
    training_set,
    trained_model,
    baseline_models,
    model_evaluation,
    model_bundle,
    model_release,
    recommendations,
    recommendation_outcomes,
]
