"""Answers kept under an idempotency key, for requests that write no journal entry.

A request that writes journal entries needs nothing here: its entries are keyed, and a
repeat yields the original entry. A request that writes none (a sign-in, a new API key, a
photo) keeps its answer in ``http_idempotency`` under (scope, key), so a retry gets the
same answer and the same key with another request is refused.

The key is claimed before the action runs (a row whose status is still ``_PENDING``) and
the answer written into that row when it is done. So the key is checked before anything
is stored, and two concurrent requests with one key run the action once: the second
waits for the first's answer (at most ``CLAIM_WAIT_S``, then ``idempotency_in_progress``).
A claim left by a request that died is taken over after ``CLAIM_ABANDONED_S``. A failed
action releases its claim: errors are not remembered, and the key may be retried.

An answer that carries a secret (a bearer token, an API key) is sealed with AES-256-GCM
under a key derived (HKDF-SHA256) from the requester's own secret, which is never
stored: a copy of the database alone cannot read it. Each sealing has a random 96-bit
nonce, and the row's (scope, key, request hash, status) are its associated data, so a
sealed answer that was altered, or moved to another row, is refused, never returned::

    Conflict           idempotency_conflict         the key was used for another request
                       idempotency_in_progress      its first request is still running
                       idempotency_answer_unreadable sealed for another credential, or by
                                                    the HMAC-XOR scheme used before AES-GCM
    IntegrityFailure   idempotency_answer_tampered  the sealed answer fails authentication
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ledger.core.errors import Conflict, IntegrityFailure, LedgerError
from ledger.db.engine import read_connection, write_connection
from ledger.db.schema import HttpIdempotency, table
from ledger.journal.write import Ledger

__all__ = ["CLAIM_ABANDONED_S", "CLAIM_WAIT_S", "Answer", "answer_once"]

CLAIM_WAIT_S = 10.0  # how long a request waits for a twin holding its key to answer
CLAIM_ABANDONED_S = 60.0  # a claim this old belongs to a request that died
_PAUSE_MAX_S = 0.1
_PENDING = 0  # the status of a claimed key whose answer is not written yet

# A sealed body is ``aes256gcm:<key id, hex>:<nonce, hex>:<ciphertext and tag, base64>``.
# Bodies sealed before (the HMAC-XOR keystream: bare hex, no integrity) lack the marker.
_SEALED_MARK = "aes256gcm"
_NONCE_BYTES = 12  # 96 bits, GCM's own size; random per sealing
_KEY_ID_BYTES = 8

_records = table(HttpIdempotency)
log = logging.getLogger("dpn.ledger")


@dataclass(frozen=True)
class Answer:
    """What a request was answered: a status and a JSON object."""

    status: int
    body: dict[str, Any]


def answer_once(
    ledger: Ledger,
    *,
    scope: str,
    key: str,
    request: Any,
    run: Callable[[], Answer],
    secret: bytes | None = None,
) -> Answer:
    """Run ``run`` at most once per (scope, key); a repeat with the same ``request`` (a
    JSON value) returns the stored answer, one with another request raises ``Conflict``.

    The key is claimed before ``run`` starts, so a request reusing it for another one is
    refused before anything is done, and a concurrent twin waits for the first answer
    instead of running the action a second time. A failed ``run`` releases the claim.
    With ``secret``, the answer is stored sealed under a key derived from it; a repeat
    must bring the same secret to read it."""
    request_hash = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    row = _Row(scope, key, request_hash)
    stored = _claim_or_answer(ledger, row)
    if stored is not None:
        status, text, sealed = stored
        if sealed:
            text = _unseal(text, secret, row, status)
        return Answer(status, json.loads(text))
    try:
        answer = run()
    except BaseException:
        _release(ledger, row)
        raise
    text = json.dumps(answer.body, default=str)
    with write_connection(ledger.engine) as conn:
        conn.execute(
            update(_records)
            .where(row.where(), _records.c.status == _PENDING)
            .values(
                status=answer.status,
                body=_seal(text, secret, row, answer.status) if secret else text,
                sealed=secret is not None,
            )
        )
    return Answer(answer.status, json.loads(text))


@dataclass(frozen=True)
class _Row:
    scope: str
    key: str
    request_hash: str

    def where(self) -> ColumnElement[bool]:
        return and_(_records.c.scope == self.scope, _records.c.key == self.key)

    def bound_to(self, status: int) -> bytes:
        """The associated data of a sealed answer: the row it belongs to."""
        return json.dumps([self.scope, self.key, self.request_hash, status]).encode()


def _claim_or_answer(ledger: Ledger, row: _Row) -> tuple[int, str, bool] | None:
    """Claim the row's (scope, key) for this request and return None; or the stored
    answer (status, body, sealed) of an earlier identical request, waiting while that
    one is still running. Refuses a key already claimed for another request."""
    deadline = time.monotonic() + CLAIM_WAIT_S
    pause_s = 0.005
    while True:
        now = ledger.clock()
        try:
            with write_connection(ledger.engine) as conn:
                conn.execute(
                    _records.insert().values(
                        scope=row.scope,
                        key=row.key,
                        request_hash=row.request_hash,
                        status=_PENDING,
                        body="",
                        sealed=False,
                        created_at=now,
                    )
                )
            return None
        except IntegrityError:
            pass  # claimed before: by an earlier request, or a twin running now
        with read_connection(ledger.engine, snapshot=False) as conn:
            found = conn.execute(select(_records).where(row.where())).first()
        if found is None:
            continue  # the claim was released meanwhile (its action failed): claim anew
        if found.request_hash != row.request_hash:
            raise Conflict(
                "idempotency_conflict",
                "this Idempotency-Key was already used for a different request",
            )
        if found.status != _PENDING:
            return found.status, found.body, found.sealed
        if now - found.created_at > timedelta(seconds=CLAIM_ABANDONED_S):
            # Its request died with the claim held (a crashed worker): take it over.
            with write_connection(ledger.engine) as conn:
                taken = conn.execute(
                    update(_records)
                    .where(
                        row.where(),
                        _records.c.status == _PENDING,
                        _records.c.created_at == found.created_at,
                    )
                    .values(created_at=now)
                )
            if taken.rowcount == 1:
                return None
            continue
        if time.monotonic() >= deadline:
            raise Conflict(
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still running; retry later",
            )
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, _PAUSE_MAX_S)


def _release(ledger: Ledger, row: _Row) -> None:
    """Give up an unfinished claim, so the key may be used again."""
    try:
        with write_connection(ledger.engine) as conn:
            conn.execute(delete(_records).where(row.where(), _records.c.status == _PENDING))
    except (
        LedgerError,
        SQLAlchemyError,
    ):  # the database is gone: the claim is taken over once abandoned
        log.warning("could not release Idempotency-Key claim %s", row.key, exc_info=True)


def _derive(secret: bytes, purpose: bytes, length: int) -> bytes:
    return HKDF(SHA256(), length, salt=None, info=b"dpn idempotent answer " + purpose).derive(
        secret
    )


def _seal(text: str, secret: bytes, row: _Row, status: int) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_derive(secret, b"key", 32)).encrypt(nonce, text.encode(), row.bound_to(status))
    key_id = _derive(secret, b"key id", _KEY_ID_BYTES)
    return f"{_SEALED_MARK}:{key_id.hex()}:{nonce.hex()}:{base64.b64encode(sealed).decode()}"


def _unseal(stored: str, secret: bytes | None, row: _Row, status: int) -> str:
    """The answer sealed in ``stored``; refuses one that cannot be shown untouched."""
    mark, _, rest = stored.partition(":")
    if mark != _SEALED_MARK:
        # Sealed by the HMAC-XOR keystream used before, which carries no integrity, so
        # its text cannot be told apart from an altered one. It only ever serves a retry
        # of the very same request: refuse it and let a new key do the request again.
        raise Conflict(
            "idempotency_answer_unreadable",
            "the answer stored under this Idempotency-Key was sealed by an older scheme"
            " and cannot be returned; send the request again under a new key",
        )
    key_id, nonce, sealed = _parts(rest)
    if secret is None or key_id != _derive(secret, b"key id", _KEY_ID_BYTES):
        # The same request with another credential of the same caller (e.g. a new
        # bearer token): the answer is not the caller's mistake nor an alteration.
        raise Conflict(
            "idempotency_answer_unreadable",
            "the answer stored under this Idempotency-Key was sealed for another"
            " credential; retry with the one that made the request, or use a new key",
        )
    try:
        return (
            AESGCM(_derive(secret, b"key", 32))
            .decrypt(nonce, sealed, row.bound_to(status))
            .decode()
        )
    except InvalidTag:
        raise _tampered() from None


def _parts(rest: str) -> tuple[bytes, bytes, bytes]:
    try:
        key_id, nonce, sealed = rest.split(":")
        parts = bytes.fromhex(key_id), bytes.fromhex(nonce), base64.b64decode(sealed, validate=True)
    except ValueError:
        raise _tampered() from None
    if len(parts[1]) != _NONCE_BYTES:
        raise _tampered()
    return parts


def _tampered() -> IntegrityFailure:
    # A 500 (IntegrityFailure), not a 409: the fault is in what the server stored, not in
    # the request, and the operator must hear of it (5xx are logged as errors). The
    # altered answer is never returned.
    return IntegrityFailure(
        "idempotency_answer_tampered",
        "the answer stored under this Idempotency-Key was altered; it is not returned",
    )
