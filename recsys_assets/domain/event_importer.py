"""Bring-your-own-data: load a CSV, Parquet or MovieLens file into the interactions contract."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from recsys_assets.domain.events import EVENTS_SCHEMA, MAX_WEIGHT
from recsys_assets.domain.text_files import (
    MAX_ROW_BYTES,
    PARQUET_SUFFIXES,
    ImportRejectedError,
    RowErrors,
    check_file,
    connect,
    header,
    parquet_columns,
    read_text_csv,
    refuse_nul,
    row_errors,
    with_text_ids,
)

__all__ = ["ImportRejectedError", "ImportReport", "connect", "read_events_file"]

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
OPTIONAL_COLUMNS = ("event_type", "weight")
MOVIELENS_CSV_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIELENS_U_DATA_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ID_COLUMNS = ("user_id", "item_id")
# Rows stamped later than now by more than this are clock or unit errors, not early arrivals.
FUTURE_TOLERANCE = timedelta(hours=1)


@dataclass(frozen=True)
class ImportReport:
    """What an import read, kept and dropped."""

    rows_read: int
    rows_kept: int
    null_ids: int
    bad_timestamps: int
    bad_weights: int
    below_min_rating: int
    out_of_range: int = 0
    short_rows: int = 0
    long_rows: int = 0
    oversize_rows: int = 0
    first_oversize_line: int = 0

    @property
    def rows_invalid(self) -> int:
        return (
            self.null_ids
            + self.bad_timestamps
            + self.bad_weights
            + self.out_of_range
            + self.short_rows
            + self.long_rows
            + self.oversize_rows
        )

    def _oversize(self) -> str:
        first = f" (first on line {self.first_oversize_line})" if self.oversize_rows else ""
        return f"{self.oversize_rows} rows over {MAX_ROW_BYTES:,} bytes{first}"

    def dropped(self) -> str:
        """One line: how many rows of each kind were dropped."""
        return (
            f"{self.null_ids} null ids, {self.bad_timestamps} bad timestamps, {self.bad_weights} bad weights, "
            f"{self.out_of_range} before the partitions start or in the future, {self.short_rows} short rows, "
            f"{self.long_rows} long rows, {self._oversize()}, {self.below_min_rating} below --min-rating"
        )


def _require_columns(found: list[str], expected: tuple[str, ...], what: str, also: str = "") -> None:
    missing = [c for c in expected if c not in found]
    if missing:
        raise ImportRejectedError(
            f"{what} is missing required columns {missing}; expected {list(expected)}{also}, found {found}"
        )


def _relation(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> duckdb.DuckDBPyRelation:
    """The file as all-text columns named like the events format (movielens is renamed)."""
    if path.suffix in PARQUET_SUFFIXES and fmt == "events":
        names = parquet_columns(path, (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS), ID_COLUMNS)
        _require_columns(names, REQUIRED_COLUMNS, str(path), also=f" plus optional {list(OPTIONAL_COLUMNS)}")
        # Only this module's own column names are written into the query, never the file's.
        wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in names]
        return con.read_parquet(str(path)).select(", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in wanted))
    if fmt == "movielens" and path.suffix != ".csv":
        rel = read_text_csv(con, path, len(MOVIELENS_U_DATA_COLUMNS), has_header=False, delimiter="\t")
        return rel.select(", ".join(f"c{i} AS {c}" for i, c in enumerate(MOVIELENS_U_DATA_COLUMNS)))
    names = header(path)
    if fmt == "movielens":
        _require_columns(names, MOVIELENS_CSV_COLUMNS, f"{path} (MovieLens ratings.csv)")
        wanted = dict(zip(MOVIELENS_CSV_COLUMNS, MOVIELENS_U_DATA_COLUMNS, strict=True))
    else:
        _require_columns(names, REQUIRED_COLUMNS, str(path), also=f" plus optional {list(OPTIONAL_COLUMNS)}")
        wanted = {c: c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in names}
    rel = read_text_csv(con, path, len(names), has_header=True, delimiter=",")
    return rel.select(", ".join(f"c{names.index(source)} AS {target}" for source, target in wanted.items()))


# Epoch numbers are read in the unit their magnitude implies: seconds until the year 5138, then
# milliseconds, microseconds and nanoseconds; anything larger (or not finite) is a bad timestamp.
# A number below 1e8 (before 1973-03-03 in seconds) and digits shaped like YYYYMMDD[HHMM[SS]] are
# bad timestamps too: they are compact dates or truncated values, and guessing them as epochs
# stores rows in 1970 (and moves the partitions start there).
_COMPACT_DATE = r"(19|20)[0-9]{6}([0-9]{4}([0-9]{2})?)?"
_EPOCH_SECONDS = """CASE
    WHEN NOT isfinite(ts_number) THEN NULL
    WHEN abs(ts_number) < 1e8 THEN NULL
    WHEN abs(ts_number) < 1e11 THEN ts_number
    WHEN abs(ts_number) < 1e14 THEN ts_number / 1e3
    WHEN abs(ts_number) < 1e17 THEN ts_number / 1e6
    WHEN abs(ts_number) < 1e20 THEN ts_number / 1e9
    END"""


def read_events_file(
    path: str | Path,
    fmt: str = "events",
    min_rating: float | None = None,
    max_invalid_share: float = 0.01,
    earliest: date | None = None,
    now: datetime | None = None,
) -> tuple[pa.Table, ImportReport]:
    """Parse `path` into the events contract, dropping (and counting) malformed rows.

    Args:
        path: CSV or Parquet with `user_id,item_id,timestamp[,event_type][,weight]`, or a
            MovieLens `u.data` / `ratings.csv` when `fmt="movielens"`.
        fmt: "events" or "movielens".
        min_rating: MovieLens only: keep ratings at or above this value as positives.
        max_invalid_share: refuse the whole file when more than this share of rows is malformed.
        earliest: rows before this day (the first partition) are set aside and counted.
        now: rows later than this plus FUTURE_TOLERANCE are set aside and counted (default: now).

    Raises:
        ImportRejectedError: an unreadable path, wrong columns, or too many malformed rows.
    """
    path = Path(path)
    if fmt not in ("events", "movielens"):
        raise ImportRejectedError(f"unknown format {fmt!r}; use 'events' or 'movielens'")
    check_file(path, "an events file")
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    first = datetime.combine(earliest or date.min, datetime.min.time(), UTC)
    con = connect()
    try:
        raw = _relation(con, path, fmt).to_arrow_table()
    except duckdb.Error as exc:
        raise ImportRejectedError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    errors = row_errors(con, path) if path.suffix not in PARQUET_SUFFIXES else RowErrors()
    refuse_nul(path, raw)
    raw = with_text_ids(raw, ID_COLUMNS)
    short_rows, long_rows, unreadable = errors.short, errors.long, errors.unreadable
    if fmt == "movielens":
        event_type, weight = "'rating'", "TRY_CAST(rating AS DOUBLE)"
    else:
        event_type = (
            "coalesce(nullif(trim(event_type), ''), 'interaction')"
            if "event_type" in raw.column_names
            else "'interaction'"
        )
        # An empty weight means "an ordinary event" (1.0); text that is not a number is malformed.
        weight = (
            "CASE WHEN nullif(trim(weight), '') IS NULL THEN 1.0 ELSE TRY_CAST(trim(weight) AS DOUBLE) END"
            if "weight" in raw.column_names
            else "1.0"
        )
    con.register("raw", raw)
    # Timestamps may be unix epochs (MovieLens, many exports; seconds, ms, µs or ns) or ISO-8601 text.
    con.execute(
        f"""CREATE TEMP TABLE parsed AS
            WITH typed AS (
                SELECT *, CASE WHEN NOT regexp_full_match(trim("timestamp"), '{_COMPACT_DATE}')
                               THEN TRY_CAST(trim("timestamp") AS DOUBLE) END AS ts_number,
                          regexp_full_match(trim("timestamp"), '{_COMPACT_DATE}') AS compact
                FROM raw)
            SELECT user_id, item_id,
                   {event_type} AS event_type, {weight} AS weight, "timestamp" AS raw_ts,
                   CASE WHEN compact THEN NULL
                        WHEN ts_number IS NULL THEN TRY_CAST(trim("timestamp") AS TIMESTAMPTZ)
                        ELSE TRY(to_timestamp({_EPOCH_SECONDS})) END AS event_ts,
                   {"TRY_CAST(rating AS DOUBLE)" if fmt == "movielens" else "NULL::DOUBLE"} AS rating
            FROM typed"""
    )
    ids = "user_id IS NOT NULL AND item_id IS NOT NULL"
    good_weight = f"weight IS NOT NULL AND isfinite(weight) AND weight >= 0 AND weight <= {MAX_WEIGHT!r}"
    in_range = "event_ts >= $first AND event_ts <= $latest"
    row = con.execute(
        f"""SELECT count(*),
                  count(*) FILTER (WHERE NOT ({ids})),
                  count(*) FILTER (WHERE {ids} AND event_ts IS NULL),
                  count(*) FILTER (WHERE {ids} AND event_ts IS NOT NULL AND NOT ({good_weight})),
                  count(*) FILTER (WHERE {ids} AND event_ts IS NOT NULL AND {good_weight} AND NOT ({in_range})),
                  first(raw_ts) FILTER (WHERE {ids} AND event_ts IS NULL),
                  first(weight::VARCHAR) FILTER (WHERE {ids} AND event_ts IS NOT NULL AND NOT ({good_weight})),
                  first(event_ts::VARCHAR) FILTER (WHERE {ids} AND event_ts IS NOT NULL AND {good_weight}
                                                    AND NOT ({in_range}))
           FROM parsed""",
        {"first": first, "latest": latest},
    ).fetchall()[0]
    parsed_rows, null_ids, bad_ts, bad_weights, out_of_range = (int(v) for v in row[:5])
    bad_ts += unreadable
    rows_read = parsed_rows + errors.total
    invalid = null_ids + bad_ts + bad_weights + out_of_range + short_rows + long_rows + errors.oversize
    if rows_read == 0:
        raise ImportRejectedError(f"{path} holds no rows (only a header)")
    if invalid / rows_read > max_invalid_share:
        oversize = f"{errors.oversize} rows over {MAX_ROW_BYTES:,} bytes" + (
            f" (first on line {errors.first_oversize_line})" if errors.oversize else ""
        )
        examples = [
            f"timestamp column e.g. {row[5]!r}" if row[5] is not None else "",
            f"weight column e.g. {row[6]}" if row[6] is not None else "",
            f"out-of-range timestamp e.g. {row[7]}" if row[7] is not None else "",
        ]
        raise ImportRejectedError(
            f"{path}: {invalid} of {rows_read} rows are malformed ({null_ids} null ids, {bad_ts} bad timestamps, "
            f"{bad_weights} bad weights, {out_of_range} before {first.date()} or after {latest:%Y-%m-%d %H:%M} UTC, "
            f"{short_rows} short rows, {long_rows} long rows, {oversize}{''.join('; ' + e for e in examples if e)}), "
            f"above the allowed share {max_invalid_share:.2%}; nothing was imported"
        )
    rating_filter = "AND rating >= $min_rating" if min_rating is not None else ""
    table = (
        con.sql(
            f"""SELECT user_id, item_id, event_type, weight, event_ts FROM parsed
                WHERE {ids} AND event_ts IS NOT NULL AND {good_weight} AND {in_range} {rating_filter}
                ORDER BY event_ts""",
            params={"first": first, "latest": latest, **({"min_rating": min_rating} if min_rating is not None else {})},
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
        out_of_range=out_of_range,
        short_rows=short_rows,
        long_rows=long_rows,
        oversize_rows=errors.oversize,
        first_oversize_line=errors.first_oversize_line,
    )
    return table, report
