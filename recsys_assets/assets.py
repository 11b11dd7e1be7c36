"""The asset graph without its resources: what `definitions` assembles and the CLI materializes."""

from recsys_assets.evaluation.assets import model_evaluation
from recsys_assets.extract.assets import interactions
from recsys_assets.extract.items import items
from recsys_assets.features.assets import training_set
from recsys_assets.features.items import item_features
from recsys_assets.release.assets import model_bundle, model_release
from recsys_assets.training.assets import baseline_models, trained_model

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
]
