"""Bring-your-own-data imports: formats, refusals, malformed-row accounting, idempotence."""

from datetime import UTC, datetime

import pytest

from recsys_assets.__main__ import main
from recsys_assets.domain.importer import ImportRejectedError, read_events_file
from recsys_assets_tests.helpers import local_env


def test_events_csv_with_optional_columns(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,timestamp,event_type,weight\nu1,j1,2026-01-02T10:00:00Z,apply,2.5\nu2,j1,1767261600,,\n"
    )
    table, report = read_events_file(path, max_invalid_share=0.0)
    rows = table.to_pylist()  # ordered by time: the unix-seconds row (2026-01-01T10:00Z) comes first
    assert rows[0] == {
        "user_id": "u2",
        "item_id": "j1",
        "event_type": "interaction",
        "weight": 1.0,
        "event_ts": datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
    }
    assert rows[1]["event_type"] == "apply" and rows[1]["weight"] == 2.5
    assert rows[1]["event_ts"] == datetime(2026, 1, 2, 10, 0, tzinfo=UTC)
    assert (report.rows_read, report.rows_kept, report.rows_invalid) == (2, 2, 0)


def test_non_numeric_and_negative_weights_are_malformed(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,timestamp,weight\nu1,j1,2026-01-02,lots\nu1,j2,2026-01-02,-1\nu1,j3,2026-01-02,1\n"
    )
    table, report = read_events_file(path, max_invalid_share=0.9)
    assert report.bad_weights == 2 and table["item_id"].to_pylist() == ["j3"]


def test_wrong_columns_are_refused_naming_them(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("user,item,when\nu1,j1,2026-01-01\n")
    with pytest.raises(ImportRejectedError) as err:
        read_events_file(path)
    assert "user_id" in str(err.value) and "timestamp" in str(err.value) and "'when'" in str(err.value)


def test_malformed_rows_are_counted_and_a_high_share_fails(tmp_path):
    path = tmp_path / "dirty.csv"
    good = "".join(f"u{i},j{i % 7},2026-01-0{1 + i % 5}T08:00:00Z\n" for i in range(96))
    path.write_text("user_id,item_id,timestamp\n" + good + ",j1,2026-01-01\nu1,,2026-01-01\nu2,j2,yesterday\nu3,j3,\n")
    table, report = read_events_file(path, max_invalid_share=0.05)
    assert (report.rows_read, report.rows_kept, report.null_ids, report.bad_timestamps) == (100, 96, 2, 2)
    assert table.num_rows == 96
    with pytest.raises(ImportRejectedError, match="4 of 100 rows are malformed"):
        read_events_file(path, max_invalid_share=0.01)


def test_movielens_u_data_and_ratings_csv(tmp_path):
    u_data = tmp_path / "u.data"
    u_data.write_text("196\t242\t3\t881250949\n186\t302\t5\t891717742\n22\t377\t1\t878887116\n")
    table, report = read_events_file(u_data, fmt="movielens", min_rating=3)
    assert table["user_id"].to_pylist() == ["196", "186"]  # ordered by timestamp
    assert report.below_min_rating == 1 and table.num_rows == 2
    assert set(table["weight"].to_pylist()) == {3.0, 5.0}
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,4.0,1260759179\n")
    table, _ = read_events_file(ratings, fmt="movielens", min_rating=4.0)
    assert table.to_pylist()[0]["item_id"] == "1029" and table.num_rows == 1


def test_movielens_csv_with_wrong_header_is_refused(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,movie,score,ts\n1,2,3,4\n")
    with pytest.raises(ImportRejectedError, match="movieId"):
        read_events_file(path, fmt="movielens")


def test_cli_import_is_idempotent(tmp_path, monkeypatch, capsys):
    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "events.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "user_id": ["a", "b", "c"],
                "item_id": ["x", "y", "x"],
                "timestamp": ["2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z", "2026-01-02T03:00:00Z"],
            }
        ),
        path,
    )
    assert main(["import-events", str(path)]) == 0
    from recsys_assets.resources import build_resources

    warehouse = build_resources(local_env(tmp_path))["warehouse"]
    first = [(p.partition_id, p.total_rows) for p in warehouse.list_partitions()]
    assert main(["import-events", str(path)]) == 0
    assert (
        [(p.partition_id, p.total_rows) for p in warehouse.list_partitions()]
        == first
        == [("20260101", 2), ("20260102", 1)]
    )
    assert "imported 3 of 3 rows into 2 daily partitions" in capsys.readouterr().out


def test_cli_refuses_bad_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item\nu,i\n")
    assert main(["import-events", str(path)]) == 2
    assert "missing required columns ['item_id', 'timestamp']" in capsys.readouterr().err
    assert not (tmp_path / "warehouse.duckdb").exists()
