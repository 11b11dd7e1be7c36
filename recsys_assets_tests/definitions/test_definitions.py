"""The code location loads, validates, and has the shape the README describes."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from recsys_assets import definitions
from recsys_assets.asset_attributes import CODE_VERSION, GROUP, OWNERS, TAGS, kinds
from recsys_assets.assets import ASSETS
from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.partitions import daily_partitions
from recsys_assets.settings import DEFAULT_HORIZON_DAYS, SETTINGS, Settings, record_first_day

DEFS = definitions.defs()


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(DEFS)
    repo = DEFS.get_repository_def()
    assert repo.get_job("interactions_job") is not None
    assert repo.get_job("retrain_job") is not None
    assert repo.get_job("gc_job") is not None
    assert sorted(s.name for s in repo.schedule_defs) == ["daily_extract_schedule", "gc_schedule", "retrain_schedule"]
    assert [s.name for s in repo.sensor_defs] == [
        "freshness_alerts",
        "freshness_checks_sensor",
        "new_interaction_partitions",
        "outcome_retrain_trigger",
        "release_pull_requests",
        "run_failure_alerts",
        "served_lists",
    ]
    assert repo.get_job("delivery_job") is not None


def test_asset_graph_snapshot():
    graph = DEFS.resolve_asset_graph()
    deps = {
        key.to_user_string(): sorted(parent.to_user_string() for parent in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
    }
    assert deps == {
        "interactions": [],
        "items": [],
        "item_features": ["items"],
        "training_set": ["interactions", "items"],
        "trained_model": ["item_features", "training_set"],
        "baseline_models": ["training_set"],
        "model_evaluation": ["baseline_models", "item_features", "trained_model"],
        "model_bundle": ["model_evaluation"],
        "model_release": ["model_bundle"],
        "recommendations": ["interactions", "items"],
        "recommendation_outcomes": ["interactions", "recommendations"],
    }
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    assert checks == [
        "interactions:freshness_check",
        "interactions:no_null_ids",
        "interactions:non_negative_weights",
        "interactions:row_count_stable",
        "interactions:timestamps_inside_partition",
        "items:closed_after_posted",
        "items:postings_have_text",
        "items:unique_item_ids",
        "model_bundle:not_worse_than_champion",
        "model_evaluation:beats_baselines",
        "model_release:freshness_check",
        "recommendations:freshness_check",
        "recommendations:no_seen_or_closed_items",
    ]
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == daily_partitions
        assert node.description and "\n" not in node.description.strip(), f"{key} needs a one-line docstring"


def test_training_window_mapping_covers_the_configured_days():
    graph = DEFS.resolve_asset_graph()
    mapping = graph.get(dg.AssetKey("training_set")).partition_mappings[dg.AssetKey("interactions")]
    assert mapping.start_offset == -(SETTINGS.training_window_days - 1)
    assert mapping.end_offset == 0


def test_every_resource_has_a_description():
    for name, resource in DEFS.resources.items():
        assert type(resource).__doc__ and type(resource).__doc__.strip(), f"resource {name} needs a docstring"


def test_local_runs_use_the_in_process_executor():
    assert DEFS.executor is dg.in_process_executor


def test_every_asset_carries_owner_tags_code_version_and_one_group():
    graph = DEFS.resolve_asset_graph()
    nodes = [graph.get(key) for key in graph.get_all_asset_keys()]
    assert {node.group_name for node in nodes} == {GROUP}  # the lineage opens expanded, one graph
    for node in nodes:
        assert node.owners == OWNERS and node.tags.items() >= TAGS.items() and node.code_version == CODE_VERSION
    schema = graph.get(dg.AssetKey("interactions")).metadata["dagster/column_schema"]
    assert [column.name for column in schema.columns] == list(EVENTS_SCHEMA.names)
    assert all(column.description for column in schema.columns)


def test_kinds_name_the_configured_backends_not_every_possible_one():
    assert kinds("warehouse", "model_store", "release_publisher", "training_launcher") == {
        "duckdb",
        "filesystem",
        "python",
    }
    cloud = Settings.from_env({"RECSYS_WAREHOUSE": "bigquery", "RECSYS_MODEL_STORE": "s3", "RECSYS_RELEASE": "github"})
    assert kinds("warehouse", "model_store", "release_publisher", settings=cloud) == {"bigquery", "s3", "github"}


def test_every_config_field_has_a_description():
    fields = {
        f"{asset.key.to_user_string()}.{name}": field
        for asset in ASSETS
        # Assets without run config have no fields.
        for name, field in getattr(asset.op.config_schema.config_type, "fields", {}).items()
    }
    assert {"trained_model.families", "trained_model.seed", "training_set.cut_days", "model_evaluation.k"} <= set(
        fields
    )
    assert [name for name, field in fields.items() if not field.description] == []


def test_partitions_start_from_setting_then_first_seeded_day_then_a_rolling_horizon(tmp_path):
    def first_partition(**env: str) -> str:
        return Settings.from_env({"RECSYS_DATA_DIR": str(tmp_path), **env}).first_partition

    assert first_partition(RECSYS_PARTITIONS_START="1997-09-20") == "1997-09-20"
    horizon = first_partition()
    assert date.fromisoformat(horizon) == datetime.now(UTC).date() - timedelta(days=DEFAULT_HORIZON_DAYS)
    record_first_day(tmp_path, ["2026-03-05", "2026-03-01"])
    record_first_day(tmp_path, ["2026-04-01"])  # a later import keeps the earlier first day
    assert first_partition() == "2026-03-01"
    assert first_partition(RECSYS_PARTITIONS_START="1997-09-20") == "1997-09-20"


def test_every_asset_body_is_guarded_so_its_errors_are_scrubbed_and_classified():
    from recsys_assets.step_errors import GUARDED

    unguarded = [
        asset.key.to_user_string()
        for asset in ASSETS
        if not getattr(asset.op.compute_fn.decorated_fn, GUARDED, False)  # type: ignore[union-attr]
    ]
    assert unguarded == []


@pytest.mark.slow
def test_loading_the_code_location_prints_no_dagster_beta_preview_or_supersession_warning(tmp_path):
    # A fresh process with every warning shown, as `dagster dev`'s code server and the CLI start.
    code = "import recsys_assets.definitions as d; d.defs()"
    env = {**os.environ, "RECSYS_DATA_DIR": str(tmp_path), "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not any(f"{kind}Warning" in done.stderr for kind in ("Beta", "Preview", "Supersession")), done.stderr


def test_every_asset_links_its_own_source_not_the_step_guard():
    specs = list(definitions.defs().resolve_all_asset_specs())
    assert len(specs) == len(ASSETS)
    for spec in specs:
        (reference,) = spec.metadata["dagster/code_references"].code_references
        source = Path(reference.file_path).read_text().splitlines()
        # The reference is the asset's decorator; its function follows within a few lines.
        body = "\n".join(source[reference.line_number - 1 : reference.line_number + 12])
        assert f"def {spec.key.to_user_string()}(" in body, (spec.key, reference)


def test_table_like_assets_declare_their_column_schema():
    specs = {spec.key.to_user_string(): spec for spec in definitions.defs().resolve_all_asset_specs()}
    for table in ("interactions", "items"):
        schema = specs[table].metadata["dagster/column_schema"]
        assert schema.columns and all(column.description for column in schema.columns), table
