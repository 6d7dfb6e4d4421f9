"""Named maxima for everything the ledger accepts. Enforced at the boundary of the core."""

from __future__ import annotations

__all__ = [
    "ACTOR_LEN_MAX",
    "AMOUNT_MAX",
    "DOCUMENTS_PER_ASSET_MAX",
    "DOCUMENTS_PER_REQUEST_MAX",
    "HOLD_CHANGES_PER_ENTRY_MAX",
    "HOLD_ID_LEN_MAX",
    "IDEMPOTENCY_KEY_LEN_MAX",
    "KIND_LEN_MAX",
    "OPERATOR_SHARE_BP_MAX",
    "PAYLOAD_BYTES_MAX",
    "POSTINGS_PER_ENTRY_MAX",
    "PROJECT_DEADLINE_AHEAD_MAX_DAYS",
    "PROJECT_DESCRIPTION_LEN_MAX",
    "PROJECT_DOCUMENTS_MAX",
    "PROJECT_PAGE_MAX",
    "TEXT_LEN_MAX",
    "TOTAL_UNITS_DEFAULT",
    "TOTAL_UNITS_MAX",
]

# One posting moves at most 10**36 minor units: a billion billion ETH in wei. Balances
# are stored as NUMERIC(78, 0) (PostgreSQL) or decimal text (SQLite), so sums of many
# maximal postings still fit losslessly.
AMOUNT_MAX = 10**36
TOTAL_UNITS_DEFAULT = 1_000_000
TOTAL_UNITS_MAX = 10**15

POSTINGS_PER_ENTRY_MAX = 1024  # an issuance posts to every contributor at once
HOLD_CHANGES_PER_ENTRY_MAX = 256
PAYLOAD_BYTES_MAX = 16 * 1024

KIND_LEN_MAX = 64
ACTOR_LEN_MAX = 128
IDEMPOTENCY_KEY_LEN_MAX = 128
HOLD_ID_LEN_MAX = 64
TEXT_LEN_MAX = 256

DOCUMENTS_PER_REQUEST_MAX = 64  # documents named when an asset is registered
DOCUMENTS_PER_ASSET_MAX = 256
PROJECT_DESCRIPTION_LEN_MAX = 1000
# Few enough that a project's whole terms fit in one entry's payload (PAYLOAD_BYTES_MAX).
PROJECT_DOCUMENTS_MAX = 16
PROJECT_DEADLINE_AHEAD_MAX_DAYS = 3 * 366  # a funding round, not a standing offer
PROJECT_PAGE_MAX = 100
OPERATOR_SHARE_BP_MAX = 10_000  # basis points: the whole output
