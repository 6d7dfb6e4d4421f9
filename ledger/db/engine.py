"""Engines for the embedded default (SQLite) and production (PostgreSQL) databases.

``DPN_DATABASE_URL`` selects the database; without it, a SQLite file under ``./var/``.
SQLite runs in WAL mode with foreign keys on and ``synchronous=FULL`` (an acknowledged
write survives a power cut). Write transactions start with ``BEGIN IMMEDIATE`` so two
writers never both read and then fight over the upgrade to a write lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from ledger.core.errors import InvalidInput, Unavailable

__all__ = [
    "DEFAULT_DATABASE_URL",
    "database_url",
    "db_errors_translated",
    "make_engine",
    "pipelined",
    "read_connection",
    "write_connection",
]

DEFAULT_DATABASE_URL = "sqlite:///var/dpn.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536  # page cache per connection (SQLite's default is 2,000 KiB)
SQLITE_WAL_CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL (default 1,000 pages)
SQLITE_WAL_SIZE_LIMIT_BYTES = 64 * 2**20
PG_POOL_SIZE = 16
_WRITE = "dpn_write"
_PREPARE_ONLY_WHEN_ASKED = 2**31  # psycopg prepares nothing, even when asked, under None


def database_url() -> str:
    """The configured database URL: ``DPN_DATABASE_URL`` or the SQLite default."""
    return os.environ.get("DPN_DATABASE_URL") or DEFAULT_DATABASE_URL


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: ``database_url()``), set up for the ledger."""
    url = url or database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Server-side prepared statements only where a call asks for one (``bulk_insert``'s
        # INSERTs over arrays): a threshold never reached prepares nothing by itself. A
        # generic plan made while the journal was small keeps scanning it whole once it
        # is large (seen with ``= ANY(array)``); an INSERT from arrays has no such plan.
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("prepare_threshold", _PREPARE_ONLY_WHEN_ASKED)
        # Enough pooled connections for a worker's threads: a connection beyond the pool
        # is closed when returned, and opening one costs the server a new backend.
        kwargs.setdefault("pool_size", PG_POOL_SIZE)
        kwargs.setdefault("max_overflow", PG_POOL_SIZE)
        return create_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver: we say BEGIN ourselves, below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # The journal's indexes on random keys (idempotency key, entry id, an account's
        # postings) are touched all over at every batch: with the default 2 MB cache the
        # B-tree pages are read again and again once the file outgrows it.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        # Checkpoint less often than every 1,000 pages: a page written by several
        # batches is copied to the database once, and its fsync is paid less often.
        # The WAL file is cut back to a bounded size after a checkpoint.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextmanager
def db_errors_translated() -> Iterator[None]:
    """Turn the driver's connection and lock errors into ``Unavailable``, and a value
    the database refuses into ``InvalidInput``: the one place where database exceptions
    become ledger errors. Every connection of ``read_connection`` and ``write_connection``
    is inside it (and no module outside ``ledger.db`` takes one from an engine itself)."""
    try:
        yield
    except DataError as exc:
        # A value no check caught (e.g. a NUL in a text, which PostgreSQL cannot hold);
        # its transaction was rolled back.
        raise InvalidInput("data_invalid", "the database refused a value") from exc
    except OperationalError as exc:
        text = str(exc.orig).lower()
        code = "database_busy" if "locked" in text or "busy" in text else "database_unavailable"
        raise Unavailable(code, f"the database is not available: {exc.orig}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise Unavailable("database_unavailable", "the database connection was lost") from exc
        raise


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a write transaction; committed on success, rolled back on error."""
    with db_errors_translated(), _writers_take_turns(engine), engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def _writers_take_turns(engine: Engine) -> Iterator[None]:
    """On a SQLite file, writers of every process queue on an OS file lock before they
    BEGIN IMMEDIATE. SQLite's own wait for a busy database sleeps and polls, up to 100 ms
    a time, so with several server workers a writer could wait far longer than the
    writer before it took; the kernel hands the file lock over at once."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    with open(f"{path}-writer.lock", "a+b") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)


@contextmanager
def read_connection(engine: Engine, *, snapshot: bool = True) -> Iterator[Connection]:
    """A connection inside a read transaction: one consistent snapshot for several reads.

    ``snapshot=False`` is for reads that need none: a single statement, or statements
    about settled history only (entries up to a seq never change). On PostgreSQL each
    statement then runs on its own, sparing the round trips of BEGIN and COMMIT."""
    with db_errors_translated(), engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ" if snapshot else "AUTOCOMMIT")
        with conn.begin():
            yield conn


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, send the block's statements in one psycopg pipeline: they go out
    without waiting for each other's answers, and the block waits once, at its end (a
    read inside it waits for what came before). Where a statement fails, the error is
    raised at the end and the transaction is spoiled: the caller rolls it back. Nothing
    on SQLite, whose statements make no round trips. Inside it ``bulk_insert`` uses no
    COPY, which a pipeline cannot carry."""
    if conn.dialect.name != "postgresql":
        yield
        return
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"PostgreSQL through psycopg 3 expected, not {type(driver).__name__}")
    try:
        with driver.pipeline():
            yield
    except psycopg.Error as error:  # raised by the driver at the sync, not by SQLAlchemy
        lost = driver.broken or driver.closed
        if lost:
            conn.invalidate(error)
        raise DBAPIError.instance(
            None, None, error, psycopg.Error, connection_invalidated=lost, dialect=conn.dialect
        ) from error
