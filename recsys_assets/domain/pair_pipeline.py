"""The training set's relational part as one SQL pipeline that any warehouse runs: window events in, labelled pairs out.

Deduplication, confidence weighting, the activity minimums, each pair's first-seen day, every
protocol's split label (`splitting.PROTOCOLS`, one SQL expression each) and the user and item index
are a few statements over an `events` relation. The same text runs on DuckDB (the embedded
warehouse, and `build_training_set` in memory) and on BigQuery; `Dialect` holds the handful of
fragments the two spell differently. Nothing input-controlled is ever part of the text: parameters
(event-type weights, the catalogue) arrive as tables or query parameters, numbers from validated
settings are formatted by Python, and relation names are this module's or a warehouse's own checked names.

What the pipeline leaves behind (`PairsFiles`): the pairs sorted by user and item index in Parquet
shards of at most `SHARD_ROWS` rows, the two id maps, and `pairs.json` (`PairsSummary`). The
training child turns them into the sparse matrices (`splitting.training_set_from_pairs`), so the
orchestrator only ever holds one batch of rows at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from recsys_assets.domain import storage
from recsys_assets.domain.events import EVENTS_SCHEMA, MAX_WEIGHT
from recsys_assets.domain.params import SplitParams

if TYPE_CHECKING:
    import pyarrow.dataset as pads

DAY_SECONDS = 86_400
# Split codes of a pair under each protocol (the label expressions return them).
FIT, VALIDATION, HOLDOUT = 0, 1, 2
# Rows per Parquet shard of the pairs: ~60 MiB uncompressed, so neither writer nor reader holds more at once.
SHARD_ROWS = 2_000_000
PAIRS_SCHEMA_BASE = pa.schema(
    [("u", pa.int32()), ("i", pa.int32()), ("confidence", pa.float32()), ("first_day", pa.float64())]
)


@dataclass(frozen=True)
class Dialect:
    """What DuckDB and BigQuery spell differently; everything else in the pipeline is the same text."""

    name: str
    # Seconds since the epoch (fractional) of a TIMESTAMP expression.
    epoch_seconds: Callable[[str], str]
    # The SQL type of the pairs' confidence (DuckDB keeps float32; BigQuery has only FLOAT64, cast after reading).
    confidence_type: str
    # The SQL type of the small-int codes and indexes.
    int_type: str


DUCKDB = Dialect(name="duckdb", epoch_seconds=lambda ts: f"epoch({ts})", confidence_type="FLOAT", int_type="INTEGER")
BIGQUERY = Dialect(
    name="bigquery",
    epoch_seconds=lambda ts: f"(UNIX_MICROS({ts}) / 1000000)",
    confidence_type="FLOAT64",
    int_type="INT64",
)


# An id with a character that is not white space (`text_files.blank_ids`: Unicode White_Space, which is
# RE2's \s, \v, NEL and the separators \p{Z}); a GoogleSQL raw string.
_NOT_BLANK = r"r'[^\s\v\x{85}\p{Z}]'"


def valid_events_filter() -> str:
    """Rows a daily extract keeps (`quality.split_extract`), in GoogleSQL: ids present and not blank, a finite
    weight in [0, MAX_WEIGHT] (NaN and +inf fail `<=`).

    The DuckDB warehouse reads the extracts themselves and needs no filter.
    """
    ids = " AND ".join(
        f"{column} IS NOT NULL AND REGEXP_CONTAINS({column}, {_NOT_BLANK})" for column in ("user_id", "item_id")
    )
    return f"{ids} AND weight IS NOT NULL AND weight >= 0 AND weight <= {MAX_WEIGHT!r}"


@dataclass(frozen=True)
class Relations:
    """The names the statements read and create: `events`, `type_weights`, `catalogue` in, the rest made here."""

    events: str = "events"
    type_weights: str = "type_weights"
    catalogue: str = "catalogue"
    labelled: str = "pairs_labelled"
    users: str = "pairs_users"
    items: str = "pairs_items"


def window_query(dialect: Dialect, rel: Relations) -> str:
    """One row: the end day (midnight after the last event), the events and the distinct events of the window."""
    return f"""
        SELECT coalesce(floor(max({dialect.epoch_seconds("event_ts")}) / {DAY_SECONDS}) + 1, 0) AS end_day,
               count(*) AS events,
               (SELECT count(*) FROM (SELECT DISTINCT user_id, item_id, event_type, weight, event_ts
                                      FROM {rel.events})) AS events_deduplicated
        FROM {rel.events}"""


class LabelSource(Protocol):
    """A protocol's label expression (`splitting.ProtocolDefinition.labels`, the one source of it)."""

    @property
    def labels(self) -> Callable[[SplitParams, float], str]: ...


# Protocol name -> its label source, in report order (`splitting.PROTOCOLS`).
Protocols = Mapping[str, LabelSource]


def labelled_query(params: SplitParams, end_day: float, dialect: Dialect, rel: Relations, protocols: Protocols) -> str:
    """Every kept pair with its confidence, first-seen day and one split code column per protocol."""

    # Protocol names are splitting's constants, never input: safe as column names.
    labels = ",\n               ".join(
        f"CAST(({definition.labels(params, end_day)}) AS {dialect.int_type}) AS {name}"
        for name, definition in protocols.items()
    )
    return f"""
        WITH deduped AS (SELECT DISTINCT user_id, item_id, event_type, weight, event_ts FROM {rel.events}),
        weighted AS (
            SELECT user_id, item_id, event_ts,
                   weight * coalesce(type_weight, {float(params.default_event_weight)!r}) AS confidence
            FROM deduped LEFT JOIN {rel.type_weights} USING (event_type)),
        pairs AS (
            SELECT user_id, item_id, sum(confidence) AS confidence, min(event_ts) AS first_ts
            FROM weighted GROUP BY user_id, item_id HAVING sum(confidence) > 0),
        items_ok AS (SELECT item_id FROM pairs GROUP BY item_id HAVING count(*) >= {int(params.min_item_users)}),
        item_filtered AS (SELECT * FROM pairs WHERE item_id IN (SELECT item_id FROM items_ok)),
        users_ok AS (
            SELECT user_id FROM item_filtered GROUP BY user_id HAVING count(*) >= {int(params.min_user_items)}),
        kept AS (SELECT * FROM item_filtered WHERE user_id IN (SELECT user_id FROM users_ok)),
        ranked AS (
            SELECT *, {dialect.epoch_seconds("first_ts")} / {DAY_SECONDS} AS first_day,
                      row_number() OVER (PARTITION BY user_id ORDER BY first_ts DESC, item_id) AS recency,
                      count(*) OVER (PARTITION BY user_id) AS n
            FROM kept)
        SELECT user_id, item_id, CAST(confidence AS {dialect.confidence_type}) AS confidence, first_day,
               {labels}
        FROM ranked"""


def _trained_somewhere(protocols: Iterable[str]) -> str:
    return " OR ".join(f"{name} <> {HOLDOUT}" for name in protocols)


def counts_query(rel: Relations, protocols: Iterable[str]) -> str:
    """One row: the pairs kept, then per protocol the pairs it held out (before the index drops any)."""

    held = ", ".join(f"sum(CASE WHEN {name} = {HOLDOUT} THEN 1 ELSE 0 END) AS {name}" for name in protocols)
    return f"SELECT count(*) AS pairs_kept, {held} FROM {rel.labelled}"


def users_query(dialect: Dialect, rel: Relations, protocols: Iterable[str]) -> str:
    """The user index: every user some protocol trains on, numbered in id order from 0."""
    return f"""
        SELECT user_id, CAST(row_number() OVER (ORDER BY user_id) - 1 AS {dialect.int_type}) AS u
        FROM (SELECT DISTINCT user_id FROM {rel.labelled} WHERE {_trained_somewhere(protocols)})"""


def items_query(dialect: Dialect, rel: Relations, protocols: Iterable[str]) -> str:
    """The item index: every item some protocol trains on, and the catalogue's items among the pairs."""
    return f"""
        SELECT item_id, CAST(row_number() OVER (ORDER BY item_id) - 1 AS {dialect.int_type}) AS i
        FROM (SELECT DISTINCT item_id FROM {rel.labelled}
              WHERE {_trained_somewhere(protocols)} OR item_id IN (SELECT item_id FROM {rel.catalogue}))"""


def indexed_query(rel: Relations, protocols: Iterable[str]) -> str:
    """The pairs on the index, sorted by user then item (so the shards, and their hash, are the same every run).

    Held-out pairs whose item never occurs in training cannot be recommended by any model: the
    join drops them, and the split counts them rather than scoring them as misses.
    """

    return f"""
        SELECT u, i, confidence, first_day, {", ".join(protocols)}
        FROM {rel.labelled} JOIN {rel.users} USING (user_id) JOIN {rel.items} USING (item_id)
        ORDER BY u, i"""


def ids_query(rel_name: str, id_column: str, index_column: str) -> str:
    return f"SELECT {id_column} FROM {rel_name} ORDER BY {index_column}"


class PairsSummary(BaseModel):
    """`pairs.json`: what the pipeline counted, and where the pairs are."""

    events: int
    events_deduplicated: int
    pairs_kept: int
    pairs: int
    users: int
    items: int
    end_day: float
    held_out: dict[str, int]
    # The shards' paths under the folder, in order.
    shards: list[str]


@dataclass(frozen=True)
class PairsFiles:
    """The pipeline's output in a training set's folder."""

    folder: str

    @property
    def summary(self) -> str:
        """Written last: its presence marks complete pairs."""
        return storage.join(self.folder, "pairs.json")

    @staticmethod
    def shard_name(number: int) -> str:
        """A shard's path under the folder (what `pairs.json` lists, so the files hash the same wherever they are)."""
        return f"pairs/part-{number:05d}.parquet"

    def shard(self, name: str) -> str:
        return storage.join(self.folder, name)

    @property
    def user_ids(self) -> str:
        return storage.join(self.folder, "pairs", "user_ids.parquet")

    @property
    def item_ids(self) -> str:
        return storage.join(self.folder, "pairs", "item_ids.parquet")


def pairs_schema(protocols: Iterable[str]) -> pa.Schema:
    return pa.schema([*PAIRS_SCHEMA_BASE, *(pa.field(name, pa.int8()) for name in protocols)])


def conform_pairs(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.Table:
    """A batch of pairs in the file schema (BigQuery returns int64 codes and float64 confidences)."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    return table.select(schema.names).cast(schema)


def _write(uri: str, table: pa.Table, digests: dict[str, bytes]) -> None:
    payload = storage.table_to_bytes(table)
    digests[uri] = hashlib.sha256(payload).digest()
    storage.write_bytes(uri, payload)


def write_shards(
    batches: Iterable[pa.RecordBatch],
    files: PairsFiles,
    schema: pa.Schema,
    digests: dict[str, bytes],
    shard_rows: int | None = None,
) -> tuple[list[str], int]:
    """Stream `batches` into shards of exactly `SHARD_ROWS` rows (the last shorter); returns their names and the rows.

    Each shard's SHA-256 is added to `digests`; `shard_rows` defaults to `SHARD_ROWS`.

    Shard boundaries depend on the row count alone, never on how the engine batched its output, so the same
    pairs always give the same files.
    """
    shard_rows = shard_rows or SHARD_ROWS
    shards: list[str] = []
    pending: list[pa.Table] = []
    pending_rows = rows = 0

    def flush(table: pa.Table) -> None:
        name = files.shard_name(len(shards))
        _write(files.shard(name), table, digests)
        shards.append(name)

    for batch in batches:
        table = conform_pairs(batch, schema)
        rows += table.num_rows
        pending.append(table)
        pending_rows += table.num_rows
        while pending_rows >= shard_rows:
            joined = pa.concat_tables(pending).combine_chunks()
            flush(joined.slice(0, shard_rows))
            rest = joined.slice(shard_rows)
            pending, pending_rows = [rest], rest.num_rows
    if pending_rows or not shards:
        flush(pa.concat_tables(pending).combine_chunks() if pending else schema.empty_table())
    return shards, rows


def write_ids(table: pa.Table, uri: str, column: str, digests: dict[str, bytes]) -> None:
    _write(uri, pa.Table.from_arrays([table[column].cast(pa.string())], names=[column]), digests)


def digest_hash(digests: Mapping[str, bytes], folder: str) -> str:
    """`splitting.content_hash` from each file's SHA-256 rather than its bytes (files written one at a time)."""
    digest = hashlib.sha256()
    prefix = folder.rstrip("/") + "/"
    for uri in sorted(digests):
        if not uri.startswith(prefix):
            raise ValueError(f"{uri} is not under {folder}")
        digest.update(uri.removeprefix(prefix).encode())
        digest.update(digests[uri])
    return digest.hexdigest()


class Engine(Protocol):
    """How a warehouse runs the pipeline's statements (DuckDB in process, BigQuery jobs)."""

    def one(self, sql: str) -> dict[str, Any]:
        """The single row `sql` returns, by column name."""
        ...

    def create(self, name: str, sql: str) -> None:
        """Make `name` a table holding `sql`'s rows, for the statements after it."""
        ...

    def table(self, sql: str) -> pa.Table:
        """All of `sql`'s rows (only small results: the id maps)."""
        ...

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        """`sql`'s rows a batch at a time."""
        ...


@dataclass(frozen=True)
class Labelled:
    """What the statements before the pairs are read back counted."""

    end_day: float
    events: int
    events_deduplicated: int
    pairs_kept: int
    held_out: dict[str, int]


def label(engine: Engine, dialect: Dialect, rel: Relations, params: SplitParams, protocols: Protocols) -> Labelled:
    """Run the pipeline up to the index: the labelled pairs, the user index and the item index become tables."""

    window = engine.one(window_query(dialect, rel))
    end_day = float(window["end_day"])
    engine.create(rel.labelled, labelled_query(params, end_day, dialect, rel, protocols))
    counts = engine.one(counts_query(rel, protocols))
    engine.create(rel.users, users_query(dialect, rel, protocols))
    engine.create(rel.items, items_query(dialect, rel, protocols))
    return Labelled(
        end_day=end_day,
        events=int(window["events"]),
        events_deduplicated=int(window["events_deduplicated"]),
        pairs_kept=int(counts["pairs_kept"]),
        held_out={name: int(counts[name] or 0) for name in protocols},
    )


def run_pipeline(
    engine: Engine,
    dialect: Dialect,
    rel: Relations,
    params: SplitParams,
    protocols: Protocols,
    files: PairsFiles,
    shard_rows: int | None = None,
) -> str:
    """Run the whole pipeline on `engine` and write its output at `files`; returns the files' content hash.

    `pairs.json` is written last, so its presence marks a complete output.
    """

    labelled = label(engine, dialect, rel, params, protocols)
    digests: dict[str, bytes] = {}
    users = engine.table(ids_query(rel.users, "user_id", "u"))
    items = engine.table(ids_query(rel.items, "item_id", "i"))
    write_ids(users, files.user_ids, "user_id", digests)
    write_ids(items, files.item_ids, "item_id", digests)
    shards, rows = write_shards(
        engine.batches(indexed_query(rel, protocols)), files, pairs_schema(protocols), digests, shard_rows
    )
    summary = PairsSummary(
        events=labelled.events,
        events_deduplicated=labelled.events_deduplicated,
        pairs_kept=labelled.pairs_kept,
        pairs=rows,
        users=users.num_rows,
        items=items.num_rows,
        end_day=labelled.end_day,
        held_out=labelled.held_out,
        shards=shards,
    )
    payload = summary.model_dump_json(indent=2).encode()
    digests[files.summary] = hashlib.sha256(payload).digest()
    storage.write_bytes(files.summary, payload)
    return digest_hash(digests, files.folder)


def collect_pipeline(
    engine: Engine, dialect: Dialect, rel: Relations, params: SplitParams, protocols: Protocols
) -> LoadedPairs:
    """Run the whole pipeline on `engine` and keep its output in memory (`build_training_set`)."""

    labelled = label(engine, dialect, rel, params, protocols)
    users = engine.table(ids_query(rel.users, "user_id", "u"))["user_id"].combine_chunks()
    items = engine.table(ids_query(rel.items, "item_id", "i"))["item_id"].combine_chunks()
    table = conform_pairs(engine.table(indexed_query(rel, protocols)), pairs_schema(protocols))
    summary = PairsSummary(
        events=labelled.events,
        events_deduplicated=labelled.events_deduplicated,
        pairs_kept=labelled.pairs_kept,
        pairs=table.num_rows,
        users=len(users),
        items=len(items),
        end_day=labelled.end_day,
        held_out=labelled.held_out,
        shards=[],
    )
    columns = {name: table[name].to_numpy() for name in table.column_names}
    return LoadedPairs(columns=columns, user_ids=users, item_ids=items, summary=summary)


@dataclass(frozen=True)
class LoadedPairs:
    """The pipeline's output read back: the columns as NumPy arrays, the id maps and the summary."""

    columns: dict[str, np.ndarray]
    user_ids: pa.Array
    item_ids: pa.Array
    summary: PairsSummary


def load_pairs(files: PairsFiles, protocols: Iterable[str]) -> LoadedPairs:
    """Read the pairs written at `files` (the shards in parallel)."""
    summary = PairsSummary.model_validate(json.loads(storage.read_bytes(files.summary)))
    tables = storage.read_tables([files.shard(name) for name in summary.shards])
    table = pa.concat_tables(tables) if tables else pairs_schema(protocols).empty_table()
    columns = {name: table[name].to_numpy() for name in table.column_names}
    del tables, table
    users = storage.table_from_bytes(storage.read_bytes(files.user_ids))["user_id"].combine_chunks()
    items = storage.table_from_bytes(storage.read_bytes(files.item_ids))["item_id"].combine_chunks()
    return LoadedPairs(columns=columns, user_ids=users, item_ids=items, summary=summary)


class DuckDBEngine:
    """The pipeline on a DuckDB connection whose `events`, `type_weights` and `catalogue` relations are registered."""

    # Rows per batch streamed out of DuckDB: a few MiB each.
    BATCH_ROWS = 262_144

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def one(self, sql: str) -> dict[str, Any]:
        relation = self.con.sql(sql)
        return dict(zip(relation.columns, relation.fetchall()[0], strict=True))

    def create(self, name: str, sql: str) -> None:
        # A table of the connection's database: on a file-backed one (the engine process) it can be evicted to disk.
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")

    def table(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        reader = self.con.sql(sql).to_arrow_reader(self.BATCH_ROWS)
        yield from reader


def type_weights_table(params: SplitParams) -> pa.Table:
    """The `type_weights` relation: each configured event type and its weight."""
    return pa.table(
        {
            "event_type": pa.array(list(params.event_type_weights), pa.string()),
            "type_weight": pa.array(list(params.event_type_weights.values()), pa.float64()),
        }
    )


def catalogue_table(catalogue_ids: pa.Array | pa.ChunkedArray | None) -> pa.Table:
    """The `catalogue` relation: the item ids of the partition's catalogue snapshot (none when it was never built)."""
    ids = pa.array([], pa.string()) if catalogue_ids is None else catalogue_ids
    return pa.table({"item_id": cast(pa.Array, ids)}).cast(pa.schema([pa.field("item_id", pa.string())]))


def register_inputs(
    con: duckdb.DuckDBPyConnection, params: SplitParams, catalogue_ids: pa.Array | pa.ChunkedArray | None
) -> None:
    """Register the pipeline's parameter relations: the event-type weights and the catalogue's item ids."""
    con.register("catalogue", catalogue_table(catalogue_ids))
    con.register("type_weights", type_weights_table(params))


@dataclass(frozen=True)
class PairsRequest:
    """What a warehouse is asked to build: the window's pairs, written at `files`."""

    # The window: events with start <= event_ts < end.
    start: datetime
    end: datetime
    # The window's daily extracts (the record of each day's data), for a warehouse that reads them.
    extracts: list[str]
    params: SplitParams
    catalogue_ids: pa.Array | pa.ChunkedArray | None
    files: PairsFiles
    protocols: Protocols


def extract_dataset(uris: list[str]) -> pads.Dataset:
    """The daily extracts at `uris` as one Arrow dataset in the events contract, scanned lazily batch by batch."""
    # Imported here: it loads pandas (half a second), and only the pairs engine process scans extracts.
    import pyarrow.dataset as pads

    if not uris:
        return pads.dataset(EVENTS_SCHEMA.empty_table())
    filesystem, _ = storage.resolve(uris[0])
    paths = [storage.resolve(uri)[1] for uri in uris]
    return pads.dataset(paths, schema=EVENTS_SCHEMA, format="parquet", filesystem=filesystem)
