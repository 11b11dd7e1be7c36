"""The service over a champion the pipeline trained, released and promoted: its lists are the bundle's own."""

import numpy as np

from recsys_assets.cli.pipeline import materialize_partition
from recsys_assets.domain.families.base import binary
from recsys_assets.domain.items import as_of
from recsys_assets.domain.layout import ArtifactLayout
from recsys_assets.domain.splitting import TrainingSet
from recsys_assets.domain.synthetic import SMALL_SPEC
from recsys_assets.resources import build_serving_resources
from recsys_assets.service.app import create_app
from recsys_assets.service.champion import ChampionFollower
from recsys_assets.service.metrics import ServiceMetrics
from recsys_assets.serving import load_bundle
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.environment import (
    FAST_SELECTION,
    local_env,
    local_resources,
    merge_release,
    seed,
)
from recsys_assets_tests.support.service import eventually, running

PARTITION = SMALL_SPEC.end_date.isoformat()


def test_the_service_serves_the_promoted_pipeline_bundle_exactly_as_load_bundle_recommends(tmp_path, instance):
    resources = local_resources(tmp_path)
    seed(resources)
    outcome = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert outcome.success, outcome.failures
    version = outcome.bundle.version
    offline = load_bundle(outcome.bundle.uri)
    # The bundle's history is the whole window the served model was refitted on, as ones.
    assert offline.manifest is not None
    layout = ArtifactLayout(str(tmp_path / "artifacts"), run=offline.manifest.dagster.run_id)
    data = TrainingSet.load(layout.training_set(PARTITION))
    assert offline.history is not None and (offline.history != binary(data.full)).nnz == 0
    # Closed postings as the `items` asset snapshots them for the day served.
    day = SMALL_SPEC.end_date
    closed = offline.exclude_closed(as_of(resources["item_catalogue"].read_items(day), day))
    assert closed > 0

    serving = build_serving_resources(local_env(tmp_path))
    metrics = ServiceMetrics()
    follower = ChampionFollower(
        serving["model_store"], SETTINGS.model_name, metrics, serving["item_catalogue"], reload_seconds=0.1, day=day
    )
    with running(create_app(follower, metrics)) as client:
        assert client.get("/readyz").status_code == 503  # proposed, not yet released
        merge_release(resources, version)
        ready = eventually(lambda: client.get("/readyz").status_code == 200 and client.get("/readyz").json())
        assert ready["model_version"] == version and ready["closed_items"] == closed
        users = offline.user_ids.to_pylist()
        for user in users[:: max(1, len(users) // 150)]:
            body = client.get(f"/v1/users/{user}/recommendations").json()
            assert body["source"] == "model" and body["model_version"] == version
            assert body["items"] == offline.recommend(user, offline.seen_item_ids(user), 10)
        history = offline.seen_item_ids(users[0])[:5]
        body = client.post("/v1/recommendations", json={"history": history, "n": 7}).json()
        if offline.model.folds_in:
            assert body["source"] == "model" and body["items"] == offline.recommend(None, history, 7)
        else:
            assert body["source"] == "fallback" and body["items"] == offline.popular(history, 7)
        assert not np.isin(body["items"], history).any()
