"""The pure core of the ledger: standard library only, no I/O, no clock.

Entries and their hash chain, the balance rules, asset identifiers and limits. The
persistence layer (``ledger.db``) and the services around it build on this, never the
reverse.
"""

from ledger.core.asset_id import check_character, validate_asset_id, with_check_character
from ledger.core.canonical import JsonValue, canonical_bytes
from ledger.core.display_text import check_display_text
from ledger.core.entry import (
    GENESIS_HASH,
    AccountKey,
    Entry,
    EntryDraft,
    HoldChange,
    HoldOp,
    Posting,
    chain_hash,
    check_amount,
    check_draft,
    check_text,
    entry_id_for,
    format_time,
    parse_time,
    seal,
)
from ledger.core.state import AccountState, HoldState, LedgerState

__all__ = [
    "GENESIS_HASH",
    "AccountKey",
    "AccountState",
    "Entry",
    "EntryDraft",
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
