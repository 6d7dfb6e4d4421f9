"""A lease on a single-writer job, kept in the database so that it holds across processes
and workers: whoever holds ``name`` until ``expires_at`` is the only one that runs the job.

A holder renews its lease on every round, well before it expires; a holder that dies
stops renewing and another takes over once the lease has run out. The lease is a
courtesy, not the guarantee: what the chain mirror writes is exactly-once by its keys, so
even two writers overlapping for a moment would record nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from ledger.db.engine import read_connection, write_connection
from ledger.db.schema import ServiceLease, table
from ledger.journal.write import Ledger

__all__ = ["lease_holder", "release_lease", "take_lease"]

_leases = table(ServiceLease)


def take_lease(ledger: Ledger, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until now + ``ttl``; False if
    another holder has it and it has not run out."""
    now: datetime = ledger.clock()
    until = now + ttl
    try:
        with write_connection(ledger.engine) as conn:
            taken = conn.execute(
                update(_leases)
                .where(
                    _leases.c.name == name,
                    (_leases.c.holder == holder) | (_leases.c.expires_at < now),
                )
                .values(holder=holder, expires_at=until)
            ).rowcount
            if taken:
                return True
            if conn.execute(select(_leases.c.name).where(_leases.c.name == name)).first():
                return False
            conn.execute(insert(_leases).values(name=name, holder=holder, expires_at=until))
            return True
    except IntegrityError:  # another holder inserted it first
        return False


def release_lease(ledger: Ledger, name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop), if ``holder`` has it."""
    with write_connection(ledger.engine) as conn:
        conn.execute(
            update(_leases)
            .where(_leases.c.name == name, _leases.c.holder == holder)
            .values(expires_at=datetime.fromtimestamp(0).astimezone())
        )


def lease_holder(ledger: Ledger, name: str) -> tuple[str, datetime] | None:
    """Who holds ``name`` and until when (possibly run out), or None."""
    with read_connection(ledger.engine, snapshot=False) as conn:
        row = conn.execute(
            select(_leases.c.holder, _leases.c.expires_at).where(_leases.c.name == name)
        ).first()
    return None if row is None else (row.holder, row.expires_at)
