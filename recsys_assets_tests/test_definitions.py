"""The code location loads, validates, and has the shape the README describes."""

import dagster as dg

from recsys_assets import definitions
from recsys_assets.partitions import daily_partitions
from recsys_assets.settings import SETTINGS


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(definitions.defs)
    repo = definitions.defs.get_repository_def()
    assert repo.get_job("interactions_job") is not None
    assert repo.get_job("retrain_job") is not None
    assert sorted(s.name for s in repo.schedule_defs) == ["daily_extract_schedule", "retrain_schedule"]
    assert [s.name for s in repo.sensor_defs] == ["new_interaction_partitions"]


def test_asset_graph_snapshot():
    graph = definitions.defs.resolve_asset_graph()
    deps = {
        key.to_user_string(): sorted(parent.to_user_string() for parent in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
    }
    assert deps == {
        "interactions": [],
        "training_set": ["interactions"],
        "als_model": ["training_set"],
        "baseline_models": ["training_set"],
        "model_evaluation": ["als_model", "baseline_models"],
        "model_bundle": ["model_evaluation"],
        "model_release": ["model_bundle"],
    }
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    assert checks == [
        "interactions:no_null_ids",
        "interactions:non_negative_weights",
        "interactions:row_count_stable",
        "interactions:timestamps_inside_partition",
        "model_bundle:not_worse_than_champion",
        "model_evaluation:beats_baselines",
    ]
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == daily_partitions
        assert node.description and "\n" not in node.description.strip(), f"{key} needs a one-line docstring"


def test_training_window_mapping_covers_the_configured_days():
    graph = definitions.defs.resolve_asset_graph()
    mapping = graph.get(dg.AssetKey("training_set")).partition_mappings[dg.AssetKey("interactions")]
    assert mapping.start_offset == -(SETTINGS.training_window_days - 1)
    assert mapping.end_offset == 0


def test_every_resource_has_a_description():
    for name, resource in definitions.defs.resources.items():
        assert type(resource).__doc__ and type(resource).__doc__.strip(), f"resource {name} needs a docstring"


def test_local_runs_use_the_in_process_executor():
    assert definitions.defs.executor is dg.in_process_executor
