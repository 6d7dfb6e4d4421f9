"""Request dependencies: the ledger, the caller, the idempotency key."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from api.principals import PrincipalCache
from api.problems import ApiProblem
from api.settings import Settings
from ledger.access import Principal, SiweTerms, authenticate
from ledger.db.engine import read_connection
from ledger.errors import Unauthenticated
from ledger.journal import Ledger

__all__ = [
    "Caller",
    "IdempotencyKey",
    "LedgerDep",
    "SettingsDep",
    "current_principal",
    "idempotency_key",
    "siwe_terms",
]

IDEMPOTENCY_KEY_LEN_MAX = 100
_KEY = re.compile(rf"[A-Za-z0-9._:\-]{{1,{IDEMPOTENCY_KEY_LEN_MAX}}}")


async def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


LedgerDep = Annotated[Ledger, Depends(_ledger)]
SettingsDep = Annotated[Settings, Depends(_settings)]


def siwe_terms(settings: Settings) -> SiweTerms:
    """The Sign-In with Ethereum terms this service writes into its messages."""
    return SiweTerms(
        domain=settings.siwe_domain,
        uri=settings.siwe_uri,
        chain_id=settings.chain_id,
        challenge_ttl_s=settings.challenge_ttl_s,
        token_ttl_s=settings.token_ttl_s,
    )


async def current_principal(
    request: Request, authorization: Annotated[str | None, Header(max_length=200)] = None
) -> Principal:
    """The signed-in caller (``Authorization: Bearer <token or API key>``), or 401.
    Remembered briefly per worker (see ``api.principals``); resolved in a thread."""
    if authorization is None:
        raise Unauthenticated("credentials_missing", "sign in: send Authorization: Bearer ...")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise Unauthenticated("credentials_malformed", "use Authorization: Bearer <token>")
    # The app's state is read here, not through sub-dependencies: this runs on every
    # authenticated request, and each dependency costs its own resolution.
    state = request.app.state
    ledger: Ledger = state.ledger
    settings: Settings = state.settings
    principals: PrincipalCache = state.principals
    credential = credential.strip()
    key, now = principals.key(credential), ledger.clock()
    principal = principals.get(key, now)
    if principal is None:
        generation = principals.generation
        principal = await run_in_threadpool(_authenticate, ledger, credential, now, settings)
        principals.put(key, principal, generation)
    return principal


def _authenticate(ledger: Ledger, credential: str, now: datetime, settings: Settings) -> Principal:
    with read_connection(ledger.engine) as conn:
        return authenticate(conn, credential, now, settings.admins)


Caller = Annotated[Principal, Depends(current_principal)]


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required on every POST: the same key and body give the same"
            " response; the same key with another body is refused (409).",
            max_length=IDEMPOTENCY_KEY_LEN_MAX,
        ),
    ] = None,
) -> str:
    """The request's ``Idempotency-Key`` header (required on POST)."""
    if key is None:
        raise ApiProblem(400, "idempotency_key_missing", "POST needs an Idempotency-Key header")
    if not _KEY.fullmatch(key):
        raise ApiProblem(
            400,
            "idempotency_key_malformed",
            f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_LEN_MAX} of A-Z a-z 0-9 . _ : -",
        )
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]
