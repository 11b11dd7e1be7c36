"""Bring-your-own-data: load a CSV, Parquet or MovieLens file into the interactions contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from recsys_assets.domain.events import EVENTS_SCHEMA

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
OPTIONAL_COLUMNS = ("event_type", "weight")
MOVIELENS_CSV_COLUMNS = ("userId", "movieId", "rating", "timestamp")


class ImportRejectedError(ValueError):
    """The file was refused; nothing was written to the warehouse."""


@dataclass(frozen=True)
class ImportReport:
    """What an import read, kept and dropped."""

    rows_read: int
    rows_kept: int
    null_ids: int
    bad_timestamps: int
    bad_weights: int
    below_min_rating: int

    @property
    def rows_invalid(self) -> int:
        return self.null_ids + self.bad_timestamps + self.bad_weights


def _require_columns(rel: duckdb.DuckDBPyRelation, expected: tuple[str, ...], what: str, also: str = "") -> None:
    missing = [c for c in expected if c not in rel.columns]
    if missing:
        raise ImportRejectedError(
            f"{what} is missing required columns {missing}; expected {list(expected)}{also}, found {rel.columns}"
        )


def _relation(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> duckdb.DuckDBPyRelation:
    """The file as all-text columns named like the events format (movielens is renamed)."""
    if fmt == "movielens":
        if path.suffix == ".csv":
            rel = con.read_csv(str(path), header=True, all_varchar=True)
            _require_columns(rel, MOVIELENS_CSV_COLUMNS, f"{path} (MovieLens ratings.csv)")
            return rel.select("userId AS user_id, movieId AS item_id, rating, timestamp")
        rel = con.read_csv(
            str(path),
            header=False,
            delimiter="\t",
            all_varchar=True,
            names=["user_id", "item_id", "rating", "timestamp"],
        )
        return rel
    if path.suffix in (".parquet", ".pq"):
        rel = con.read_parquet(str(path))
        rel = rel.select(", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in rel.columns))
    else:
        rel = con.read_csv(str(path), header=True, all_varchar=True)
    _require_columns(rel, REQUIRED_COLUMNS, str(path), also=f" plus optional {list(OPTIONAL_COLUMNS)}")
    return rel


def read_events_file(
    path: str | Path,
    fmt: str = "events",
    min_rating: float | None = None,
    max_invalid_share: float = 0.01,
) -> tuple[pa.Table, ImportReport]:
    """Parse `path` into the events contract, dropping (and counting) malformed rows.

    Args:
        path: CSV or Parquet with `user_id,item_id,timestamp[,event_type][,weight]`, or a
            MovieLens `u.data` / `ratings.csv` when `fmt="movielens"`.
        fmt: "events" or "movielens".
        min_rating: MovieLens only: keep ratings at or above this value as positives.
        max_invalid_share: refuse the whole file when more than this share of rows is malformed.

    Raises:
        ImportRejectedError: wrong columns, or too many malformed rows.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportRejectedError(f"{path} does not exist")
    if fmt not in ("events", "movielens"):
        raise ImportRejectedError(f"unknown format {fmt!r}; use 'events' or 'movielens'")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        raw = _relation(con, path, fmt)
    except duckdb.Error as exc:
        raise ImportRejectedError(f"cannot read {path}: {exc}") from exc
    if fmt == "movielens":
        event_type, weight = "'rating'", "TRY_CAST(rating AS DOUBLE)"
    else:
        event_type = (
            "coalesce(nullif(trim(event_type), ''), 'interaction')" if "event_type" in raw.columns else "'interaction'"
        )
        # An empty weight means "an ordinary event" (1.0); text that is not a number is malformed.
        weight = (
            "CASE WHEN nullif(trim(weight), '') IS NULL THEN 1.0 ELSE TRY_CAST(trim(weight) AS DOUBLE) END"
            if "weight" in raw.columns
            else "1.0"
        )
    # Timestamps may be unix seconds (MovieLens, many exports) or ISO-8601 text.
    parsed = raw.select(
        f"""nullif(trim(user_id), '') AS user_id, nullif(trim(item_id), '') AS item_id,
            {event_type} AS event_type, {weight} AS weight,
            coalesce(to_timestamp(TRY_CAST(timestamp AS DOUBLE)), TRY_CAST(timestamp AS TIMESTAMPTZ)) AS event_ts,
            {"TRY_CAST(rating AS DOUBLE)" if fmt == "movielens" else "NULL::DOUBLE"} AS rating"""
    )
    con.register("parsed", parsed.to_arrow_table())
    counts = con.sql(
        """SELECT count(*),
                  count(*) FILTER (WHERE user_id IS NULL OR item_id IS NULL),
                  count(*) FILTER (WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND event_ts IS NULL),
                  count(*) FILTER (WHERE user_id IS NOT NULL AND item_id IS NOT NULL AND event_ts IS NOT NULL
                                   AND (weight IS NULL OR weight < 0 OR isnan(weight)))
           FROM parsed"""
    ).fetchall()[0]
    rows_read, null_ids, bad_ts, bad_weights = (int(v) for v in counts)
    invalid = null_ids + bad_ts + bad_weights
    if rows_read == 0:
        raise ImportRejectedError(f"{path} holds no rows")
    if invalid / rows_read > max_invalid_share:
        raise ImportRejectedError(
            f"{path}: {invalid} of {rows_read} rows are malformed ({null_ids} null ids, {bad_ts} bad "
            f"timestamps, {bad_weights} bad weights), above the allowed share {max_invalid_share:.2%}; "
            "nothing was imported"
        )
    rating_filter = f"AND rating >= {float(min_rating)!r}" if min_rating is not None else ""
    valid = "user_id IS NOT NULL AND item_id IS NOT NULL AND event_ts IS NOT NULL AND weight >= 0 AND NOT isnan(weight)"
    table = (
        con.sql(
            f"SELECT user_id, item_id, event_type, weight, event_ts FROM parsed WHERE {valid} {rating_filter} ORDER BY event_ts"
        )
        .to_arrow_table()
        .cast(EVENTS_SCHEMA)
    )
    kept_before_rating = rows_read - invalid
    report = ImportReport(
        rows_read=rows_read,
        rows_kept=table.num_rows,
        null_ids=null_ids,
        bad_timestamps=bad_ts,
        bad_weights=bad_weights,
        below_min_rating=kept_before_rating - table.num_rows,
    )
    return table, report
