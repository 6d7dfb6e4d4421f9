"""The pure core of the ledger: standard library only, no I/O, no clock.

Entries (``entry``) with their canonical encoding (``canonical``), hash chain
(``chain``), time (``timestamps``) and checks (``checks``); the names of accounts
(``accounts``) and of entry kinds (``kinds``); the balance rules (``state``), asset
identifiers and limits. The persistence layer (``ledger.db``) and the
services around it build on this, never the reverse.
"""

from ledger.core.accounts import AccountKey
from ledger.core.asset_id import check_character, validate_asset_id, with_check_character
from ledger.core.canonical import JsonValue, canonical_bytes
from ledger.core.chain import GENESIS_HASH, chain_hash, entry_id_for
from ledger.core.checks import check_amount, check_draft, check_text
from ledger.core.display_text import check_display_text
from ledger.core.entry import Entry, EntryDraft, HoldChange, HoldOp, Posting, seal
from ledger.core.kinds import EntryKind
from ledger.core.state import AccountState, HoldState, LedgerState
from ledger.core.timestamps import format_time, parse_time

__all__ = [
    "GENESIS_HASH",
    "AccountKey",
    "AccountState",
    "Entry",
    "EntryDraft",
    "EntryKind",
    "HoldChange",
    "HoldOp",
    "HoldState",
    "JsonValue",
    "LedgerState",
    "Posting",
    "canonical_bytes",
    "chain_hash",
    "check_amount",
    "check_character",
    "check_display_text",
    "check_draft",
    "check_text",
    "entry_id_for",
    "format_time",
    "parse_time",
    "seal",
    "validate_asset_id",
    "with_check_character",
]
