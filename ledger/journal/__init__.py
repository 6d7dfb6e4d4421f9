"""The journal: the one write path (``write``: ``Ledger``, ``WriteTx``), its loading and
storing (``load``, ``store``), group commit (``group_commit``) and its twin for reads
of holdings now (``group_read``), entries read back
(``entries``), reads as of any seq or time (``reads``) and ``verify``.

Only the write path is exported here; ``reads`` and ``verify`` read through the
registry and money services, which themselves write through this package, so they are
imported by their own names."""

from ledger.journal.write import (
    Appended,
    Clock,
    Ledger,
    WriteTx,
    system_clock,
)

__all__ = [
    "Appended",
    "Clock",
    "Ledger",
    "WriteTx",
    "system_clock",
]
