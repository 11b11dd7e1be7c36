"""The item catalogue on both backends: upsert by id, reads bounded by the posting day, wiring."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.items import ITEMS_SCHEMA
from recsys_assets.resources import backend
from recsys_assets.resources.bigquery_catalogue import BigQueryItemCatalogue
from recsys_assets.resources.catalogue import DuckDBItemCatalogue, ItemCatalogue
from recsys_assets.resources.warehouse import WarehouseUnavailable
from recsys_assets.settings import Settings
from recsys_assets_tests.support.environment import local_env
from recsys_assets_tests.support.standins.bigquery import BigQueryStandIn

D = date(2026, 5, 4)


def postings(ids: list[str], title: str = "python engineer", posted: date = D) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "item_id": ids,
            "title": [title] * n,
            "description": ["django api"] * n,
            "category": ["backend"] * n,
            "location": ["berlin"] * n,
            "posted_date": [posted] * n,
            "closed_date": pa.nulls(n, pa.date32()),
        },
        schema=ITEMS_SCHEMA,
    )


def check_upsert_and_bounded_reads(catalogue: ItemCatalogue) -> None:
    assert catalogue.replace_items(postings(["j1", "j2"])) == 2
    assert catalogue.replace_items(postings(["j3"], posted=date(2026, 5, 10))) == 1
    # Re-importing a posting replaces its row; the others stay.
    assert catalogue.replace_items(postings(["j2"], title="golang engineer")) == 1
    until_d = catalogue.read_items(D)
    assert until_d.schema == ITEMS_SCHEMA
    assert until_d["item_id"].to_pylist() == ["j1", "j2"]
    assert until_d["title"].to_pylist() == ["python engineer", "golang engineer"]
    assert catalogue.read_items(date(2026, 5, 10))["item_id"].to_pylist() == ["j1", "j2", "j3"]


def test_duckdb_catalogue_upserts_by_id_and_reads_postings_up_to_a_day(tmp_path):
    catalogue = DuckDBItemCatalogue(path=str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(WarehouseUnavailable, match="does not exist"):
        catalogue.read_items(D)
    check_upsert_and_bounded_reads(catalogue)


def build_item_catalogue(env: dict[str, str]) -> ItemCatalogue:
    settings = Settings.from_env(env)
    return backend("item_catalogue", settings).build(settings, {})


def test_the_catalogue_follows_the_warehouse_backend_and_refuses_an_unsafe_table_name(tmp_path):
    env = local_env(tmp_path)
    catalogue = build_item_catalogue(env)
    assert isinstance(catalogue, DuckDBItemCatalogue) and catalogue.table == "items"
    with pytest.raises(ConfigurationError, match="RECSYS_ITEMS_TABLE"):
        build_item_catalogue({**env, "RECSYS_ITEMS_TABLE": "items; DROP TABLE events"})
    bq = {**env, "RECSYS_WAREHOUSE": "bigquery", "RECSYS_BQ_PROJECT": "demo-project", "RECSYS_BQ_DATASET": "recsys"}
    catalogue = build_item_catalogue(bq)
    assert isinstance(catalogue, BigQueryItemCatalogue)
    assert catalogue.table_ref == "bigquery:demo-project.recsys.items"


@pytest.mark.slow
def test_bigquery_catalogue_upserts_by_id_and_reads_postings_up_to_a_day(bigquery_standin: BigQueryStandIn):
    catalogue = BigQueryItemCatalogue(warehouse=bigquery_standin.warehouse(table="items"))
    check_upsert_and_bounded_reads(catalogue)
