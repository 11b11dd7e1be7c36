"""Item catalogue import: CSV/Parquet catalogues and both MovieLens item formats (tiny fixture files)."""

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys_assets.domain.event_importer import ImportRejectedError
from recsys_assets.domain.item_importer import read_items_file
from recsys_assets.domain.items import ITEMS_SCHEMA


def flags(*genres: int) -> str:
    return "|".join("1" if i in genres else "0" for i in range(19))


def test_movielens_u_item_is_pipe_separated_latin1_with_genre_flags(tmp_path):
    path = tmp_path / "u.item"
    path.write_bytes(
        (
            f"1|Toy Story (1995)|01-Jan-1995||http://imdb/1|{flags(3, 4, 5)}\n"
            f"2|GoldenEye (1995)|01-Jan-1995||http://imdb/2|{flags(1, 2, 16)}\n"
            f"3|Café au lait (1996)|||http://imdb/3|{flags(0)}\n"
        ).encode("latin-1")
    )
    items, report = read_items_file(path, "movielens")
    assert items.schema == ITEMS_SCHEMA and (report.rows_read, report.rows_kept) == (3, 3)
    rows = items.to_pylist()
    assert [r["item_id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["description"] == "Animation Children's Comedy" and rows[0]["category"] == "Animation"
    assert rows[1]["description"] == "Action Adventure Thriller" and rows[1]["category"] == "Action"
    assert rows[2]["title"] == "Café au lait (1996)" and rows[2]["category"] == "unknown"
    assert rows[0]["posted_date"] is None and rows[0]["closed_date"] is None


def test_movielens_movies_csv_keeps_the_first_row_of_a_repeated_id(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children\n"
        '2,"Heat, The (1995)",Action|Crime\n'
        "2,Heat again,Drama\n"
        "3,Untitled,(no genres listed)\n"
    )
    items, report = read_items_file(path, "movielens")
    assert (report.rows_read, report.rows_kept, report.duplicate_ids) == (4, 3, 1)
    rows = {r["item_id"]: r for r in items.to_pylist()}
    assert rows["1"]["description"] == "Adventure Animation Children" and rows["1"]["category"] == "Adventure"
    assert rows["2"]["title"] == "Heat, The (1995)" and rows["2"]["category"] == "Action"


def test_movies_csv_without_its_columns_is_refused_naming_them(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text("id,name\n1,x\n")
    with pytest.raises(ImportRejectedError, match=r"missing columns \['movieId', 'title', 'genres'\]"):
        read_items_file(path, "movielens")


def test_csv_and_parquet_catalogues_with_optional_columns(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text(
        "item_id,title,description,category,posted_date,closed_date\n"
        "j1,Python dev,django api,backend,2026-01-01,\n"
        "j2,React dev,typescript ui,frontend,2026-01-02,2026-01-09\n"
        ",no id,dropped,x,,\n"
    )
    items, report = read_items_file(path)
    assert (report.rows_read, report.rows_kept, report.null_ids) == (3, 2, 1)
    assert items["location"].null_count == 2
    assert items["closed_date"].to_pylist() == [None, date(2026, 1, 9)]
    parquet = tmp_path / "items.parquet"
    pq.write_table(items.drop_columns(["location"]), parquet)
    again, _ = read_items_file(parquet)
    assert again.equals(items)


def test_a_catalogue_without_item_id_or_with_bad_dates_is_refused(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("title\nx\n")
    with pytest.raises(ImportRejectedError, match="missing the required column item_id"):
        read_items_file(path)
    path.write_text("item_id,posted_date\nj1,yesterday\n")
    with pytest.raises(ImportRejectedError, match="column posted_date"):
        read_items_file(path)
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ImportRejectedError, match="empty"):
        read_items_file(tmp_path / "empty.csv")
    assert pa.types.is_date32(ITEMS_SCHEMA.field("posted_date").type)
