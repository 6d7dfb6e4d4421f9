"""``Idempotency-Key`` on every POST: the same key and body give the same response; the
same key with another body is refused with 409 ``idempotency_conflict``.

Two mechanisms give that one contract. A POST that writes journal entries passes the key
(scoped to the caller, ``ledger_key``) to the ledger, whose entries are themselves keyed:
a repeat yields the original entry and so the original response. A POST that writes no
entry (sign-in, API keys, photos) runs through ``once``, which keeps its answer with
``ledger.idempotency`` (claimed before the action, sealed when it carries a secret).
Outputs and buy-outs do both: their entries are keyed, and their answers, which show
state later entries change (what is outstanding, a plan's installments), are kept with
``once`` so that a repeat gets the first answer, not the state as it stands by then
(``keyed_once`` does both).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from ledger.core.limits import IDEMPOTENCY_KEY_LEN_MAX
from ledger.idempotency import Answer, answer_once
from ledger.journal.write import Ledger

__all__ = ["ModelT", "keyed_once", "ledger_key", "once"]


ModelT = TypeVar("ModelT", bound=BaseModel)


def ledger_key(scope: str, key: str) -> str:
    """The journal idempotency key for a caller's ``Idempotency-Key`` (hashed when the
    scoped key would pass the journal's limit, so every key the API accepts fits). The
    hashed form holds a ``/``, which no ``Idempotency-Key`` may: a short key spelled
    ``sha256:<the hash of a long one>`` is not taken for that long one."""
    scoped = f"http:{scope}:{key}"
    if len(scoped) <= IDEMPOTENCY_KEY_LEN_MAX:
        return scoped
    return f"http:{scope}:sha256/{hashlib.sha256(key.encode()).hexdigest()}"


def once(
    ledger: Ledger,
    *,
    scope: str,
    key: str,
    request: Any,
    run: Callable[[], tuple[int, dict[str, Any]]],
    secret: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run ``run`` (giving a status and a JSON body) at most once per (scope, key): a
    repeat with the same ``request`` returns the stored (status, body), one with another
    request is refused (409). ``secret``, the requester's own (a signature, the caller's
    credential), seals an answer that carries a secret; it is never stored."""
    answer = answer_once(
        ledger,
        scope=scope,
        key=key,
        request=request,
        run=lambda: Answer(*run()),
        secret=secret,
    )
    return answer.status, answer.body


def keyed_once(
    ledger: Ledger,
    *,
    area: str,
    caller: str,
    key: str,
    request: Any,
    status: int,
    run: Callable[[str], ModelT],
    answer: type[ModelT],
) -> ModelT:
    """For a POST whose entries are keyed and whose answer shows state later entries
    change (outputs, buy-outs): ``run`` is given the caller's journal key
    (``ledger_key``) and its answer kept under the caller's ``key`` in ``area``
    (``once``), so a repeat gets the first answer, read back as an ``answer``."""

    def act() -> tuple[int, dict[str, Any]]:
        return status, run(ledger_key(caller, key)).model_dump(mode="json")

    kept = once(ledger, scope=f"{area}:{caller}", key=key, request=request, run=act)[1]
    return answer.model_validate(kept)
