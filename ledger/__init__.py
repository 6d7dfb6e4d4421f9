"""The truth: journal, accounts, holds, assets, members and the checks that keep them sound.

``ledger.core`` is pure (standard library only); everything else here persists through
SQLAlchemy and writes through one path, ``ledger.journal.WriteTx.append_many``.
``ledger.rights`` reads output and usage rights by the clock (owned, less leased out,
plus leased in), which outputs, votes and buy-outs go by.
"""

from ledger.core.errors import (
    Conflict,
    Forbidden,
    IntegrityFailure,
    InvalidInput,
    LedgerError,
    NotFound,
    Refused,
    Unauthenticated,
    Unavailable,
)
from ledger.journal.write import Appended, Ledger, WriteTx, system_clock

__all__ = [
    "Appended",
    "Conflict",
    "Forbidden",
    "IntegrityFailure",
    "InvalidInput",
    "Ledger",
    "LedgerError",
    "NotFound",
    "Refused",
    "Unauthenticated",
    "Unavailable",
    "WriteTx",
    "system_clock",
]
