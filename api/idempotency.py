"""``Idempotency-Key`` on every POST: the same key and body give the same response; the
same key with another body is refused with 409 ``idempotency_conflict``.

Two mechanisms give that one contract. A POST that writes journal entries passes the key
(scoped to the caller) to the ledger, whose entries are themselves keyed: a repeat yields
the original entry and so the original response. A POST that writes no entry (sign-in,
API keys, photos) keeps its answer in ``http_idempotency``; an answer that carries a
secret (a token, an API key) is stored sealed with a keystream derived from the
requester's own secret (the signature, the caller's credential), which is never stored:
a copy of the database alone cannot read it.

Such a POST claims its key before it acts (a row whose status is still ``_PENDING``) and
writes its answer into that row when done. The key is therefore checked before anything
is stored, and two concurrent requests with one key run the action once: the second
waits for the first's answer (at most ``CLAIM_WAIT_S``, then 409
``idempotency_in_progress``). A claim left by a request that died is taken over after
``CLAIM_ABANDONED_S``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ledger.core.errors import Conflict
from ledger.core.limits import IDEMPOTENCY_KEY_LEN_MAX
from ledger.db.schema import HttpIdempotency, table
from ledger.journal.write import Ledger

__all__ = ["CLAIM_ABANDONED_S", "CLAIM_WAIT_S", "ledger_key", "once"]

CLAIM_WAIT_S = 10.0  # how long a request waits for a twin holding its key to answer
CLAIM_ABANDONED_S = 60.0  # a claim this old belongs to a request that died
_PAUSE_MAX_S = 0.1
_PENDING = 0  # the status of a claimed key whose answer is not written yet

_records = table(HttpIdempotency)
log = logging.getLogger("dpn.api")


def ledger_key(scope: str, key: str) -> str:
    """The journal idempotency key for a caller's ``Idempotency-Key`` (hashed when the
    scoped key would pass the journal's limit, so every key the API accepts fits)."""
    scoped = f"http:{scope}:{key}"
    if len(scoped) <= IDEMPOTENCY_KEY_LEN_MAX:
        return scoped
    return f"http:{scope}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _keystream(secret: bytes, length: int) -> bytes:
    blocks = []
    for counter in range(length // 32 + 1):
        blocks.append(hmac.new(secret, counter.to_bytes(8, "big"), hashlib.sha256).digest())
    return b"".join(blocks)[:length]


def _seal(body: bytes, secret: bytes) -> str:
    return bytes(a ^ b for a, b in zip(body, _keystream(secret, len(body)), strict=True)).hex()


def _unseal(text: str, secret: bytes) -> bytes:
    data = bytes.fromhex(text)
    return bytes(a ^ b for a, b in zip(data, _keystream(secret, len(data)), strict=True))


def once(
    ledger: Ledger,
    *,
    scope: str,
    key: str,
    request: Any,
    run: Callable[[], tuple[int, dict[str, Any]]],
    secret: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run ``run`` at most once per (scope, key); a repeat with the same ``request``
    returns the stored (status, body), with another request raises ``Conflict``.

    The key is claimed before ``run`` starts, so a request reusing it for another body is
    refused before anything is done, and a concurrent twin waits for the first answer
    instead of running the action a second time. A failed ``run`` releases the claim
    (errors are not remembered: the same key may be retried)."""
    request_hash = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    sealing_key = hashlib.sha256(b"dpn-idempotency" + secret).digest() if secret else None
    stored = _claim_or_answer(ledger, scope, key, request_hash)
    if stored is not None:
        status, text, sealed = stored
        if sealed:
            if sealing_key is None:  # pragma: no cover - same request implies same secret use
                raise Conflict("idempotency_conflict", "the stored answer cannot be opened")
            return status, json.loads(_unseal(text, sealing_key))
        return status, json.loads(text)
    try:
        status, body = run()
    except BaseException:
        _release(ledger, scope, key)
        raise
    text = json.dumps(body, default=str)
    with ledger.engine.begin() as conn:
        conn.execute(
            update(_records)
            .where(_mine(scope, key), _records.c.status == _PENDING)
            .values(
                status=status,
                body=_seal(text.encode(), sealing_key) if sealing_key else text,
                sealed=sealing_key is not None,
            )
        )
    return status, json.loads(text)


def _mine(scope: str, key: str) -> ColumnElement[bool]:
    return and_(_records.c.scope == scope, _records.c.key == key)


def _claim_or_answer(
    ledger: Ledger, scope: str, key: str, request_hash: str
) -> tuple[int, str, bool] | None:
    """Claim (scope, key) for this request and return None; or the stored answer
    (status, body, sealed) of an earlier identical request, waiting while that one is
    still running. Refuses a key already claimed for another request."""
    deadline = time.monotonic() + CLAIM_WAIT_S
    pause_s = 0.005
    while True:
        now = ledger.clock()
        try:
            with ledger.engine.begin() as conn:
                conn.execute(
                    _records.insert().values(
                        scope=scope,
                        key=key,
                        request_hash=request_hash,
                        status=_PENDING,
                        body="",
                        sealed=False,
                        created_at=now,
                    )
                )
            return None
        except IntegrityError:
            pass  # claimed before: by an earlier request, or a twin running now
        with ledger.engine.connect() as conn:
            row = conn.execute(select(_records).where(_mine(scope, key))).first()
        if row is None:
            continue  # the claim was released meanwhile (its action failed): claim anew
        if row.request_hash != request_hash:
            raise Conflict(
                "idempotency_conflict",
                "this Idempotency-Key was already used for a different request",
            )
        if row.status != _PENDING:
            return row.status, row.body, row.sealed
        if now - row.created_at > timedelta(seconds=CLAIM_ABANDONED_S):
            # Its request died with the claim held (a crashed worker): take it over.
            with ledger.engine.begin() as conn:
                taken = conn.execute(
                    update(_records)
                    .where(
                        _mine(scope, key),
                        _records.c.status == _PENDING,
                        _records.c.created_at == row.created_at,
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


def _release(ledger: Ledger, scope: str, key: str) -> None:
    """Give up an unfinished claim, so the key may be used again."""
    try:
        with ledger.engine.begin() as conn:
            conn.execute(delete(_records).where(_mine(scope, key), _records.c.status == _PENDING))
    except SQLAlchemyError:  # the database is gone: the claim is taken over once abandoned
        log.warning("could not release Idempotency-Key claim %s", key, exc_info=True)
