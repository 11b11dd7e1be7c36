"""The local instance's event log: Dagster's SQLite storage, writing a range run's per-day events in one go.

Subclasses Dagster internals (`SqliteEventLogStorage`, `prepare_insert_event`, `_store_asset_event_tags`,
`_store_asset_event`, `index_transaction`): it is tested against the pinned Dagster version
(`recsys_assets.instance.TESTED_DAGSTER_VERSION`).

Dagster stores every event in its own SQLite transactions: a run-shard insert, then an index-shard
insert with the asset's tags and last-materialization row, each on a fresh connection. A range run
of the daily `interactions` asset emits one materialization per day, so an 8,000-day history import
spent ~2 minutes on ~16,000 small transactions (benchmarks/README.md). Dagster hands a range's
events to `store_event_batch` when `DAGSTER_EVENT_BATCH_SIZE` is set in the process that runs the
steps, but only its PostgreSQL storage implements that; SQLite's inherited version loops over
`store_event`. This one writes the batch in one transaction per shard, as dagster-postgres does.
Every day keeps its own materialization event, so per-day lineage in the UI is unchanged, and its own
millisecond, so the asset's Events tab lists every day.

Every process that runs steps on the local instance (the CLI, the run workers `dagster dev` starts)
creates this storage from dagster.yaml, so it is where the batch size is set: no import sets it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy.event
from dagster import DagsterEventType, Field, StringSource
from dagster import __version__ as dagster_version
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

from recsys_assets.settings import batch_range_run_events, dagster_home

# Shards whose SQLAlchemy engine a process keeps (a run's shard and the index); older ones are disposed.
CACHED_ENGINES = 16
# Check results held for one run-shard transaction at most (a 28-day first run has 112, an 8,000-day
# history import gets one per check: `extract.interactions.PER_DAY_RESULTS_MAX`).
HELD_CHECKS_MAX = 500
# What Dagster batches (execute_step.py) and what dagster-postgres writes as one batch.
BATCHED_EVENT_TYPES = frozenset({DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION})


def _commit_without_fsync(connection: Any, _record: Any) -> None:
    connection.execute("PRAGMA synchronous=NORMAL")


def distinct_milliseconds(events: Sequence[EventLogEntry]) -> list[EventLogEntry]:
    """`events` with each timestamp at least 1 ms after the previous one.

    A range run's per-day events are created within a few milliseconds, and the UI's Events tab keeps
    one event per run and millisecond: 28 days showed as 3 entries. The shift is at most 1 ms per day.
    """
    spread: list[EventLogEntry] = []
    for event in events:  # one per day of a range, not per row
        if spread and event.timestamp < spread[-1].timestamp + 0.001:
            event = event._replace(timestamp=spread[-1].timestamp + 0.001)
        spread.append(event)
    return spread


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log (Dagster's, per-run shards) that stores a partition range's events in one transaction per shard."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._held_checks: list[EventLogEntry] = []
        self._held_lock = threading.Lock()
        super().__init__(base_dir, inst_data=inst_data)
        # Dagster takes the batch size from the process environment only (no instance setting).
        batch_range_run_events()

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        # One "planned" event per asset for a range run instead of one per day (Dagster reads this from
        # DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS by default). Dagster's trade-off: a failed range
        # run does not mark each of its days failed; the run itself still fails.
        return True

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        # Optional, unlike the parent's: by default the same folder Dagster's default storage uses, so
        # an instance's existing history stays readable after dagster.yaml names this class.
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        base_dir = config_value.get("base_dir")
        if base_dir is None:
            home = dagster_home()
            if not home:
                raise ValueError("event_log_storage: set DAGSTER_HOME or give base_dir in dagster.yaml")
            base_dir = os.path.join(home, "history", "runs", "")
        return cls(base_dir=base_dir, inst_data=inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """Dagster's per-shard transaction, on an engine kept per shard instead of created for each one.

        Dagster builds and disposes a SQLAlchemy engine for every connection (about 0.5 ms): a run stores
        each event through 2-6 of them, and a range run's per-day check results are hundreds of events.

        A run's shard keeps no connection (`NullPool`), as Dagster's does: closing the last connection
        checkpoints the write-ahead log into `<run>.db`, whose modification is what the UI's live log
        view watches. The index shard, which nothing watches, keeps its connections open: otherwise each
        of its transactions also pays a checkpoint and an fsync on close, which made each check result
        cost about 17 ms (112 results, 1.9 s, in a 28-day first run; benchmarks/README.md). The index
        also commits without an fsync (`synchronous=NORMAL`: safe when a process is killed, in WAL mode):
        it mirrors the run shards, so what a power cut could take from it, `dagster instance reindex`
        rebuilds.
        """
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    **(
                        # Threads of one process (the daemon's, the webserver's) each check out their own.
                        {"poolclass": QueuePool, "pool_size": 2, "max_overflow": 8}
                        if shard == INDEX_SHARD_NAME
                        else {"poolclass": NullPool}
                    ),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                )
                if shard == INDEX_SHARD_NAME:
                    sqlalchemy.event.listen(engine, "connect", _commit_without_fsync)
                if shard not in self._initialized_dbs:
                    self._init_shard(shard, engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
                if len(self._engines) > CACHED_ENGINES:
                    self._engines.popitem(last=False)[1].dispose()
            else:
                self._engines.move_to_end(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _init_shard(self, shard: str, engine: Engine) -> None:
        """Dagster's `_initdb`, except that a new run's shard is a copy of an empty one made by it once.

        Dagster creates every run's database with its tables and stamps its schema revision with alembic:
        40-90 ms a run, against about 1 ms for a file copy. The template is named after the Dagster
        version that made it, so an upgraded Dagster makes its own. Another process creating the same
        shard first (a run worker and the webserver) leaves its file in place and the usual check runs.
        """
        path = self.path_for_shard(shard)
        if shard == INDEX_SHARD_NAME or os.path.exists(path):
            self._initdb(engine)
            return
        staged = f"{path}.{os.getpid()}-{threading.get_ident()}.new"
        shutil.copyfile(self._run_shard_template(), staged)
        try:
            os.link(staged, path)  # never replaces a shard another process created meanwhile
        except FileExistsError:
            self._initdb(engine)
        finally:
            os.unlink(staged)

    def _run_shard_template(self) -> str:
        """The empty run shard Dagster's `_initdb` makes, created on first use (by whichever process is first)."""
        template = os.path.join(self._base_dir, f".run-shard-dagster-{dagster_version}.db")
        if not os.path.exists(template):
            fd, staged = tempfile.mkstemp(dir=self._base_dir, prefix=".run-shard-", suffix=".new")
            os.close(fd)
            os.unlink(staged)  # SQLite creates the file itself
            engine = create_engine(f"sqlite:///{staged}", poolclass=NullPool)
            try:
                self._initdb(engine)
            finally:
                # The last connection closed: the write-ahead log is checkpointed into the file and removed.
                engine.dispose()
            os.replace(staged, template)  # concurrent creators write identical files
        return template

    def store_event(self, event: EventLogEntry) -> None:
        """Dagster's `store_event`, except that a step's consecutive check results share one run-shard transaction.

        A check result is held until the next event that is not one (of any run), at most
        `HELD_CHECKS_MAX`: every step emits its output and success or failure events after its check
        results, so they are stored before the step ends. Dagster passes check results one by one (it
        batches materializations only), and each cost a run-shard transaction with a checkpoint on close
        (112 for a 28-day first run).
        """
        held = event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION and bool(event.run_id)
        if held:
            with self._held_lock:
                self._held_checks.append(event)
                if len(self._held_checks) < HELD_CHECKS_MAX:
                    return
        self._store_held_checks()
        if not held:
            super().store_event(event)

    def _store_held_checks(self) -> None:
        """Store the held check results: one run-shard transaction per run, then each one's index rows as Dagster does."""
        with self._held_lock:
            held, self._held_checks = self._held_checks, []
        for run_id in dict.fromkeys(event.run_id for event in held):
            events = [event for event in held if event.run_id == run_id]
            statements = [self.prepare_insert_event(event) for event in events]
            with self.run_connection(run_id) as conn:
                for statement in statements:
                    conn.execute(statement)
            for event, statement in zip(events, statements, strict=True):
                # What `SqliteEventLogStorage.store_event` does for a check result after its run-shard insert.
                with self.index_connection() as conn, db_result(conn, statement) as result:
                    event_id = result.inserted_primary_key[0]
                self.store_asset_check_event(event, event_id)

    def dispose(self) -> None:
        self._store_held_checks()
        super().dispose()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store one step output's asset events: one run-shard and one index-shard transaction for all of them."""
        if not events:
            return
        self._store_held_checks()
        # Anything else (asset failures, events of several runs) is stored as Dagster stores it.
        if len({event.run_id for event in events}) != 1 or any(
            event.dagster_event_type not in BATCHED_EVENT_TYPES or event.get_dagster_event().asset_key is None
            for event in events
        ):
            super().store_event_batch(events)
            return
        events = distinct_milliseconds(events)
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            event_ids: list[int] = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, event_ids)
            # The asset's row holds its latest event: the last one per asset key is enough.
            latest = {
                event.get_dagster_event().asset_key: (event, event_id)
                for event, event_id in zip(events, event_ids, strict=True)
            }
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)
