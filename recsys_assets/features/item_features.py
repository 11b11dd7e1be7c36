"""Item features: TF-IDF on posting text and one-hot category/location, fitted with scikit-learn."""

import dagster as dg

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.domain import storage
from recsys_assets.domain.item_features import features_to_bytes, fit_features
from recsys_assets.domain.params import ItemFeatureParams
from recsys_assets.domain.splitting import content_hash
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.retrain_plan import RECIPE, item_features_recipe, items_version
from recsys_assets.step_errors import guarded_step


class ItemFeaturesConfig(dg.Config, ItemFeatureParams):
    """The feature parameters, settable per run from the launchpad."""


@dg.asset(
    partitions_def=daily_partitions,
    deps=["items"],
    group_name=GROUP,
    **asset_attributes(extra_kinds=("scikitlearn", "scipy")),
)
@guarded_step
def item_features(
    context: dg.AssetExecutionContext, config: ItemFeaturesConfig, artifacts: ArtifactStore
) -> dg.MaterializeResult:
    """L2-normalised sparse item features and the fitted transformer (arrays, no pickle) for new postings."""
    key = context.partition_key
    made_of = item_features_recipe(
        items_version(context.instance, key),
        ItemFeatureParams.model_validate(config.model_dump()),
        context.assets_def.code_versions_by_key.get(context.asset_key),
    )
    snapshot = storage.table_from_bytes(storage.read_bytes(artifacts.layout_of(context, "items").items(key).items))
    files = artifacts.layout(context.run).item_features(key)
    # The item ids travel with the matrix: its rows are in this file's order.
    items = storage.table_to_bytes(snapshot.select(["item_id", "posted_date", "closed_date"]))
    storage.write_bytes(files.items, items)
    if snapshot.num_rows == 0:
        context.log.warning("the catalogue is empty: no item features; content-based families will be skipped")
        return dg.MaterializeResult(
            metadata={"postings": 0, "features": 0, RECIPE: made_of, "path": dg.MetadataValue.path(files.folder)}
        )
    featurizer, features = fit_features(snapshot, config.min_df, config.max_features, config.categorical_weight)
    payloads = {
        files.features: features_to_bytes(features),
        files.transformer: featurizer.to_bytes(),  # last: marks a complete set
    }
    for uri, payload in payloads.items():
        storage.write_bytes(uri, payload)
    payloads[files.items] = items
    memory = features.data.nbytes + features.indices.nbytes + features.indptr.nbytes
    context.log.info(f"item features: {features.shape[0]:,} postings x {features.shape[1]:,} features")
    return dg.MaterializeResult(
        # The content hash is the data version: a changed catalogue makes the next retrain run, not skip.
        data_version=dg.DataVersion(content_hash(payloads, files.folder)),
        metadata={
            "postings": features.shape[0],
            "features": features.shape[1],
            "vocabulary": len(featurizer.terms),
            "nnz": int(features.nnz),
            "matrix_mib": round(memory / 2**20, 3),
            # What it was made of: a later run with the same recipe need not build it again.
            RECIPE: made_of,
            "path": dg.MetadataValue.path(files.folder),
        },
    )
