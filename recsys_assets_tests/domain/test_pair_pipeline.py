"""The training set's SQL pipeline run by a warehouse: its Parquet pairs give the matrices the in-memory build gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from recsys_assets.domain import pair_pipeline
from recsys_assets.domain.layout import PROTOCOL_MATRICES
from recsys_assets.domain.pair_pipeline import PairsFiles, PairsRequest, PairsSummary, load_pairs
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.splitting import PROTOCOLS, TrainingSet, build_training_set, training_set_from_pairs
from recsys_assets.domain.synthetic import SMALL_SPEC, generate_events, generate_postings
from recsys_assets.resources.warehouse import DuckDBWarehouse, Warehouse, WarehouseUnavailable

PARAMS = SplitParams(cut_days=2)


def assert_same_training_set(expected: TrainingSet, actual: TrainingSet) -> None:
    """Every matrix equal entry for entry (shape, dtype, values), the same id maps and the same counts."""
    assert actual.counts == expected.counts
    assert actual.user_ids.equals(expected.user_ids) and actual.item_ids.equals(expected.item_ids)
    pairs = [(getattr(expected, m), getattr(actual, m)) for m in ("full", "times")]
    for name, split in expected.protocols.items():
        pairs += [(getattr(split, m), getattr(actual.protocols[name], m)) for m in PROTOCOL_MATRICES]
    for want, got in pairs:
        assert got.shape == want.shape and got.dtype == want.dtype
        assert (got != want).nnz == 0
    assert expected.full.nnz > 0


def write_extracts(events: pa.Table, folder: Path, days: int = 3) -> list[str]:
    """`events` cut into a few Parquet files, as the daily extracts are."""
    uris, step = [], -(-events.num_rows // days)
    for n in range(days):
        uri = str(folder / f"extract-{n}.parquet")
        pq.write_table(events.slice(n * step, step), uri)
        uris.append(uri)
    return uris


def build_with(warehouse: Warehouse, extracts: list[str], catalogue: pa.ChunkedArray, folder: Path) -> str:
    return warehouse.build_pairs(
        PairsRequest(
            start=datetime(2000, 1, 1, tzinfo=UTC),
            end=datetime(2100, 1, 1, tzinfo=UTC),
            extracts=extracts,
            params=PARAMS,
            catalogue_ids=catalogue,
            files=PairsFiles(str(folder)),
            protocols=PROTOCOLS,
        )
    )


@pytest.mark.slow
def test_the_duckdb_warehouse_pairs_give_the_in_memory_matrices_entry_for_entry(tmp_path, monkeypatch):
    # Small shards, so the pairs really span several files and their order across shards matters.
    monkeypatch.setattr(pair_pipeline, "SHARD_ROWS", 1_000)
    events, catalogue = generate_events(SMALL_SPEC), generate_postings(SMALL_SPEC)["item_id"]
    extracts = write_extracts(events, tmp_path)
    warehouse = DuckDBWarehouse(path=str(tmp_path / "unused.duckdb"), pairs_memory_mib=256)

    content = build_with(warehouse, extracts, catalogue, tmp_path / "set")

    files = PairsFiles(str(tmp_path / "set"))
    summary = PairsSummary.model_validate_json((tmp_path / "set" / "pairs.json").read_text())
    assert len(summary.shards) == -(-summary.pairs // 1_000) > 1
    from_pairs = training_set_from_pairs(load_pairs(files, PROTOCOLS), PARAMS)
    assert_same_training_set(build_training_set(events, PARAMS, catalogue), from_pairs)
    # The same window gives the same files, so the data version (and the retrain skip) holds.
    assert build_with(warehouse, extracts, catalogue, tmp_path / "again") == content
    # A changed window does not.
    (tmp_path / "later").mkdir()
    later = events.set_column(4, "event_ts", pc.add(events["event_ts"], pa.scalar(timedelta(hours=1))))
    assert build_with(warehouse, write_extracts(later, tmp_path / "later"), catalogue, tmp_path / "moved") != content


@pytest.mark.slow
def test_the_pipeline_text_holds_no_input_controlled_text(tmp_path):
    """Event types and catalogue ids travel as tables, never as SQL: a hostile one is just an unknown value."""
    hostile = "view'); DROP TABLE events; --"
    events = generate_events(SMALL_SPEC)
    params = SplitParams(cut_days=2, event_type_weights={hostile: 2.0, "apply": 3.0})
    extracts = write_extracts(events, tmp_path)
    request = PairsRequest(
        start=datetime(2000, 1, 1, tzinfo=UTC),
        end=datetime(2100, 1, 1, tzinfo=UTC),
        extracts=extracts,
        params=params,
        catalogue_ids=pa.chunked_array([pa.array([hostile])]),
        files=PairsFiles(str(tmp_path / "set")),
        protocols=PROTOCOLS,
    )
    DuckDBWarehouse(path=str(tmp_path / "unused.duckdb")).build_pairs(request)
    from_pairs = training_set_from_pairs(load_pairs(request.files, PROTOCOLS), params)
    assert_same_training_set(build_training_set(events, params, request.catalogue_ids), from_pairs)


@pytest.mark.slow
def test_an_empty_window_writes_empty_pairs(tmp_path):
    files = PairsFiles(str(tmp_path / "set"))
    DuckDBWarehouse(path=str(tmp_path / "unused.duckdb")).build_pairs(
        PairsRequest(
            start=datetime(2000, 1, 1, tzinfo=UTC),
            end=datetime(2000, 1, 2, tzinfo=UTC),
            extracts=[],
            params=PARAMS,
            catalogue_ids=None,
            files=files,
            protocols=PROTOCOLS,
        )
    )
    loaded = load_pairs(files, PROTOCOLS)
    assert loaded.summary.pairs == loaded.summary.events == 0 and len(loaded.columns["u"]) == 0


@pytest.mark.slow
def test_a_failing_engine_process_is_reported_in_one_line_and_writes_no_summary(tmp_path):
    """The DuckDB engine runs in its own process: its failure reaches the orchestrator as one named line."""
    files = PairsFiles(str(tmp_path / "set"))
    request = PairsRequest(
        start=datetime(2000, 1, 1, tzinfo=UTC),
        end=datetime(2100, 1, 1, tzinfo=UTC),
        extracts=[str(tmp_path / "never-extracted.parquet")],
        params=PARAMS,
        catalogue_ids=None,
        files=files,
        protocols=PROTOCOLS,
    )
    with pytest.raises(WarehouseUnavailable, match=r"^DuckDB could not build the pairs of .*: \w+") as raised:
        DuckDBWarehouse(path=str(tmp_path / "unused.duckdb")).build_pairs(request)
    assert "\n" not in str(raised.value) and "Traceback" not in str(raised.value)
    assert not (tmp_path / "set" / "pairs.json").exists()
