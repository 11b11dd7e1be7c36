"""The Markdown preview of a table-like asset: a few rows, one line each, pipes escaped, long text cut."""

import pyarrow as pa

from recsys_assets.domain.samples import markdown_sample


def test_a_sample_is_a_markdown_table_of_the_first_rows():
    table = pa.table({"id": [1, 2, None, 4], "text": ["a|b", "word " * 20, "two\nlines", "d"]})
    assert markdown_sample(table, rows=3).splitlines() == [
        "| id | text |",
        "|---|---|",
        "| 1 | a\\|b |",
        "| 2 | word word word word word word word word… |",
        "|  | two lines |",
        "",
        "3 of 4 rows",
    ]
