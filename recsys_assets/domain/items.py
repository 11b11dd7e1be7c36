"""The item catalogue contract (job postings), its data-quality measures and a synthetic catalogue.

A posting has text (title, description/skills), a category, a location and an open window
[posted_date, closed_date); a null closed_date means still open. Every backend reads and writes
exactly `ITEMS_SCHEMA`, the way `events.EVENTS_SCHEMA` is the interactions contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.domain.events import filled_numpy
from recsys_assets.domain.synthetic import SyntheticSpec, generate_postings
from recsys_assets.domain.text_files import blank_ids

ITEMS_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string()),
        pa.field("title", pa.string()),
        pa.field("description", pa.string()),
        pa.field("category", pa.string()),
        pa.field("location", pa.string()),
        pa.field("posted_date", pa.date32()),
        pa.field("closed_date", pa.date32()),
    ]
)
ITEM_COLUMNS = tuple(ITEMS_SCHEMA.names)
TEXT_COLUMNS = ("title", "description")


def conform_items(table: pa.Table) -> pa.Table:
    """`table` with exactly the catalogue contract's columns, order and types.

    Raises:
        ValueError: a contract column is missing (the message lists what was found).
    """
    missing = [name for name in ITEM_COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(
            f"item catalogue is missing columns {missing}; expected {list(ITEM_COLUMNS)}, got {table.column_names}"
        )
    return table.select(list(ITEM_COLUMNS)).cast(ITEMS_SCHEMA)


def as_of(catalogue: pa.Table, day: date) -> pa.Table:
    """The catalogue as it was known at the end of `day`: postings posted by then, later closings unknown."""
    posted = filled_numpy(pc.less_equal(catalogue["posted_date"], pa.scalar(day, pa.date32())), True)
    known = catalogue.filter(pa.array(posted.astype(bool)))
    closed = known["closed_date"]
    future = pc.fill_null(pc.greater(closed, pa.scalar(day, pa.date32())), pa.scalar(False))
    return known.set_column(
        ITEM_COLUMNS.index("closed_date"),
        "closed_date",
        pc.if_else(future, pa.scalar(None, pa.date32()), closed),
    )


@dataclass(frozen=True)
class CatalogueQuality:
    """What the catalogue's checks measure."""

    rows: int
    duplicate_ids: int
    null_ids: int
    missing_text: int
    closed_before_posted: int


def measure_quality(catalogue: pa.Table) -> CatalogueQuality:
    """Counts of duplicate ids, null (or blank) ids, rows with neither title nor description, and inverted windows."""
    ids = catalogue["item_id"]
    blank = filled_numpy(blank_ids(ids), True).astype(bool)
    non_null = ids.filter(pa.array(~blank))
    # Lengths of the trimmed texts, nulls as empty: a posting has text when any of them is non-empty.
    lengths = [filled_numpy(pc.utf8_length(pc.utf8_trim_whitespace(catalogue[c])), 0) for c in TEXT_COLUMNS]
    no_text = np.logical_and.reduce([length == 0 for length in lengths]) if lengths else np.zeros(0, bool)
    inverted = filled_numpy(pc.less(catalogue["closed_date"], catalogue["posted_date"]), False)
    return CatalogueQuality(
        rows=catalogue.num_rows,
        duplicate_ids=len(non_null) - pc.count_distinct(non_null).as_py(),
        null_ids=int(np.count_nonzero(blank)),
        missing_text=int(np.count_nonzero(no_text)),
        closed_before_posted=int(np.count_nonzero(inverted.astype(bool))),
    )


def open_mask(posted: np.ndarray, closed: np.ndarray, day: float) -> np.ndarray:
    """Which postings are open on `day` (days since the epoch): posted by then and not closed yet.

    `posted`/`closed` are days since the epoch as floats, NaN where unknown (unknown = open).
    """
    with np.errstate(invalid="ignore"):
        return ~(posted > day) & ~(closed <= day)


def days_since_epoch(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A date32 column as float days since the epoch, NaN for nulls."""
    values = pc.cast(column, pa.int32())
    return np.asarray(filled_numpy(pc.cast(values, pa.float64()), np.nan), dtype=np.float64)


# Words per job segment: a posting's text is drawn mostly from its own segment's words, so text
# similarity carries the same signal users act on.
_SEGMENT_WORDS = [
    ["python", "django", "backend", "api", "postgres", "rest"],
    ["react", "typescript", "frontend", "css", "javascript", "ui"],
    ["kubernetes", "terraform", "devops", "aws", "docker", "sre"],
    ["pytorch", "ml", "training", "models", "gpu", "research"],
    ["spark", "airflow", "etl", "warehouse", "dbt", "pipelines"],
    ["ios", "swift", "mobile", "xcode", "app", "uikit"],
    ["android", "kotlin", "mobile", "jetpack", "gradle", "app"],
    ["rust", "systems", "embedded", "firmware", "c", "kernel"],
    ["golang", "microservices", "grpc", "distributed", "latency", "backend"],
    ["java", "spring", "jvm", "enterprise", "microservices", "hibernate"],
    ["security", "pentest", "iam", "threat", "compliance", "soc"],
    ["sql", "analytics", "dashboards", "tableau", "bi", "statistics"],
    ["qa", "testing", "selenium", "automation", "cypress", "quality"],
    ["unity", "games", "graphics", "shaders", "c++", "engine"],
    ["blockchain", "solidity", "crypto", "web3", "smart", "contracts"],
    ["salesforce", "crm", "apex", "integration", "erp", "consulting"],
]
_COMMON_WORDS = ["engineer", "team", "remote", "senior", "growth", "product", "hiring", "culture"]
_LOCATIONS = ["berlin", "london", "paris", "remote", "amsterdam", "madrid", "lisbon", "warsaw"]


def segment_words(n_segments: int) -> list[list[str]]:
    """A vocabulary per segment (named words for the first 16, generated ones beyond)."""
    return [
        _SEGMENT_WORDS[s] if s < len(_SEGMENT_WORDS) else [f"skill{s}x{w}" for w in range(6)] for s in range(n_segments)
    ]


def _strings(values: Any, n: int | None = None) -> pa.StringArray:
    """A string array for Arrow's element-wise joins: `values` as strings, or one string repeated `n` times."""
    if n is not None:
        return cast(pa.StringArray, pa.repeat(pa.scalar(values, pa.string()), n))
    return cast(pa.StringArray, pa.array(values, pa.string()))


def generate_catalogue(spec: SyntheticSpec, words_per_posting: int = 8, on_segment: float = 0.8) -> pa.Table:
    """The catalogue of `generate_events(spec)` (`generate_postings`), with text drawn from each posting's segment.

    A posting still open at the end of the window has no closed date yet.
    """
    postings = generate_postings(spec)
    segment = postings["segment"].to_numpy()
    rng = np.random.default_rng([spec.seed, 13])
    vocab = segment_words(spec.segments)
    n = postings.num_rows
    # Each word slot comes from the posting's own segment with probability `on_segment`, else from
    # the common words: one vectorised draw of word indices, joined per row at the end.
    own = np.asarray(vocab, dtype=object)
    seg_word = own[segment[:, None], rng.integers(0, own.shape[1], (n, words_per_posting))]
    common = np.asarray(_COMMON_WORDS, dtype=object)[rng.integers(0, len(_COMMON_WORDS), (n, words_per_posting))]
    words = np.where(rng.random((n, words_per_posting)) < on_segment, seg_word, common)
    closed = postings["closed_day"]
    after_window = pc.greater(closed, pa.scalar(spec.end_date, pa.date32()))
    columns: dict[str, Any] = {
        "item_id": postings["item_id"],
        "title": pc.binary_join_element_wise(
            _strings(seg_word[:, 0]), _strings(seg_word[:, 1]), _strings("engineer", n), _strings(" ", n)
        ),
        "description": pc.binary_join_element_wise(
            *(_strings(words[:, slot]) for slot in range(words_per_posting)), _strings(" ", n)
        ),
        "category": pc.binary_join_element_wise(
            _strings("segment", n), pc.utf8_lpad(_strings(segment.astype(str)), 2, "0"), _strings("-", n)
        ),
        "location": pa.array(np.asarray(_LOCATIONS)[rng.integers(0, len(_LOCATIONS), n)]),
        "posted_date": postings["posted_day"],
        "closed_date": pc.if_else(after_window, pa.scalar(None, pa.date32()), closed),
    }
    return pa.table(columns, schema=ITEMS_SCHEMA)
