"""A few rows of a table as Markdown: the preview the UI shows beside a table-like asset's column schema."""

from __future__ import annotations

import pyarrow as pa

SAMPLE_ROWS = 5
CELL_WIDTH = 40


def _cell(value: object) -> str:
    text = "" if value is None else " ".join(str(value).split())
    text = text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"
    return text.replace("|", "\\|")


def markdown_sample(table: pa.Table, rows: int = SAMPLE_ROWS) -> str:
    """The first `rows` rows of `table` as a Markdown table (cells on one line, long text cut)."""
    head = table.slice(0, rows).to_pylist()  # a handful of rows, not the table
    lines = ["| " + " | ".join(table.column_names) + " |", "|" + "---|" * table.num_columns]
    lines += ["| " + " | ".join(_cell(row[name]) for name in table.column_names) + " |" for row in head]
    return "\n".join(lines) + f"\n\n{min(rows, table.num_rows)} of {table.num_rows:,} rows"
