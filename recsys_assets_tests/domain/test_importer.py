"""Bring-your-own-data imports: formats, refusals, malformed-row accounting, idempotence."""

import gzip
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys_assets.cli import main
from recsys_assets.domain.event_importer import ImportRejectedError, connect, read_events_file
from recsys_assets_tests.support.environment import local_env


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


@pytest.mark.slow
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


def test_a_quoted_parquet_column_name_is_never_run_as_sql(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top-secret")
    # Spliced into SQL, this name would read the secret file into user_id and comment out the rest.
    injected = f"a\" AS VARCHAR) AS a, (SELECT content FROM read_text('{secret}')) AS user_id --"
    columns = {"item_id": ["j1"], "timestamp": ["2026-01-02"], "a": ["u1"], injected: ["z"]}
    path = tmp_path / "evil.parquet"
    pq.write_table(pa.table(columns), path)
    # Refused either as lacking user_id or for the over-long column name itself (long temporary paths).
    with pytest.raises(ImportRejectedError, match=r"missing required columns \['user_id'\]|column name of") as refused:
        read_events_file(path, max_invalid_share=0.0)
    assert "top-secret" not in str(refused.value)


def test_the_import_connection_cannot_install_or_load_extensions():
    con = connect()
    assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchall() == [(False,)]
    assert con.execute("SELECT current_setting('autoload_known_extensions')").fetchall() == [(False,)]
    with pytest.raises(duckdb.Error):
        con.execute("SET autoload_known_extensions = true")


def test_epochs_in_milliseconds_and_microseconds_are_read_in_their_unit(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\nu1,j1,1767261600\nu2,j1,1767261600000\nu3,j1,1767261600000000\n")
    table, report = read_events_file(path, max_invalid_share=0.0, now=datetime(2026, 2, 1, tzinfo=UTC))
    assert set(table["event_ts"].to_pylist()) == {datetime(2026, 1, 1, 10, 0, tzinfo=UTC)}
    assert report.rows_kept == 3


def test_out_of_range_timestamps_are_refused_naming_the_column_and_a_value(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,timestamp\nu1,j1,1e300\nu2,j1,99999999999999999999999\n")
    with pytest.raises(ImportRejectedError, match=r"2 bad timestamps.*timestamp column e\.g\. '1e300'"):
        read_events_file(path)


def test_non_finite_and_absurd_weights_are_bad_rows(tmp_path):
    path = tmp_path / "events.csv"
    rows = "".join(f"u{i},j1,2026-01-02,1\n" for i in range(97))
    path.write_text(
        "user_id,item_id,timestamp,weight\n" + rows + "u1,j2,2026-01-02,inf\nu1,j3,2026-01-02,1e308\n"
        "u1,j4,2026-01-02,nan\n"
    )
    table, report = read_events_file(path, max_invalid_share=0.05, now=datetime(2026, 2, 1, tzinfo=UTC))
    assert report.bad_weights == 3 and table.num_rows == 97
    with pytest.raises(ImportRejectedError, match="3 bad weights"):
        read_events_file(path, max_invalid_share=0.01, now=datetime(2026, 2, 1, tzinfo=UTC))


def test_future_and_before_start_rows_are_set_aside_and_reported(tmp_path):
    path = tmp_path / "events.csv"
    rows = "".join(f"u{i},j1,2026-01-02\n" for i in range(98))
    path.write_text("user_id,item_id,timestamp\n" + rows + "u1,j2,2100-01-01\nu1,j3,1990-01-01\n")
    kwargs = {"earliest": date(1995, 1, 1), "now": datetime(2026, 2, 1, tzinfo=UTC)}
    table, report = read_events_file(path, max_invalid_share=0.05, **kwargs)
    assert report.out_of_range == 2 and table.num_rows == 98
    assert max(table["event_ts"].to_pylist()) < datetime(2026, 2, 1, tzinfo=UTC)
    with pytest.raises(ImportRejectedError, match="2 before 1995-01-01 or after 2026-02-01"):
        read_events_file(path, max_invalid_share=0.01, **kwargs)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("binary.csv", b"\x00\x01\x02garbage", "is binary"),
        ("packed.csv", gzip.compress(b"user_id,item_id,timestamp\n", mtime=0), "gzip-compressed but named .csv"),
        ("fake.parquet", b"user_id,item_id\n", "is not a Parquet file"),
    ],
)
def test_unreadable_paths_say_what_is_wrong(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportRejectedError, match=message):
        read_events_file(path)


def test_a_directory_is_not_reported_as_missing(tmp_path):
    with pytest.raises(ImportRejectedError, match="is a directory"):
        read_events_file(tmp_path)


def test_short_and_long_rows_are_reported_as_such(tmp_path):
    path = tmp_path / "events.csv"
    rows = "".join(f"u{i},j1,2026-01-02\n" for i in range(8))
    path.write_text("user_id,item_id,timestamp\n" + rows + "u2,j2\nu3,j3,2026-01-02,extra\n")
    table, report = read_events_file(path, max_invalid_share=0.5, now=datetime(2026, 2, 1, tzinfo=UTC))
    assert (report.short_rows, report.long_rows, table.num_rows) == (1, 1, 8)
    with pytest.raises(ImportRejectedError, match="1 short rows, 1 long rows"):
        read_events_file(path, now=datetime(2026, 2, 1, tzinfo=UTC))


def test_a_gzip_csv_named_gz_is_read(tmp_path):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(b"user_id,item_id,timestamp\nu1,j1,2026-01-02\n"))
    table, _ = read_events_file(path, max_invalid_share=0.0, now=datetime(2026, 2, 1, tzinfo=UTC))
    assert table.num_rows == 1
