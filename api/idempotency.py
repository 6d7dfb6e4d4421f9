"""``Idempotency-Key`` on every POST: the same key and body give the same response; the
same key with another body is refused with 409 ``idempotency_conflict``.

Two mechanisms give that one contract. A POST that writes journal entries passes the key
(scoped to the caller) to the ledger, whose entries are themselves keyed: a repeat yields
the original entry and so the original response. A POST that writes no entry (sign-in,
API keys, photos) keeps its answer in ``http_idempotency``; an answer that carries a
secret (a token, an API key) is stored sealed with a keystream derived from the
requester's own secret (the signature, the caller's credential), which is never stored:
a copy of the database alone cannot read it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ledger.core.limits import IDEMPOTENCY_KEY_LEN_MAX
from ledger.db.schema import HttpIdempotency, table
from ledger.errors import Conflict
from ledger.journal import Ledger

__all__ = ["ledger_key", "once"]

_records = table(HttpIdempotency)


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
    """Run ``run`` once per (scope, key); a repeat with the same ``request`` returns the
    stored (status, body), with another request raises ``Conflict``."""
    request_hash = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    sealing_key = hashlib.sha256(b"dpn-idempotency" + secret).digest() if secret else None
    with ledger.engine.connect() as conn:
        row = conn.execute(
            select(_records).where(_records.c.scope == scope, _records.c.key == key)
        ).first()
    if row is not None:
        if row.request_hash != request_hash:
            raise Conflict(
                "idempotency_conflict",
                "this Idempotency-Key was already used for a different request",
            )
        if row.sealed:
            if sealing_key is None:  # pragma: no cover - same request implies same secret use
                raise Conflict("idempotency_conflict", "the stored answer cannot be opened")
            return row.status, json.loads(_unseal(row.body, sealing_key))
        return row.status, json.loads(row.body)
    status, body = run()
    text = json.dumps(body, default=str)
    stored = _seal(text.encode(), sealing_key) if sealing_key else text
    try:
        with ledger.engine.begin() as conn:
            conn.execute(
                _records.insert().values(
                    scope=scope,
                    key=key,
                    request_hash=request_hash,
                    status=status,
                    body=stored,
                    sealed=sealing_key is not None,
                    created_at=ledger.clock(),
                )
            )
    except IntegrityError:
        # A concurrent twin stored its answer first; answer as it did.
        return once(ledger, scope=scope, key=key, request=request, run=run, secret=secret)
    return status, json.loads(text)
