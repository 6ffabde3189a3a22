"""The database: one async engine, its pragmas, and schema migrations at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (Connection, Engine, Executable, Row, String, Table, TypeDecorator, bindparam, create_engine,
                        event, func, text)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.selectable import TableValuedAlias

from podium import jsontext
from podium.errors import DatabaseUnavailable, PodiumError

MIGRATIONS = Path(__file__).with_name("migrations")
# Pages (4 KiB) of WAL past which a commit checkpoints by itself (SQLite's default is 1,000).
# Below it the checkpoint thread's copying leaves the WAL never quite empty, so the WAL grows to
# this size and then starts over (40 MB of disk at most).
SELF_CHECKPOINT_PAGES = 10_000
# How long a SQLite write waits for another connection's (another process's) write lock.
BUSY_TIMEOUT_MS = 5_000
T = TypeVar("T")
log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    # WAL lets readers run beside the single writer; NORMAL sync is durable across app
    # crashes (not power loss), the usual trade-off for an embedded server database.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Checkpoints are the checkpoint thread's job (`_Checkpoints`), not a commit's.
    cursor.execute(f"PRAGMA wal_autocheckpoint={SELF_CHECKPOINT_PAGES}")
    cursor.close()


def _postgres_text(dbapi_connection, _record) -> None:  # noqa: ANN001
    # PostgreSQL's text cannot hold U+0000, which SQLite's can and JSON strings may carry: one in
    # a message, a session id or a tool's output failed its whole statement (a 500, a turn not
    # recorded). Every text value bound on the way in has it replaced by U+FFFD instead.
    dbapi_connection.run_async(_text_without_nul)


async def _text_without_nul(connection: Any) -> None:
    for name in ("text", "varchar"):
        await connection.set_type_codec(name, schema="pg_catalog", format="text",
                                        encoder=_without_nul, decoder=str)


def _without_nul(value: str) -> str:
    return value.replace("\x00", "\ufffd")


class _TextArray(TypeDecorator):
    """An array of text bound on PostgreSQL, its U+0000 replaced as `_postgres_text` replaces it
    in every text value: asyncpg encodes an array of text with a codec of its own."""

    impl = postgresql.ARRAY
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else [_without_nul(v) if isinstance(v, str) else v for v in value]


class Database:
    """Owns the engine; created in the app's lifespan and passed to every store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        if self.is_sqlite:
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        try:
            # JSON columns through jsontext: json.dumps took 2% of a run's CPU (a turn's context,
            # attempts and tool calls, each span's attributes). Reading stays with json.loads,
            # which keeps integers over 64 bits exact where orjson.loads makes them floats.
            self.engine: AsyncEngine = create_async_engine(url, json_serializer=jsontext.dumps)
        except ModuleNotFoundError as exc:  # the driver is an extra: asyncpg for PostgreSQL
            raise DatabaseUnavailable(
                f"the driver for {self.shown} is not installed ({exc.name})",
                hint="for PostgreSQL: pip install -e '.[postgres]' (asyncpg)") from exc
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        elif self.engine.dialect.driver == "asyncpg":
            event.listen(self.engine.sync_engine, "connect", _postgres_text)
        # A SQLite file gets threads with plain sqlite3 connections: a transaction there is
        # one thread hop, where aiosqlite makes about three per statement. One writer (SQLite
        # has one), two readers (WAL lets them read beside it).
        self._writer: _Threads | None = None
        self._reader: _Threads | None = None
        # Elsewhere (PostgreSQL), reads and one-statement writes run in autocommit: one statement
        # is atomic by itself, and under READ COMMITTED each statement of a transaction takes its
        # own snapshot anyway. BEGIN and COMMIT were two of a history read's three round trips.
        self._autocommit: AsyncEngine | None = None
        if not self.is_sqlite:
            self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._checkpoints: _Checkpoints | None = None
        if self.is_sqlite and make_url(url).database not in (None, "", ":memory:"):
            sync_url = make_url(url).set(drivername="sqlite")
            self._writer = _Threads(sync_url, 1, "podium-db-writer")
            self._reader = _Threads(sync_url, 2, "podium-db-reader")
            self._checkpoints = _Checkpoints(_Threads(sync_url, 1, "podium-db-checkpoint"))

    @property
    def shown(self) -> str:
        """The URL with its password masked, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision of every branch (the first connection made,
        so an unreachable database is reported here, once, plainly)."""
        try:
            await asyncio.to_thread(upgrade, self.url)
        except (OSError, DBAPIError) as exc:
            reason = exc.orig if isinstance(exc, DBAPIError) else exc
            first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else ""
            raise DatabaseUnavailable(f"cannot open the database {self.shown}: "
                                      f"{type(reason).__name__}: {first_line}") from exc

    def start(self) -> None:
        """Begin background work: on a SQLite file, the checkpoints."""
        if self._checkpoints is not None:
            self._checkpoints.start()

    def figures(self) -> dict[str, int] | None:
        """On a SQLite file, the checkpoints the checkpoint thread has made."""
        if self._checkpoints is None:
            return None
        return {"checkpoints": self._checkpoints.done}

    async def write(self, work: Callable[[Connection], T], *, inline: bool = False, one_statement: bool = False) -> T:
        """Run `work(connection)` in one transaction with a synchronous connection: on a SQLite
        file in the writer thread, elsewhere through SQLAlchemy's `run_sync` on the async engine.
        `inline`: a short transaction that may run on the event loop when the writer is idle.
        `one_statement`: the work executes a single statement, which PostgreSQL then runs
        without BEGIN and COMMIT (two round trips less); it is atomic all the same."""
        if self._writer is None:
            if one_statement and self._autocommit is not None:
                async with self._autocommit.connect() as conn:
                    return await conn.run_sync(work)
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        return await self._writer.run(work, transaction=True, inline=inline)

    async def read(self, work: Callable[[Connection], T], *, inline: bool = False, cursor: bool = False) -> T:
        """Run `work(connection)` for reading, the same way (a reader thread on a SQLite file).
        `inline`: a short read that may run on the event loop when a reader is idle.
        `cursor`: the work reads through a server-side cursor (`yield_per`), which PostgreSQL
        keeps only within a transaction; other reads there run in autocommit."""
        if self._reader is None:
            async with (self.engine if cursor else self._autocommit or self.engine).connect() as conn:
                return await conn.run_sync(work)
        return await self._reader.run(work, transaction=False, inline=inline)

    # One statement, the shape most store methods need: their rows come back whole, never as a
    # live result outside the thread that read them.

    async def rows(self, query: Executable, params: Mapping[str, Any] | None = None, *,
                   inline: bool = False) -> Sequence[Row[Any]]:
        """Every row of one query, read as `read` reads."""
        return await self.read(lambda conn: conn.execute(query, params).all(), inline=inline)

    async def row(self, query: Executable, params: Mapping[str, Any] | None = None) -> Row[Any] | None:
        """The first row of one query (None when it has none), read as `read` reads."""
        return await self.read(lambda conn: conn.execute(query, params).first())

    async def run(self, statement: Executable, params: Mapping[str, Any] | None = None) -> int:
        """One statement in a transaction of its own, written as `write` writes; the rows it changed."""
        return await self.write(lambda conn: conn.execute(statement, params).rowcount or 0, one_statement=True)

    async def size(self) -> int:
        """Bytes the database takes: the SQLite file with its WAL, or the PostgreSQL database."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn:
                return int((await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one())
        path = Path(make_url(self.url).database or "")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())

    async def close(self) -> None:
        if self._checkpoints is not None:
            await self._checkpoints.close()
        await self.engine.dispose()
        for side in (self._writer, self._reader):
            if side is not None:
                side.close()


class _Threads:
    """A synchronous engine on the same SQLite file, its connections and the threads that use
    them. Connections are kept open and handed out from a queue: a checkout from SQLAlchemy's
    pool and its reset on return were a fifth of a one-turn transaction (28 of 215 us at
    concurrency 1, bench scenario 1).

    `run(..., inline=True)` runs the work on the calling thread (the event loop's) when a
    connection is idle, for short work that a run waits for (its turn's commit, its history): a
    thread's round trip cost a turn's commit about 150 us more than the transaction itself
    (bench scenario 1). It never waits there: with every connection busy, or the database locked
    by another process, the work goes to a thread as usual."""

    def __init__(self, url: URL, threads: int, name: str) -> None:
        self.engine: Engine = create_engine(url, pool_size=threads, max_overflow=0,
                                            connect_args={"check_same_thread": False}, json_serializer=jsontext.dumps)
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self.threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        # One connection per thread, opened on first use (None: not yet, or closed after a failure).
        self._idle: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        for _ in range(threads):
            self._idle.put(None)
        self._open: set[Connection] = set()

    async def run(self, work: Callable[[Connection], T], transaction: bool, inline: bool = False) -> T:
        if inline:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                pass  # every connection is in a thread's transaction: wait in line like any other
            else:
                try:
                    return self._use(conn, work, transaction, wait=False)
                except _Locked:
                    pass  # another process is writing: wait for it in a thread, not on the event loop
        return await asyncio.get_running_loop().run_in_executor(self.threads, self._run, work, transaction)

    def _run(self, work: Callable[[Connection], T], transaction: bool) -> T:
        return self._use(self._idle.get(), work, transaction, wait=True)

    def _use(self, conn: Connection | None, work: Callable[[Connection], T], transaction: bool, wait: bool) -> T:
        kept: Connection | None = None
        try:
            kept = conn = conn or self._connect()
            _busy_timeout(conn, BUSY_TIMEOUT_MS if wait else 0)
            if transaction:
                with conn.begin():
                    return work(conn)
            try:
                return work(conn)
            finally:
                conn.rollback()  # a read ends here: no snapshot is held between calls
        except PodiumError:
            raise  # the work's own refusal (not found, conflict): rolled back, the connection is sound
        except BaseException as exc:
            if not wait and _is_locked(exc):
                raise _Locked from exc  # rolled back; the connection is sound
            # Whatever state a failure left the connection in, the next use starts afresh.
            self._discard(kept)
            kept = None
            raise
        finally:
            self._idle.put(kept)  # a connection's slot is never lost, even when opening it failed

    def _connect(self) -> Connection:
        conn = self.engine.connect()
        self._open.add(conn)
        return conn

    def _discard(self, conn: Connection | None) -> None:
        if conn is not None:
            self._open.discard(conn)
            conn.close()

    def close(self) -> None:
        self.threads.shutdown(wait=True)
        for conn in self._open:  # the threads are gone; their connections are closed here
            conn.close()
        self._open.clear()
        self.engine.dispose()


class _Locked(Exception):
    """An inline transaction found the database locked by another process."""


def _busy_timeout(conn: Connection, ms: int) -> None:
    """Make `conn` wait `ms` for a lock (0: fail at once), unless it does already: inline
    transactions then cost no PRAGMA (they had one each way around them, ~5 us a turn)."""
    if conn.info.get("busy_timeout_ms", BUSY_TIMEOUT_MS) != ms:  # new connections: _sqlite_pragmas
        conn.connection.dbapi_connection.execute(f"PRAGMA busy_timeout={ms}")  # type: ignore[union-attr]
        conn.info["busy_timeout_ms"] = ms


def _is_locked(exc: BaseException) -> bool:
    # SQLAlchemy wraps the driver's error; DriverInsert raises the driver's own.
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    return isinstance(error, sqlite3.OperationalError) and \
        error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Checkpoints:
    """Copies committed WAL pages into the database file from a thread of its own, every
    `interval` seconds when another connection has committed (`PRAGMA data_version` changed).
    Left to the committing connection (SQLite's default, every 1,000 pages), a checkpoint and its
    fsyncs fell on the answer of whichever run crossed the mark: scenario 1 at c=1, p99 4.0 ms
    against 2.2 ms with this thread (bench/RESULTS.md)."""

    def __init__(self, threads: _Threads, interval: float = 0.1) -> None:
        self.threads = threads
        self.interval = interval
        self.done = 0
        self._seen: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._every_interval(), name="db-checkpoints")

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.threads.run(self._checkpoint, transaction=False)
            except Exception:  # commits still checkpoint themselves past SELF_CHECKPOINT_PAGES
                log.exception("WAL checkpoint failed")

    def _checkpoint(self, conn: Connection) -> None:
        dbapi = conn.connection.dbapi_connection
        version = dbapi.execute("PRAGMA data_version").fetchone()[0]  # type: ignore[union-attr]
        if version == self._seen:
            return
        self._seen = version
        # PASSIVE copies what it can without waiting for the writer or readers, and neither
        # waits for it. (RESTART, which would keep the WAL short, makes the writer wait as long
        # as any reader is reading: one slow console read would hold up every run's commit.)
        dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        self.done += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.threads.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Alembic keeps the command it is running in module globals: one upgrade at a time in a process.
# Other processes on the same database wait in migrations/env.py, on one of these two locks.
_UPGRADING = threading.Lock()
MIGRATION_LOCK_KEY = 0x706F6469756D  # "podium" in ASCII: the PostgreSQL advisory lock of migrations


@contextlib.contextmanager
def migration_file_lock(url: str) -> Iterator[None]:
    """On a SQLite file, an exclusive lock on `<file>-migrate.lock` while migrating (blocking:
    the caller is the migration's own thread); released when the file closes, or the process
    ends. Elsewhere, nothing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        yield
        return
    with open(f"{parsed.database}-migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def upgrade(url: str) -> None:
    # Capabilities add revisions on their own branches; "heads" applies all of them.
    with _UPGRADING:
        command.upgrade(alembic_config(url), "heads")


class DriverInsert:
    """An INSERT that every run writes, compiled once per dialect and run with the driver's own
    `executemany`: the same SQL and the same bind processing (JSON columns) as `conn.execute`,
    without SQLAlchemy's per-execution work, which was over half of a turn's transaction on
    SQLite (a turn: 134 -> 77 us in isolation). The statement may also be a SELECT whose CTEs
    insert (see `unnested`), run with one row of arrays.

    `one_statement=True` sends the rows to SQLite as one multi-row INSERT (in chunks under its
    bind limit) instead: FTS5 flushes its pending index at each statement, so a table whose
    trigger feeds an FTS5 index pays that flush once per batch, not once per row (messages, 32
    rows: 13.6 -> 3.3 us a row). Other backends, and tables without such a trigger, gain nothing.
    """

    def __init__(self, statement: Executable, keys: list[str], *, one_statement: bool = False) -> None:
        self.statement = statement
        self.keys = keys
        self.one_statement = one_statement
        self._compiled: dict[Dialect, tuple[str, list[tuple[str, Any, Any]]]] = {}

    def execute(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert `rows` (dicts keyed by `keys`, and by the statement's own bind names) on
        `conn`'s transaction."""
        sql, slots = self._compiled.get(conn.dialect) or self._compile(conn.dialect)
        dbapi = conn.connection.dbapi_connection
        values = [tuple(_bound(row, slot) for slot in slots) for row in rows]
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        try:
            if self.one_statement and conn.dialect.name == "sqlite":
                per_statement = max(1, dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(slots))  # type: ignore[union-attr]
                group = sql[sql.rindex("("):]  # "(?, ?, ...)": checked in _compile
                for start in range(0, len(values), per_statement):
                    chunk = values[start:start + per_statement]
                    cursor.execute(sql + f", {group}" * (len(chunk) - 1), [v for row in chunk for v in row])
            elif len(values) == 1:
                cursor.execute(sql, values[0])
            else:
                cursor.executemany(sql, values)
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> tuple[str, list[tuple[str, Any, Any]]]:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.keys)  # type: ignore[attr-defined]
        if not compiled.positional or compiled.positiontup is None:
            raise TypeError(f"{dialect.name}: a positional paramstyle is needed, not {dialect.paramstyle}")
        # Binds not in `keys` must carry their value (the statement's literals); the others are
        # column defaults SQLAlchemy computes per execution, which this does not do.
        unfilled = [n for n in compiled.positiontup if n not in self.keys and compiled.binds[n].value is None]
        if unfilled:
            raise TypeError(f"no value for {', '.join(unfilled)} in {_target(self.statement)}: name it in keys")
        if self.one_statement and dialect.name == "sqlite" and not compiled.string.endswith(
                "VALUES (" + ", ".join("?" * len(compiled.positiontup)) + ")"):
            raise TypeError(f"{self.statement.table}: one statement needs a plain INSERT ... VALUES (...)")
        slots = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            slots.append((name, process, bind.value))
        self._compiled[dialect] = (compiled.string, slots)
        return self._compiled[dialect]


def _target(statement: Executable) -> str:
    table = getattr(statement, "table", None)
    return str(table) if table is not None else "the statement"


def unnested(table: Table, names: list[str], prefix: str, *, ordinality: str | None = None) -> TableValuedAlias:
    """PostgreSQL: rows of `table`'s columns `names` sent as one array per column (the binds
    `<prefix><name>`), to select from: a batch of any size is then one statement, prepared once,
    where a multi-row VALUES would be a new statement for each size. `ordinality` names a column
    numbering the rows in the arrays' order."""
    # One dimension: a JSON value that is a list stays one element, not a nested array.
    arrays = [bindparam(prefix + name, type_=(_TextArray if isinstance(table.c[name].type, String)
                                              else postgresql.ARRAY)(table.c[name].type, dimensions=1))
              for name in names]
    rows = func.unnest(*arrays)
    return (rows.table_valued(*names, with_ordinality=ordinality) if ordinality
            else rows.table_valued(*names)).render_derived()


def _bound(row: dict[str, Any], slot: tuple[str, Any, Any]) -> Any:
    name, process, default = slot
    value = row.get(name, default)
    return process(value) if process is not None else value


def insert_for(engine: AsyncEngine):  # noqa: ANN201
    """The dialect's INSERT construct, which knows ON CONFLICT (SQLite and PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
