"""The ledger's errors, each with a stable ``code``.

Imports only the standard library, so the pure core can raise them::

    LedgerError                      code: str, message: str, detail: dict
    ├── InvalidInput                 the request itself is wrong (HTTP 422)
    │     asset_id_length, asset_id_alphabet, asset_id_check_digit,
    │     address_malformed, address_checksum, amount_not_positive,
    │     amount_over_limit, postings_unbalanced, field_too_long, ...
    ├── NotFound                     it names something that does not exist (HTTP 404)
    │     unknown_currency, unknown_asset, unknown_member, unknown_hold, unknown_entry
    ├── Conflict                     it collides with what is already recorded (HTTP 409)
    │     idempotency_conflict, idempotency_in_progress, idempotency_answer_unreadable,
    │     member_exists, asset_exists, already_reversed
    ├── Refused                      well-formed, but a ledger rule forbids it (HTTP 422)
    │     insufficient_units, insufficient_funds, hold_exceeded, not_reversible
    ├── Unauthenticated              no valid credential, or a sign-in that fails (HTTP 401)
    │     siwe_wrong_signer, siwe_nonce_used, siwe_expired, token_invalid, ...
    ├── Forbidden                    signed in, but not allowed to do this (HTTP 403)
    │     not_owner, not_operator, not_admin, ...
    ├── Unavailable                  the database cannot be reached or is busy (HTTP 503)
    │     database_unavailable, database_busy
    └── IntegrityFailure             stored history breaks an invariant; never swallowed
          hash_mismatch, chain_broken, balance_mismatch, idempotency_answer_tampered, ...
"""

from __future__ import annotations

from typing import Any, Self

__all__ = [
    "Conflict",
    "Forbidden",
    "IntegrityFailure",
    "InvalidInput",
    "LedgerError",
    "NotFound",
    "Refused",
    "Unauthenticated",
    "Unavailable",
]


class LedgerError(Exception):
    """Base of every ledger error: a stable machine code and a one-line message."""

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as made: class, code, message and detail (``Exception`` alone would
        keep only the message, and fail to unpickle). The engine process sends its
        refusals to the workers this way."""
        return type(self), (self.code, self.message), {"detail": self.detail}

    def as_answer(self) -> Self:
        """This error without its traceback, to hand to whoever asked (through a future)
        when a batch refused one request and went on with the others.

        The traceback's frames keep their locals: a batch's drafts, session and
        futures. Once the asker raises the error from its future, the asker's frame
        (holding that future) joins them in a reference cycle, and the whole batch
        stayed alive until a full collection of the heap: in ``dpn bench engine`` such
        collections took a sixth of the time. A refusal is an answer; the frames that
        found it are of no use to whoever asked."""
        return self.with_traceback(None)


class InvalidInput(LedgerError):
    """The request is malformed or out of bounds; nothing was written."""


class NotFound(LedgerError):
    """The request names a currency, asset, member, hold or entry that does not exist."""


class Conflict(LedgerError):
    """The request collides with recorded state (a reused key, a duplicate registration)."""


class Refused(LedgerError):
    """The request is well formed but a ledger rule forbids it (e.g. not enough available)."""


class Unauthenticated(LedgerError):
    """The caller has no valid credential, or a sign-in attempt failed."""


class Forbidden(LedgerError):
    """The caller is known but may not do this (not the owner, operator or an admin)."""


class Unavailable(LedgerError):
    """The database could not be reached or stayed busy; the request may be retried."""


class IntegrityFailure(LedgerError):
    """Stored history breaks an invariant. Raised always; never caught to carry on."""
