"""What every importer does before it trusts a file: text columns only, one id rule, hostile layouts refused.

The events and the catalogue importers read through this module, so an id means the same in both:

- Every column is read as text; nothing is type-inferred (`007` stays `007`, a 20-digit id stays text).
- An id is its text with surrounding whitespace removed; an id that is empty after that is null.
  `NA`, `null`, `nan` and `None` are ids like any other: a file that means "missing" leaves the field empty.
- A value holding a NUL character, a repeated or over-long header name, input that is not UTF-8, an
  unclosed quote and nested Parquet columns refuse the whole file in one line naming the cause.
- A row longer than `MAX_ROW_BYTES` is counted as malformed (the CSV reader would drop it silently).
"""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


class ImportRejectedError(ValueError):
    """The file was refused; nothing was written to the warehouse."""


PARQUET_SUFFIXES = (".parquet", ".pq")
MAX_HEADER_BYTES = 64 * 1024
MAX_COLUMN_NAME_CHARS = 128
MAX_ROW_BYTES = 1024 * 1024
_SCAN_CHUNK = 16 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
# Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its little-endian mark starts like UTF-16's).
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_REENCODE = "re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8) and import it again"


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


def check_file(path: Path, what: str) -> bytes:
    """The first bytes of `path`, or a refusal saying what is wrong with the path or its encoding."""
    if path.is_dir():
        raise ImportRejectedError(f"{path} is a directory, not {what}")
    if not path.exists():
        raise ImportRejectedError(f"{path} does not exist")
    if not path.is_file():
        raise ImportRejectedError(f"{path} is not a regular file")
    with path.open("rb") as f:
        head = f.read(8192)
    if not head:
        raise ImportRejectedError(f"{path} is empty (0 bytes)")
    if path.suffix in PARQUET_SUFFIXES:
        if not head.startswith(_PARQUET_MAGIC):
            raise ImportRejectedError(f"{path} is named {path.suffix} but is not a Parquet file")
        return head
    if head.startswith(_GZIP_MAGIC):
        if path.suffix != ".gz":
            raise ImportRejectedError(
                f"{path} is gzip-compressed but named {path.suffix or 'without a suffix'}: "
                f"decompress it or name it {path.name}.gz"
            )
        return head
    for bom, encoding in _FOREIGN_BOMS:
        if head.startswith(bom):
            raise ImportRejectedError(f"{path} is {encoding} text, not UTF-8: {_REENCODE}")
    if b"\x00" in head:
        raise ImportRejectedError(f"{path} is binary (it holds NUL bytes), not a text CSV or TSV file")
    return head


def _open(path: Path) -> Any:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _refuse_names(path: Path, names: list[str]) -> list[str]:
    """`names` when none is over-long or repeated, else a refusal naming the column."""
    for name in names:
        if len(name) > MAX_COLUMN_NAME_CHARS:
            raise ImportRejectedError(
                f"{path}: the header holds a column name of {len(name):,} characters ({name[:40]!r}...), "
                f"above the {MAX_COLUMN_NAME_CHARS}-character limit"
            )
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ImportRejectedError(
            f"{path}: the header repeats the column {repeated[0]!r}: which one holds the data is ambiguous"
        )
    return names


def header(path: Path) -> list[str]:
    """The column names on the first line of the CSV `path` (gzip or plain), refused when unusable."""
    with _open(path) as raw:
        line = raw.readline(MAX_HEADER_BYTES + 1)
    if len(line) > MAX_HEADER_BYTES:
        raise ImportRejectedError(
            f"{path}: the header line is longer than {MAX_HEADER_BYTES:,} bytes: it is not a header of column names"
        )
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejectedError(f"{path} is not UTF-8 text (line 1, byte {exc.start + 1}): {_REENCODE}") from exc
    row = next(csv.reader([text]), [])
    return _refuse_names(path, [name.strip() for name in row])


def read_text_csv(
    con: duckdb.DuckDBPyConnection, path: Path, width: int, has_header: bool, delimiter: str
) -> duckdb.DuckDBPyRelation:
    """Every row of `path` as `width` text columns c0..c{width-1}; rows of another width go to `reject_errors`.

    Columns are addressed by position, so nothing from the file ever becomes SQL text.
    """
    return con.read_csv(
        str(path),
        header=has_header,
        auto_detect=False,
        delimiter=delimiter,
        quotechar='"',
        escapechar='"',
        columns={f"c{i}": "VARCHAR" for i in range(width)},
        max_line_size=MAX_ROW_BYTES,
        store_rejects=True,
        ignore_errors=True,
    )


@dataclass(frozen=True)
class RowErrors:
    """Rows the CSV reader set aside, by kind, with the first line of the over-long ones."""

    short: int = 0
    long: int = 0
    oversize: int = 0
    first_oversize_line: int = 0
    unreadable: int = 0

    @property
    def total(self) -> int:
        return self.short + self.long + self.oversize + self.unreadable


def _oversize_lines(path: Path) -> tuple[int, int]:
    """(how many lines of `path` exceed MAX_ROW_BYTES, the 1-based number of the first), one chunked pass.

    DuckDB drops a line longer than its read buffer without a trace, so the lengths are measured here.
    """
    count = first = 0
    line_number, carried = 1, 0
    with _open(path) as raw:
        while chunk := raw.read(_SCAN_CHUNK):
            newlines = np.flatnonzero(np.frombuffer(chunk, np.uint8) == ord("\n"))
            if newlines.size:
                lengths = np.diff(newlines, prepend=-1) - 1
                lengths[0] += carried
                over = np.flatnonzero(lengths > MAX_ROW_BYTES)
                if over.size and not first:
                    first = line_number + int(over[0])
                count += int(over.size)
                line_number += int(newlines.size)
                carried = len(chunk) - int(newlines[-1]) - 1
            else:
                carried += len(chunk)
    if carried > MAX_ROW_BYTES:
        count, first = count + 1, first or line_number
    return count, first


def row_errors(con: duckdb.DuckDBPyConnection, path: Path) -> RowErrors:
    """What the CSV reader of `path` set aside; a file it could not read as UTF-8 CSV is refused."""
    oversize, first_oversize = _oversize_lines(path)
    has_rejects = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'reject_errors'").fetchall()[0]
    if not has_rejects or not has_rejects[0]:
        return RowErrors(oversize=oversize, first_oversize_line=first_oversize)
    fatal = con.execute(
        """SELECT error_type, min(line) FROM reject_errors
           WHERE error_type IN ('INVALID ENCODING', 'INVALID UNICODE', 'UNQUOTED VALUE') GROUP BY error_type
           ORDER BY min(line) LIMIT 1"""
    ).fetchall()
    if fatal:
        kind, line = fatal[0]
        if kind == "UNQUOTED VALUE":
            raise ImportRejectedError(
                f"{path}: line {line} opens a quote that is never closed, so the rest of the file would be one "
                "value; nothing was imported"
            )
        raise ImportRejectedError(f"{path} is not UTF-8 text (first invalid byte on line {line}): {_REENCODE}")
    row = con.execute(
        """SELECT count(DISTINCT line) FILTER (WHERE error_type = 'MISSING COLUMNS'),
                  count(DISTINCT line) FILTER (WHERE error_type = 'TOO MANY COLUMNS'),
                  count(DISTINCT line) FILTER (WHERE error_type = 'LINE SIZE OVER MAXIMUM'),
                  min(line) FILTER (WHERE error_type = 'LINE SIZE OVER MAXIMUM'),
                  count(DISTINCT line) FILTER (WHERE error_type NOT IN
                      ('MISSING COLUMNS', 'TOO MANY COLUMNS', 'LINE SIZE OVER MAXIMUM'))
           FROM reject_errors"""
    ).fetchall()[0]
    # A quoted value spanning lines can be over-long although each physical line is not: take the larger count.
    return RowErrors(
        short=int(row[0]),
        long=int(row[1]),
        oversize=max(oversize, int(row[2])),
        first_oversize_line=first_oversize or int(row[3] or 0),
        unreadable=int(row[4]),
    )


def parquet_columns(path: Path, wanted: Iterable[str], id_columns: Iterable[str]) -> list[str]:
    """The column names of the Parquet file `path`, refused when a name repeats or a used column is unusable.

    Every column this import reads must be flat (no list, struct or map), and an id column text or an
    integer: a floating-point id has already lost digits.
    """
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportRejectedError(f"{path} is not a readable Parquet file: {str(exc).splitlines()[0]}") from exc
    names = _refuse_names(path, list(schema.names))
    ids = set(id_columns)
    for name in wanted:
        if name not in names:
            continue
        kind = schema.field(name).type
        flat = kind.value_type if pa.types.is_dictionary(kind) else kind
        if pa.types.is_nested(flat):
            raise ImportRejectedError(
                f"{path}: column {name} is {kind}; it must be a flat value, not a list, struct or map"
            )
        if name in ids and not _text_or_integer(flat):
            raise ImportRejectedError(f"{path}: column {name} is {kind}; ids must be text or integers")
    return names


def _text_or_integer(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)


def refuse_nul(path: Path, table: pa.Table) -> None:
    """Refuse `table` (all text columns) when any value holds a NUL character, naming the column."""
    for name in table.column_names:
        column = table[name]
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        count = pc.sum(pc.cast(pc.match_substring(column, "\x00"), pa.int64())).as_py() or 0
        if count:
            raise ImportRejectedError(
                f"{path}: {count} values of column {name} hold a NUL character: the file is corrupt or binary; "
                "nothing was imported"
            )


def text_ids(column: pa.ChunkedArray | pa.Array) -> Any:
    """The one id rule: text with surrounding whitespace removed, empty (or missing) as null."""
    trimmed = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    return pc.if_else(pc.equal(trimmed, pa.scalar("")), pa.scalar(None, pa.string()), trimmed)


def blank_ids(column: pa.ChunkedArray | pa.Array) -> Any:
    """Which ids `text_ids` would make null (missing, empty or only whitespace), without copying the column.

    The warehouse extract judges its rows by this, so a blank id is a null id there as in the importers.
    """
    blank = pc.or_kleene(pc.equal(column, pa.scalar("")), pc.utf8_is_space(column))
    return pc.or_kleene(pc.is_null(column), pc.fill_null(blank, pa.scalar(True)))


def with_text_ids(table: pa.Table, id_columns: Iterable[str]) -> pa.Table:
    """`table` with `text_ids` applied to each of `id_columns` it holds."""
    for name in id_columns:
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, text_ids(table[name]))
    return table
