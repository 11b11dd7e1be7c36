"""Ids are text in every importer: no type inference, one trimming and null rule, hostile files refused in one line."""

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from recsys_assets.domain.event_importer import ImportRejectedError, read_events_file
from recsys_assets.domain.item_importer import read_items_file

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TRICKY_IDS = ["007", "12345678901234567890", "NA", "null", "nan", " j1 ", "\tj2"]
KEPT_IDS = {"007", "12345678901234567890", "NA", "null", "nan", "j1", "j2"}


def events(tmp_path, body: bytes, header: bytes = b"user_id,item_id,timestamp\n", **kwargs):
    path = tmp_path / "events.csv"
    path.write_bytes(header + body)
    return read_events_file(path, now=NOW, **kwargs)


def items(tmp_path, body: bytes, header: bytes = b"item_id,title\n"):
    path = tmp_path / "items.csv"
    path.write_bytes(header + body)
    return read_items_file(path)


def read_either(kind: str, path):
    return read_events_file(path, now=NOW) if kind == "events" else read_items_file(path)


def test_events_and_catalogue_keep_the_same_id_text(tmp_path):
    event_rows = "".join(f"u1,{i},2026-01-02\n" for i in TRICKY_IDS).encode()
    item_rows = "".join(f"{i},title\n" for i in TRICKY_IDS).encode()
    table, _ = events(tmp_path, event_rows, max_invalid_share=0.0)
    catalogue, report = items(tmp_path, item_rows)
    assert set(table["item_id"].to_pylist()) == KEPT_IDS
    assert set(catalogue["item_id"].to_pylist()) == KEPT_IDS
    assert report.null_ids == 0


def test_blank_ids_are_null_in_both(tmp_path):
    table, report = events(tmp_path, b"u1,j1,2026-01-02\nu1,  ,2026-01-02\n", max_invalid_share=0.5)
    assert report.null_ids == 1 and table.num_rows == 1
    catalogue, report = items(tmp_path, b"j1,a\n  ,b\n")
    assert report.null_ids == 1 and catalogue["item_id"].to_pylist() == ["j1"]


@pytest.mark.parametrize("kind", ["events", "items"])
@pytest.mark.parametrize(
    ("column", "type_name"),
    [
        (pa.array([["a", "b"]], pa.list_(pa.string())), "list<element: string>"),
        (pa.array([{"id": "j1", "v": 1}]), "struct<id: string, v: int64>"),
        (pa.array([1.5]), "double"),
    ],
)
def test_nested_or_floating_parquet_ids_are_refused_naming_the_column(tmp_path, kind, column, type_name):
    path = tmp_path / "file.parquet"
    other = pa.array(["2026-01-02"]) if kind == "events" else pa.array(["t"])
    pq.write_table(pa.table({"user_id": ["u1"], "item_id": column, "timestamp": other, "title": ["t"]}), path)
    with pytest.raises(ImportRejectedError, match=rf"column item_id is {type_name}") as refused:
        read_either(kind, path)
    assert "\n" not in str(refused.value)


def test_integer_parquet_ids_become_their_decimal_text(tmp_path):
    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": pa.array([7, 12], pa.int64()), "title": ["a", "b"]}), path)
    catalogue, _ = read_items_file(path)
    assert catalogue["item_id"].to_pylist() == ["7", "12"]


@pytest.mark.parametrize("kind", ["events", "items"])
def test_a_nul_in_a_value_after_the_first_8_kb_is_refused(tmp_path, kind):
    header, row = (
        (b"user_id,item_id,timestamp\n", b"u1,j1,2026-01-02\n") if kind == "events" else (b"item_id,title\n", b"j1,t\n")
    )
    bad = b"u1,j\x002,2026-01-02\n" if kind == "events" else b"j\x002,t\n"
    path = tmp_path / "file.csv"
    path.write_bytes(header + row * 2000 + bad)
    with pytest.raises(ImportRejectedError, match="NUL"):
        read_either(kind, path)


@pytest.mark.parametrize("kind", ["events", "items"])
def test_a_nul_inside_a_parquet_id_is_refused(tmp_path, kind):
    path = tmp_path / "file.parquet"
    pq.write_table(pa.table({"user_id": ["u1"], "item_id": ["j\x001"], "timestamp": ["2026-01-02"]}), path)
    with pytest.raises(ImportRejectedError, match="NUL"):
        read_either(kind, path)


@pytest.mark.parametrize("kind", ["events", "items"])
@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"user_id,item_id,timestamp,title,item_id\n", "repeats the column 'item_id'"),
        (b"user_id,item_id,timestamp,title,title\n", "repeats the column 'title'"),
        (b"user_id,item_id,timestamp,title," + b"x" * 200_000 + b"\n", "header"),
    ],
)
def test_duplicate_or_over_long_header_names_are_refused_naming_them(tmp_path, kind, header, message):
    path = tmp_path / "file.csv"
    path.write_bytes(header + b"u1,j1,2026-01-02,t,x\n")
    with pytest.raises(ImportRejectedError, match=message) as refused:
        read_either(kind, path)
    assert len(str(refused.value)) < 400


def test_duplicate_parquet_column_names_are_refused(tmp_path):
    path = tmp_path / "items.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["j1"]), pa.array(["j2"])], names=["item_id", "item_id"]), path)
    with pytest.raises(ImportRejectedError, match="repeats the column 'item_id'"):
        read_items_file(path)


@pytest.mark.parametrize("kind", ["events", "items"])
def test_latin1_input_is_refused_by_its_encoding(tmp_path, kind):
    header, row = (
        (b"user_id,item_id,timestamp\n", "u1,jé,2026-01-02\n")
        if kind == "events"
        else (b"item_id,title\n", "j1,café\n")
    )
    path = tmp_path / "file.csv"
    path.write_bytes(header + row.encode("latin-1"))
    with pytest.raises(ImportRejectedError, match=r"not UTF-8.*line 2") as refused:
        read_either(kind, path)
    assert "timestamp" not in str(refused.value)


def test_utf16_input_is_refused_by_its_encoding(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes("user_id,item_id,timestamp\nu1,j1,2026-01-02\n".encode("utf-16"))
    with pytest.raises(ImportRejectedError, match="UTF-16"):
        read_events_file(path)


def test_compact_dates_are_bad_timestamps_never_epochs(tmp_path):
    rows = b"u1,j1,2026-01-02\n" * 9 + b"u1,j2,20261120\n"
    table, report = events(tmp_path, rows, max_invalid_share=0.5)
    assert report.bad_timestamps == 1 and report.out_of_range == 0
    assert pc.min(table["event_ts"]).as_py().year == 2026
    with pytest.raises(ImportRejectedError, match=r"timestamp column e\.g\. '20261120'"):
        events(tmp_path, rows)


@pytest.mark.parametrize("kind", ["events", "items"])
def test_an_unclosed_quote_is_reported_as_such(tmp_path, kind):
    header, row = (
        (b"user_id,item_id,timestamp\n", b"u1,j1,2026-01-02\n") if kind == "events" else (b"item_id,title\n", b"j1,t\n")
    )
    path = tmp_path / "file.csv"
    path.write_bytes(header + row + b'"u2' + row * 3)
    with pytest.raises(ImportRejectedError, match="line 3 opens a quote that is never closed"):
        read_either(kind, path)


@pytest.mark.slow
def test_a_huge_row_is_counted_not_dropped(tmp_path):
    # 40 MiB: beyond DuckDB's read buffer, where its CSV reader drops a row without a trace.
    huge = b"u3," + b"x" * (40 * 1024 * 1024) + b",2026-01-02\n"
    with pytest.raises(
        ImportRejectedError, match=r"1 of 6 rows are malformed .* 1 rows over 1,048,576 bytes \(first on line 6\)"
    ):
        events(tmp_path, b"u1,j1,2026-01-02\n" * 4 + huge + b"u2,j1,2026-01-02\n")


def test_a_long_row_is_counted_in_the_report(tmp_path):
    long_row = b"u3," + b"x" * (2 * 1024 * 1024) + b",2026-01-02\n"
    table, report = events(tmp_path, b"u1,j1,2026-01-02\n" * 4 + long_row, max_invalid_share=0.5)
    assert (report.rows_read, report.oversize_rows, report.first_oversize_line, table.num_rows) == (5, 1, 6, 4)
    assert "1 rows over 1,048,576 bytes (first on line 6)" in report.dropped()


def test_movielens_movies_csv_follows_the_same_rules(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes(b'movieId,title,genres\n007,"Bond, James",Action|Thriller\n NA ,x,Drama\n')
    catalogue, _ = read_items_file(path, "movielens")
    assert catalogue["item_id"].to_pylist() == ["007", "NA"] and catalogue["category"].to_pylist() == [
        "Action",
        "Drama",
    ]
    path.write_bytes(b"movieId,title,genres,title\n1,a,Drama,b\n")
    with pytest.raises(ImportRejectedError, match="repeats the column 'title'"):
        read_items_file(path, "movielens")
    path.write_bytes("movieId,title,genres\n1,Amélie,Drama\n".encode("latin-1"))
    with pytest.raises(ImportRejectedError, match="not UTF-8"):
        read_items_file(path, "movielens")
