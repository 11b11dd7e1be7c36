"""Bring-your-own catalogue: load a CSV/Parquet item file, or MovieLens `u.item` / `movies.csv`, into the items contract.

The item-side twin of `importer.read_events_file`. MovieLens items get their genres as text and
their first genre as category, so public rating data sets have content features too; their item
ids are the movie ids exactly as the events importer writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys_assets.domain.items import ITEM_COLUMNS, ITEMS_SCHEMA, conform_items
from recsys_assets.domain.text_files import (
    PARQUET_SUFFIXES,
    ImportRejectedError,
    check_file,
    connect,
    header,
    parquet_columns,
    read_text_csv,
    refuse_nul,
    row_errors,
    text_ids,
)

# MovieLens 100k `u.item`: id | title | release date | video release date | IMDb URL | 19 genre flags.
U_ITEM_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
U_ITEM_COLUMNS = ("item_id", "title", "release_date", "video_release_date", "imdb_url", *U_ITEM_GENRES)
MOVIES_CSV_COLUMNS = ("movieId", "title", "genres")
DATE_COLUMNS = tuple(field.name for field in ITEMS_SCHEMA if field.type == pa.date32())


@dataclass(frozen=True)
class ItemImportReport:
    """What an item import read, kept and dropped."""

    rows_read: int
    rows_kept: int
    null_ids: int
    duplicate_ids: int

    def dropped(self) -> str:
        return f"{self.null_ids} null ids, {self.duplicate_ids} repeated ids (the first row of each id is kept)"


def _u_item(path: Path) -> pa.Table:
    try:
        raw = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=list(U_ITEM_COLUMNS), encoding="latin-1"),
            parse_options=pacsv.ParseOptions(delimiter="|", quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(U_ITEM_COLUMNS, pa.string())),
        )
    except pa.ArrowInvalid as exc:
        raise ImportRejectedError(
            f"{path} is not a MovieLens u.item file ({len(U_ITEM_COLUMNS)} '|'-separated fields): {exc}"
        ) from exc
    # The genre flags as words, one vectorised pass per genre rather than per row.
    words = [pc.if_else(pc.equal(raw[genre], pa.scalar("1")), genre, "") for genre in U_ITEM_GENRES]
    genres = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.binary_join_element_wise(*words, " "), r"\s+", " "))
    first = pc.if_else(pc.equal(genres, pa.scalar("")), "unknown", pc.list_element(pc.split_pattern(genres, " "), 0))
    return _movies(raw["item_id"], raw["title"], genres, first)


def _movies_csv(path: Path) -> pa.Table:
    names = header(path)
    missing = [c for c in MOVIES_CSV_COLUMNS if c not in names]
    if missing:
        raise ImportRejectedError(f"{path} (MovieLens movies.csv) is missing columns {missing}; found {names[:20]}")
    raw = _csv_columns(path, names, dict(zip(("item_id", "title", "genres"), MOVIES_CSV_COLUMNS, strict=True)))
    genres = pc.replace_substring(pc.fill_null(raw["genres"], pa.scalar("")), "|", " ")
    genre_list: Any = raw["genres"].fill_null(pa.scalar("unknown"))
    first = pc.list_element(pc.split_pattern(genre_list, "|"), 0)
    return _movies(raw["item_id"], raw["title"], genres, first)


def _csv_columns(path: Path, names: list[str], wanted: dict[str, str]) -> pa.Table:
    """The CSV `path` (header `names`) as text columns named like `wanted`'s keys from its values' columns.

    A row of another width, an unreadable or over-long row, an unclosed quote or a NUL refuses the file:
    a catalogue is small, and a half-read one would drop postings silently.
    """
    con = connect()
    try:
        relation = read_text_csv(con, path, len(names), has_header=True, delimiter=",")
        # Only this module's own column names are written into the query, never the file's.
        raw = relation.select(
            ", ".join(
                f"c{names.index(source)} AS {target}" if source in names else f"NULL::VARCHAR AS {target}"
                for target, source in wanted.items()
            )
        ).to_arrow_table()
        errors = row_errors(con, path)
    except duckdb.Error as exc:
        raise ImportRejectedError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
    if errors.total:
        raise ImportRejectedError(
            f"{path}: {errors.short} rows with fewer fields than the header, {errors.long} with more, "
            f"{errors.oversize} over the row size limit and {errors.unreadable} otherwise unreadable; "
            "nothing was imported"
        )
    refuse_nul(path, raw)
    return raw


def _movies(ids: Any, titles: Any, genres: Any, category: Any) -> pa.Table:
    """A MovieLens catalogue in the items contract: no location, and no open window (always open)."""
    nulls = pa.nulls(len(ids), pa.date32())
    return pa.table(
        {
            "item_id": text_ids(ids),
            "title": titles,
            "description": genres,
            "category": category,
            "location": pa.nulls(len(ids), pa.string()),
            "posted_date": nulls,
            "closed_date": nulls,
        },
        schema=ITEMS_SCHEMA,
    )


def _catalogue(path: Path) -> pa.Table:
    """A CSV/Parquet catalogue: `item_id` required, the other contract columns optional, every column read as text."""
    parquet = path.suffix in PARQUET_SUFFIXES
    names = parquet_columns(path, ITEM_COLUMNS, ("item_id",)) if parquet else header(path)
    if "item_id" not in names:
        raise ImportRejectedError(
            f"{path} is missing the required column item_id; expected item_id plus optional "
            f"{list(ITEM_COLUMNS[1:])}, found {names[:20]}"
        )
    raw = _parquet_columns(path, names) if parquet else _csv_columns(path, names, {name: name for name in ITEM_COLUMNS})
    con = connect()
    try:
        con.register("raw", raw)
        dates = ", ".join(
            f"count(*) FILTER (WHERE nullif(trim({c}), '') IS NOT NULL AND TRY_CAST(trim({c}) AS DATE) IS NULL), "
            f"first({c}) FILTER (WHERE nullif(trim({c}), '') IS NOT NULL AND TRY_CAST(trim({c}) AS DATE) IS NULL)"
            for c in DATE_COLUMNS
        )
        bad = con.execute(f"SELECT {dates} FROM raw").fetchall()[0]
        for i, name in enumerate(DATE_COLUMNS):
            if bad[2 * i]:
                raise ImportRejectedError(
                    f"{path}: column {name} is not date (YYYY-MM-DD dates): {bad[2 * i]} values such as "
                    f"{bad[2 * i + 1][:40]!r}"
                )
        typed = con.sql(
            "SELECT "
            + ", ".join(f"TRY_CAST(trim({c}) AS DATE) AS {c}" if c in DATE_COLUMNS else c for c in ITEM_COLUMNS)
            + " FROM raw"
        ).to_arrow_table()
    finally:
        con.close()
    return typed.set_column(0, "item_id", text_ids(typed["item_id"])).cast(ITEMS_SCHEMA)


def _parquet_columns(path: Path, names: list[str]) -> pa.Table:
    """The contract's columns of the Parquet catalogue `path` as text (absent ones null)."""
    con = connect()
    try:
        # Only the contract's own column names are written into the query, never the file's.
        raw = (
            con.read_parquet(str(path))
            .select(
                ", ".join(
                    f'CAST("{name}" AS VARCHAR) AS {name}' if name in names else f"NULL::VARCHAR AS {name}"
                    for name in ITEM_COLUMNS
                )
            )
            .to_arrow_table()
        )
    except duckdb.Error as exc:
        raise ImportRejectedError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
    refuse_nul(path, raw)
    return raw


def read_items_file(path: str | Path, fmt: str = "items") -> tuple[pa.Table, ItemImportReport]:
    """Parse `path` into the items contract, dropping (and counting) null and repeated ids.

    Args:
        path: a CSV or Parquet catalogue (`item_id[,title][,description][,category][,location]
            [,posted_date][,closed_date]`), or with `fmt="movielens"` a MovieLens `u.item`
            (pipe-separated, latin-1, 19 genre flags) or `movies.csv` (`movieId,title,genres`).
        fmt: `items` or `movielens`.

    Raises:
        ImportRejectedError: the file is missing, empty, unreadable or lacks required columns.
    """
    path = Path(path)
    check_file(path, "an item catalogue")
    if fmt == "movielens":
        table = _movies_csv(path) if path.suffix == ".csv" else _u_item(path)
    elif fmt == "items":
        table = _catalogue(path)
    else:
        raise ImportRejectedError(f"unknown item format {fmt!r}; expected items or movielens")
    rows_read = table.num_rows
    valid = table.filter(pc.is_valid(table["item_id"]))
    null_ids = rows_read - valid.num_rows
    # The first row of each id wins: a catalogue repeats a posting when it re-exports an update.
    ids = valid["item_id"].combine_chunks()
    position = pc.index_in(ids, value_set=ids)  # the first occurrence of each value
    first = pc.equal(position.cast(pa.int64()), pa.array(np.arange(valid.num_rows, dtype=np.int64)))
    kept = valid.filter(first)
    if kept.num_rows == 0:
        raise ImportRejectedError(f"{path} holds no item with an id ({rows_read} rows read)")
    report = ItemImportReport(
        rows_read=rows_read, rows_kept=kept.num_rows, null_ids=null_ids, duplicate_ids=valid.num_rows - kept.num_rows
    )
    return conform_items(kept), report
