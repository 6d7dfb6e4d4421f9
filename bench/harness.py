"""What the benchmarks stand on: a fresh migrated database to run against, and a stopwatch.

``fresh_database`` gives each run its own database (a new SQLite file, or a new
PostgreSQL schema dropped afterwards) so runs never see each other's rows;
``stopwatch`` times a block, optionally with the garbage collector off as ``timeit``
does.
"""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade

__all__ = ["POSTGRES_URL_ENV", "Stopwatch", "fresh_database", "pick_postgres_url", "stopwatch"]

POSTGRES_URL_ENV = "DPN_TEST_POSTGRES_URL"
"""Where a benchmark finds a PostgreSQL server when ``--postgres`` is not given."""


def pick_postgres_url(given: str | None) -> str | None:
    """The PostgreSQL URL to benchmark against: ``given``, else ``$DPN_TEST_POSTGRES_URL``,
    else None (PostgreSQL is skipped)."""
    return given or os.environ.get(POSTGRES_URL_ENV)


@contextmanager
def fresh_database(
    kind: str, postgres_url: str | None, workdir: Path, name: str = "bench"
) -> Iterator[str]:
    """A freshly migrated database of ``kind`` (``"sqlite"`` or ``"postgresql"``); yields
    its URL, which any process can open (a PostgreSQL schema is named in the URL's
    ``options``). The SQLite file goes in ``workdir``; the PostgreSQL schema, made at
    ``postgres_url``, is dropped on the way out."""
    tag = uuid.uuid4().hex
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'{name}-{tag[:8]}.sqlite3'}"
        _migrate(url)
        yield url
        return
    if postgres_url is None:
        raise ValueError("no PostgreSQL URL")
    schema = f"{name.replace('-', '_')}_{tag[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = (
            make_url(postgres_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@dataclass
class Stopwatch:
    """The seconds a ``stopwatch`` block took; set when the block ends."""

    seconds: float = 0.0


@contextmanager
def stopwatch(gc_off: bool = False) -> Iterator[Stopwatch]:
    """Time the block (``time.perf_counter``), after a full collection so that every
    timed block starts from a clean heap. With ``gc_off``, ``timeit``'s convention: the
    garbage collector is off inside the block, and back on after it however it ends."""
    watch = Stopwatch()
    gc.collect()
    if gc_off:
        gc.disable()
    start = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start
        if gc_off:
            gc.enable()
