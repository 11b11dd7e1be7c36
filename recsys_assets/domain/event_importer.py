"""Bring-your-own-data: load a CSV, Parquet or MovieLens file into the interactions contract."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from recsys_assets.domain.events import EVENTS_SCHEMA, MAX_WEIGHT

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
OPTIONAL_COLUMNS = ("event_type", "weight")
MOVIELENS_CSV_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIELENS_U_DATA_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
# Rows stamped later than now by more than this are clock or unit errors, not early arrivals.
FUTURE_TOLERANCE = timedelta(hours=1)
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"


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
    out_of_range: int = 0
    short_rows: int = 0
    long_rows: int = 0

    @property
    def rows_invalid(self) -> int:
        return (
            self.null_ids
            + self.bad_timestamps
            + self.bad_weights
            + self.out_of_range
            + self.short_rows
            + self.long_rows
        )

    def dropped(self) -> str:
        """One line: how many rows of each kind were dropped."""
        return (
            f"{self.null_ids} null ids, {self.bad_timestamps} bad timestamps, {self.bad_weights} bad weights, "
            f"{self.out_of_range} before the partitions start or in the future, {self.short_rows} short rows, "
            f"{self.long_rows} long rows, {self.below_min_rating} below --min-rating"
        )


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that never downloads or loads an extension while it reads a file."""
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET lock_configuration = true")
    return con


def _check_file(path: Path) -> bytes:
    """The first bytes of `path`, or a refusal saying what is wrong with the path."""
    if path.is_dir():
        raise ImportRejectedError(f"{path} is a directory, not an events file")
    if not path.exists():
        raise ImportRejectedError(f"{path} does not exist")
    if not path.is_file():
        raise ImportRejectedError(f"{path} is not a regular file")
    with path.open("rb") as f:
        head = f.read(8192)
    if not head:
        raise ImportRejectedError(f"{path} is empty (0 bytes)")
    if path.suffix in (".parquet", ".pq"):
        if not head.startswith(_PARQUET_MAGIC):
            raise ImportRejectedError(f"{path} is named {path.suffix} but is not a Parquet file")
    elif head.startswith(_GZIP_MAGIC):
        if path.suffix != ".gz":
            raise ImportRejectedError(
                f"{path} is gzip-compressed but named {path.suffix or 'without a suffix'}: "
                f"decompress it or name it {path.name}.gz"
            )
    elif b"\x00" in head:
        raise ImportRejectedError(f"{path} is binary (it holds NUL bytes), not a text CSV or TSV file")
    return head


def _header(path: Path) -> list[str]:
    """The first CSV row of `path` (gzip or plain text)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        row = next(csv.reader(text), [])
    return [name.strip().lstrip("\ufeff") for name in row]


def _require_columns(found: list[str], expected: tuple[str, ...], what: str, also: str = "") -> None:
    missing = [c for c in expected if c not in found]
    if missing:
        raise ImportRejectedError(
            f"{what} is missing required columns {missing}; expected {list(expected)}{also}, found {found}"
        )


def _read_csv(
    con: duckdb.DuckDBPyConnection, path: Path, width: int, header: bool, delimiter: str
) -> duckdb.DuckDBPyRelation:
    """Every row of `path` as `width` text columns c0..c{width-1}; rows of another width go to `reject_errors`.

    Columns are addressed by position, so nothing from the file ever becomes SQL text.
    """
    return con.read_csv(
        str(path),
        header=header,
        auto_detect=False,
        delimiter=delimiter,
        quotechar='"',
        escapechar='"',
        columns={f"c{i}": "VARCHAR" for i in range(width)},
        store_rejects=True,
        ignore_errors=True,
    )


def _relation(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> duckdb.DuckDBPyRelation:
    """The file as all-text columns named like the events format (movielens is renamed)."""
    if path.suffix in (".parquet", ".pq") and fmt == "events":
        rel = con.read_parquet(str(path))
        _require_columns(rel.columns, REQUIRED_COLUMNS, str(path), also=f" plus optional {list(OPTIONAL_COLUMNS)}")
        # Only this module's own column names are written into the query, never the file's.
        wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in rel.columns]
        return rel.select(", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in wanted))
    if fmt == "movielens" and path.suffix != ".csv":
        rel = _read_csv(con, path, len(MOVIELENS_U_DATA_COLUMNS), header=False, delimiter="\t")
        return rel.select(", ".join(f"c{i} AS {c}" for i, c in enumerate(MOVIELENS_U_DATA_COLUMNS)))
    names = _header(path)
    if fmt == "movielens":
        _require_columns(names, MOVIELENS_CSV_COLUMNS, f"{path} (MovieLens ratings.csv)")
        wanted = dict(zip(MOVIELENS_CSV_COLUMNS, MOVIELENS_U_DATA_COLUMNS, strict=True))
    else:
        _require_columns(names, REQUIRED_COLUMNS, str(path), also=f" plus optional {list(OPTIONAL_COLUMNS)}")
        wanted = {c: c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in names}
    rel = _read_csv(con, path, len(names), header=True, delimiter=",")
    return rel.select(", ".join(f"c{names.index(source)} AS {target}" for source, target in wanted.items()))


def _row_width_errors(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """Rows the CSV reader set aside: (short, long, otherwise unreadable)."""
    has_rejects = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'reject_errors'").fetchall()[0]
    if not has_rejects or not has_rejects[0]:
        return 0, 0, 0
    row = con.execute(
        """SELECT count(DISTINCT line) FILTER (WHERE error_type = 'MISSING COLUMNS'),
                  count(DISTINCT line) FILTER (WHERE error_type = 'TOO MANY COLUMNS'),
                  count(DISTINCT line) FILTER (WHERE error_type NOT IN ('MISSING COLUMNS', 'TOO MANY COLUMNS'))
           FROM reject_errors"""
    ).fetchall()[0]
    return int(row[0]), int(row[1]), int(row[2])


# Epoch numbers are read in the unit their magnitude implies: seconds until the year 5138, then
# milliseconds, microseconds and nanoseconds; anything larger (or not finite) is a bad timestamp.
_EPOCH_SECONDS = """CASE
    WHEN NOT isfinite(ts_number) THEN NULL
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
    _check_file(path)
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    first = datetime.combine(earliest or date.min, datetime.min.time(), UTC)
    con = connect()
    try:
        raw = _relation(con, path, fmt).to_arrow_table()
    except duckdb.Error as exc:
        raise ImportRejectedError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    short_rows, long_rows, unreadable = _row_width_errors(con)
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
                SELECT *, TRY_CAST(trim("timestamp") AS DOUBLE) AS ts_number FROM raw)
            SELECT nullif(trim(user_id), '') AS user_id, nullif(trim(item_id), '') AS item_id,
                   {event_type} AS event_type, {weight} AS weight, "timestamp" AS raw_ts,
                   CASE WHEN ts_number IS NULL THEN TRY_CAST(trim("timestamp") AS TIMESTAMPTZ)
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
    rows_read = parsed_rows + short_rows + long_rows + unreadable
    invalid = null_ids + bad_ts + bad_weights + out_of_range + short_rows + long_rows
    if rows_read == 0:
        raise ImportRejectedError(f"{path} holds no rows (only a header)")
    if invalid / rows_read > max_invalid_share:
        examples = [
            f"timestamp column e.g. {row[5]!r}" if row[5] is not None else "",
            f"weight column e.g. {row[6]}" if row[6] is not None else "",
            f"out-of-range timestamp e.g. {row[7]}" if row[7] is not None else "",
        ]
        raise ImportRejectedError(
            f"{path}: {invalid} of {rows_read} rows are malformed ({null_ids} null ids, {bad_ts} bad timestamps, "
            f"{bad_weights} bad weights, {out_of_range} before {first.date()} or after {latest:%Y-%m-%d %H:%M} UTC, "
            f"{short_rows} short rows, {long_rows} long rows{''.join('; ' + e for e in examples if e)}), "
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
    )
    return table, report
