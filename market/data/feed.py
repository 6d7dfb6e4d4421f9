"""What a live stream reads from the database: which books changed, and what changed.

Every command a book applies is a row of the order log (``market_commands``) at the seq
of the journal entry that recorded it, stored in the same transaction as its trades and
order rows; and the journal's lock makes seqs commit in order. So "the books whose
commands have a seq above the last one seen" is every book any worker changed since,
read with one range scan of the log's primary key; and what changed is read from the
trades (ids above the last one sent) and the open orders (the depth), at one journal
seq, in one snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from sqlalchemy import Connection, func, select

from ledger.db.schema import MarketCommand, table
from ledger.journal.reads import digest
from market.book import Depth
from market.data.books import DEPTH_LEVELS_DEFAULT, depth_of
from market.data.tape import TapeTrade, latest_trades, trades_after
from market.engine import BookKey

__all__ = [
    "COMMANDS_READ_MAX",
    "TRADES_READ_MAX",
    "BookUpdate",
    "Changes",
    "book_snapshot",
    "book_updates",
    "changed_books",
    "command_head",
]

COMMANDS_READ_MAX: Final = 10_000
"""Rows of the order log one read of changes takes (more are read at once after)."""
TRADES_READ_MAX: Final = 500
"""Trades of one book one update carries (more are read at once after)."""

_commands = table(MarketCommand)


class Changes(NamedTuple):
    """The books the order log names after a seq, up to ``seq``; ``more`` when the read
    stopped at its limit."""

    seq: int
    books: frozenset[BookKey]
    more: bool


class BookUpdate(NamedTuple):
    """What a book shows at journal seq ``seq``: its new trades (oldest first) and its
    depth; ``depth`` is None when the trades filled the read (more follow: the depth
    waits for them, so that a trade never follows a depth that already shows it)."""

    book: BookKey
    seq: int
    trades: list[TapeTrade]
    depth: Depth | None


def command_head(conn: Connection) -> int:
    """The seq of the order log's last command (0 when it is empty)."""
    return int(conn.execute(select(func.coalesce(func.max(_commands.c.seq), 0))).scalar_one())


def changed_books(conn: Connection, after_seq: int, limit: int = COMMANDS_READ_MAX) -> Changes:
    """The books with a command after ``after_seq``; ``seq`` is where the next read
    starts. A seq's commands are never split between two reads."""
    c = _commands.c
    rows = list(
        conn.execute(
            select(c.seq, c.asset_id, c.currency, c.term)
            .where(c.seq > after_seq)
            .order_by(c.seq)
            .limit(limit)
        )
    )
    if not rows:
        return Changes(after_seq, frozenset(), False)
    last = rows[-1].seq
    books = {BookKey(r.asset_id, r.currency, r.term) for r in rows}
    more = len(rows) == limit
    if more:  # the last seq may have more books than the limit let in
        tail = conn.execute(select(c.asset_id, c.currency, c.term).where(c.seq == last))
        books |= {BookKey(r.asset_id, r.currency, r.term) for r in tail}
    return Changes(last, frozenset(books), more)


def book_updates(
    conn: Connection,
    after_trade_ids: Mapping[BookKey, int],
    levels: int = DEPTH_LEVELS_DEFAULT,
    trades_max: int = TRADES_READ_MAX,
) -> list[BookUpdate]:
    """For each book, its trades after the id given and its depth, all at one journal
    seq. Give it a connection in a snapshot."""
    seq = digest(conn).seq
    updates = []
    for key, after in after_trade_ids.items():
        trades = trades_after(conn, key, after, trades_max + 1)
        full = len(trades) > trades_max
        depth = None if full else depth_of(conn, key, levels)
        updates.append(BookUpdate(key, seq, trades[:trades_max], depth))
    return updates


def book_snapshot(
    conn: Connection,
    key: BookKey,
    after_trade_id: int | None,
    levels: int = DEPTH_LEVELS_DEFAULT,
    trades_max: int = TRADES_READ_MAX,
) -> BookUpdate:
    """What a new subscriber starts from: the depth now and, when it names the last
    event it saw (``after_trade_id``), the trades since, the latest ``trades_max`` of
    them at most. Give it a connection in a snapshot."""
    seq = digest(conn).seq
    trades = [] if after_trade_id is None else latest_trades(conn, key, after_trade_id, trades_max)
    return BookUpdate(key, seq, trades, depth_of(conn, key, levels))
