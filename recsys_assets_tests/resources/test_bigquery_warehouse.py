"""The BigQuery warehouse through the real client: against the local emulator, and its wiring and failures."""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from recsys_assets.cli.pipeline import materialize_partition
from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.pair_pipeline import PairsFiles, PairsRequest, load_pairs
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.quality import split_extract
from recsys_assets.domain.splitting import PROTOCOLS, build_training_set, training_set_from_pairs
from recsys_assets.domain.synthetic import SMALL_SPEC, generate_events, generate_postings
from recsys_assets.resources import backend, build_resources
from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse
from recsys_assets.resources.warehouse import WarehouseUnavailable
from recsys_assets.settings import Settings
from recsys_assets_tests.domain.test_pair_pipeline import assert_same_training_set
from recsys_assets_tests.support.environment import FAST_SELECTION, local_env, seed
from recsys_assets_tests.support.standins.bigquery import BigQueryStandIn, free_port

DAY = datetime(2026, 5, 4, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)
LITERAL_DATE = re.compile(r"20\d\d-?\d\d-?\d\d")
PARTITION = SMALL_SPEC.end_date.isoformat()


def events(day: datetime, n: int, user: str = "u") -> pa.Table:
    return pa.table(
        {
            "user_id": [f"{user}{i}" for i in range(n)],
            "item_id": [f"j{i % 3}" for i in range(n)],
            "event_type": ["view"] * n,
            "weight": [1.0 + i for i in range(n)],
            "event_ts": [day + timedelta(minutes=7 * i) for i in range(n)],
        },
        schema=EVENTS_SCHEMA,
    )


@pytest.mark.slow
def test_extract_reads_exactly_the_day_and_rewrites_are_idempotent(bigquery_standin: BigQueryStandIn):
    warehouse = bigquery_standin.warehouse()
    # The table does not exist yet: the first write creates it, day-partitioned on event_ts.
    assert warehouse.replace_days(pa.concat_tables([events(DAY, 3), events(NEXT, 2)])) == {
        "2026-05-04": 3,
        "2026-05-05": 2,
    }
    table = bigquery_standin.client().get_table(warehouse.table_id)
    assert table.time_partitioning.type_ == "DAY" and table.time_partitioning.field == "event_ts"

    first = warehouse.read_events(DAY, NEXT)
    assert first.schema == EVENTS_SCHEMA
    assert first.to_pylist() == events(DAY, 3).to_pylist()

    # Re-writing a day replaces it (twice over, same result); the other day is untouched.
    for _ in range(2):
        assert warehouse.replace_days(events(DAY, 4, user="v")) == {"2026-05-04": 4}
        assert warehouse.read_events(DAY, NEXT)["user_id"].to_pylist() == ["v0", "v1", "v2", "v3"]
    assert warehouse.read_events(NEXT, NEXT + timedelta(days=1)).to_pylist() == events(NEXT, 2).to_pylist()
    assert [(p.partition_key, p.total_rows) for p in warehouse.list_partitions()] == [
        ("2026-05-04", 4),
        ("2026-05-05", 2),
    ]
    # Staging tables are dropped after each merge.
    assert [t.table_id for t in bigquery_standin.client().list_tables(bigquery_standin.dataset)] == ["events"]


@pytest.mark.slow
def test_reads_of_an_empty_range_and_a_multi_day_range(bigquery_standin: BigQueryStandIn):
    warehouse = bigquery_standin.warehouse()
    warehouse.replace_days(pa.concat_tables([events(DAY, 3), events(NEXT, 2)]))
    empty = warehouse.read_events(DAY - timedelta(days=3), DAY)
    assert empty.num_rows == 0 and empty.schema == EVENTS_SCHEMA
    both = warehouse.read_events(DAY, NEXT + timedelta(days=1))
    assert both.num_rows == 5 and both["event_ts"].to_pylist() == sorted(both["event_ts"].to_pylist())
    # Naive datetimes are UTC, as everywhere else in the project.
    assert warehouse.read_events(DAY.replace(tzinfo=None), NEXT.replace(tzinfo=None)).num_rows == 3


@pytest.mark.slow
def test_queries_are_parameterised(bigquery_standin: BigQueryStandIn):
    warehouse = bigquery_standin.warehouse()
    warehouse.replace_days(events(DAY, 2))
    warehouse.read_events(DAY, NEXT)
    warehouse.list_partitions()
    # What the server received: dates and table names of partitions travel as parameters only.
    texts = bigquery_standin.query_texts()
    assert any(t.startswith("MERGE") for t in texts) and any("@start" in t and "@end" in t for t in texts)
    assert any("INFORMATION_SCHEMA.PARTITIONS" in t and "@table_name" in t for t in texts)
    assert not [t for t in texts if LITERAL_DATE.search(t)]


@pytest.mark.slow
def test_missing_table_or_dataset_is_reported_with_the_table_and_partition(bigquery_standin: BigQueryStandIn):
    warehouse = bigquery_standin.warehouse(table="absent")
    with pytest.raises(
        WarehouseUnavailable,
        match=rf"not found: bigquery:recsys-test\.{bigquery_standin.dataset}\.absent "
        r"\(reading partition 2026-05-04\)",
    ):
        warehouse.read_events(DAY, NEXT)
    with pytest.raises(WarehouseUnavailable, match=r"\.absent \(listing partitions\)"):
        warehouse.list_partitions()
    assert warehouse.existing_partitions() == []  # for a writer about to create it, a missing table is empty
    # Writes create a missing table, but never a missing dataset.
    no_dataset = bigquery_standin.warehouse(dataset="no_such_dataset")
    with pytest.raises(WarehouseUnavailable, match=r"no_such_dataset\.events \(replacing partition 2026-05-04\)"):
        no_dataset.replace_days(events(DAY, 1))
    with pytest.raises(
        WarehouseUnavailable, match=r"no_such_dataset\.events \(reading partition 2026-05-04\.\.2026-05-05\)"
    ):
        no_dataset.read_events(DAY, NEXT + timedelta(days=1))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Retrieving Arrow record batches:PendingDeprecationWarning")
def test_storage_read_api_client_reaches_the_configured_endpoint(bigquery_standin: BigQueryStandIn):
    warehouse = bigquery_standin.warehouse(use_storage_api=True)
    warehouse.replace_days(events(DAY, 5))
    # The emulator cannot Storage-read query results (so `read_events` runs with the API off here), but
    # it can read tables: that proves the read client built from `storage_endpoint` reaches it over
    # plaintext gRPC.
    storage = warehouse._storage_client()
    try:
        rows = bigquery_standin.client().list_rows(warehouse.table_id).to_arrow(bqstorage_client=storage)
    finally:
        storage.transport.close()
    assert sorted(rows["user_id"].to_pylist()) == [f"u{i}" for i in range(5)]
    assert bigquery_standin.warehouse(use_storage_api=False)._storage_client() is None


def test_unreachable_bigquery_is_reported_after_a_bounded_retry():
    warehouse = BigQueryWarehouse(
        project="recsys-test",
        dataset="events_ds",
        endpoint=f"http://127.0.0.1:{free_port()}",
        anonymous_credentials=True,
        retry_deadline_seconds=0.5,
        timeout_seconds=2.0,
    )
    started = time.monotonic()
    with pytest.raises(
        WarehouseUnavailable,
        match=r"BigQuery at http://127\.0\.0\.1:\d+ unavailable for "
        r"bigquery:recsys-test\.events_ds\.events \(listing partitions\)",
    ):
        warehouse.list_partitions()
    assert time.monotonic() - started < 10


def test_identifiers_are_checked_before_they_reach_sql():
    for bad in ({"dataset": "ds`; DROP TABLE x; --"}, {"table": "events` WHERE 1=1 --"}, {"project": "Not A Project"}):
        warehouse = BigQueryWarehouse(**{"project": "recsys-test", "dataset": "ds", **bad})
        with pytest.raises(ValueError, match="invalid BigQuery"):
            warehouse.read_events(DAY, NEXT)


def build_warehouse(env: dict[str, str]) -> BigQueryWarehouse:
    settings = Settings.from_env(env)
    return backend("warehouse", settings).build(settings, {})


def test_build_warehouse_selects_bigquery_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env = {
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_WAREHOUSE": "bigquery",
        "RECSYS_BQ_PROJECT": "recsys-prod",
        "RECSYS_BQ_DATASET": "events_ds",
        "RECSYS_BQ_LOCATION": "EU",
        "RECSYS_BQ_USE_STORAGE_API": "false",
        "RECSYS_BQ_ENDPOINT": "http://127.0.0.1:9050",
        "RECSYS_BQ_STORAGE_ENDPOINT": "127.0.0.1:9060",
    }
    for name in env:
        monkeypatch.delenv(name, raising=False)
    warehouse = build_warehouse(env)
    assert isinstance(warehouse, BigQueryWarehouse)
    assert warehouse.table_ref == "bigquery:recsys-prod.events_ds.events"
    assert (warehouse.location, warehouse.use_storage_api, warehouse.anonymous_credentials) == ("EU", False, True)

    # Google's endpoint: credentials, Storage API on by default.
    prod = build_warehouse(
        {"RECSYS_WAREHOUSE": "bigquery", "RECSYS_BQ_PROJECT": "recsys-prod", "RECSYS_BQ_DATASET": "events_ds"}
    )
    assert (prod.endpoint, prod.anonymous_credentials, prod.use_storage_api) == (None, False, True)

    # Values from the process environment stay EnvVars, so the definitions carry names, not values.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from_process = build_warehouse(env)
    assert from_process.project == dg.EnvVar("RECSYS_BQ_PROJECT") and isinstance(from_process.dataset, dg.EnvVar)
    assert from_process.table_ref == "bigquery:recsys-prod.events_ds.events"  # usable outside Dagster too

    with pytest.raises(ConfigurationError, match="RECSYS_WAREHOUSE=bigquery needs RECSYS_BQ_DATASET"):
        build_warehouse({"RECSYS_WAREHOUSE": "bigquery", "RECSYS_BQ_PROJECT": "p-roject"})
    with pytest.raises(ConfigurationError, match="RECSYS_BQ_USE_STORAGE_API='maybe'"):
        build_warehouse({**env, "RECSYS_BQ_USE_STORAGE_API": "maybe"})


@pytest.mark.slow
def test_full_graph_materializes_from_the_bigquery_emulator(bigquery_standin: BigQueryStandIn, tmp_path: Path):
    resources = build_resources(local_env(tmp_path, **bigquery_standin.env()))
    assert isinstance(resources["warehouse"], BigQueryWarehouse)
    started = time.monotonic()
    rows_per_day = seed(resources)  # synthetic job-board events, loaded through a staging table and MERGE
    seeded = time.monotonic() - started
    with dg.instance_for_test() as instance:
        outcome = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
        assert outcome.success, outcome.failures
        extract = instance.get_latest_materialization_event(dg.AssetKey("interactions")).asset_materialization.metadata
    assert extract["source"].value == f"bigquery:recsys-test.{bigquery_standin.dataset}.events"
    # The latest materialization is the window's last day, with that day's numbers.
    assert extract["dagster/row_count"].value == rows_per_day[PARTITION] and extract["rows_rejected"].value == 0
    assert outcome.evaluation.model["ndcg@10"] > outcome.evaluation.baselines["popularity"]["ndcg@10"]
    assert outcome.bundle is not None and outcome.bundle.version
    print(
        f"seeded {sum(rows_per_day.values()):,} events over {len(rows_per_day)} days in {seeded:.1f}s; "
        f"whole graph in {time.monotonic() - started - seeded:.1f}s"
    )


@pytest.mark.slow
def test_bigquery_runs_the_pair_pipeline_and_its_pairs_give_the_in_memory_matrices(
    bigquery_standin: BigQueryStandIn, tmp_path: Path
):
    """The pipeline as BigQuery jobs (its dialect), read back page by page: the same matrices as DuckDB in memory.

    The emulator (bqemulator) translates GoogleSQL to DuckDB with sqlglot, so this checks the BigQuery text
    parses and means the same; speed and Google's own planner are out of its reach.
    """
    spec = dataclasses.replace(SMALL_SPEC, n_users=150, n_items=60, n_days=6, events_per_day=500)
    generated = generate_events(spec)
    # Malformed rows the extracts would quarantine (`split_extract`), each of which would change the pairs if
    # it got through: NaN and negative weights on real pairs, a blank user on busy items, a blank item of busy users.
    users, items = generated["user_id"].to_pylist()[:3], generated["item_id"].to_pylist()[:3]
    ts = generated["event_ts"][0].as_py()
    broken = pa.table(
        {
            "user_id": users[:2] + [" \t\u00a0"] * 3 + users,
            "item_id": items[:2] + items + ["\u2003"] * 3,
            "event_type": ["view"] * 8,
            "weight": [float("nan"), -1.0] + [5.0] * 6,
            "event_ts": [ts] * 8,
        },
        schema=EVENTS_SCHEMA,
    )
    judged = split_extract(broken, [ts.astimezone(UTC).date().isoformat()])
    (day,) = judged.days
    assert (day.null_ids, day.bad_weights, judged.rows_outside) == (6, 2, 0)
    warehouse = bigquery_standin.warehouse()
    warehouse.replace_days(pa.concat_tables([generated, broken]))
    catalogue = generate_postings(spec)["item_id"]
    params = SplitParams(cut_days=1, min_user_items=2, min_item_users=2)
    files = PairsFiles(str(tmp_path / "set"))
    start = datetime.combine(spec.end_date - timedelta(days=spec.n_days - 1), datetime.min.time(), tzinfo=UTC)
    request = PairsRequest(
        start=start,
        end=start + timedelta(days=spec.n_days),
        extracts=[],
        params=params,
        catalogue_ids=catalogue,
        files=files,
        protocols=PROTOCOLS,
    )
    content = warehouse.build_pairs(request)

    from_bigquery = training_set_from_pairs(load_pairs(files, PROTOCOLS), params)
    in_memory = build_training_set(generated, params, catalogue)
    assert from_bigquery.counts.events == generated.num_rows
    assert_same_training_set(in_memory, from_bigquery)
    # Every intermediate table is gone; a second build of the same window writes the same files.
    assert [t.table_id for t in bigquery_standin.client().list_tables(bigquery_standin.dataset)] == ["events"]
    assert warehouse.build_pairs(dataclasses.replace(request, files=PairsFiles(str(tmp_path / "again")))) == content
    # Every query the pipeline sent was parameterised: no date of the window is spelled out in the SQL.
    assert not [q for q in bigquery_standin.query_texts() if "__pairs_" in q and LITERAL_DATE.search(q)]
