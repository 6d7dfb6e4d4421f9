"""Request dependencies: the ledger, the caller, the idempotency key."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.principals import PrincipalCache
from api.problems import ApiProblem
from api.settings import Settings
from ledger.access import Principal, SiweTerms, authenticate
from ledger.access.principals import CREDENTIAL_LEN_MAX
from ledger.core.errors import Unauthenticated
from ledger.db.engine import read_connection
from ledger.journal.write import Ledger

__all__ = [
    "DIRECT_DEPENDENCIES",
    "IDEMPOTENCY_KEY_HEADER",
    "Caller",
    "Credential",
    "IdempotencyKey",
    "LedgerDep",
    "SettingsDep",
    "credential",
    "current_principal",
    "idempotency_key",
    "siwe_terms",
]

IDEMPOTENCY_KEY_LEN_MAX = 100
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
API_KEY_HEADER = "X-API-Key"
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


# The two ways to present a credential, declared for OpenAPI (so /docs has an Authorize
# button): a bearer token or API key in ``Authorization: Bearer ...``, or an API key in
# ``X-API-Key``. Both are read by ``credential`` below, which says what is wrong.
_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from POST /v1/auth/token, or an API key: `Authorization: Bearer ...`",
)
_API_KEY = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from POST /v1/api-keys (`dpn_key_...`)",
)


async def credential(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    api_key: Annotated[str | None, Security(_API_KEY)],
) -> str:
    """The credential the caller presented, or 401 saying what is missing or malformed."""
    return _presented(request, api_key)


def _presented(request: Request, api_key: str | None) -> str:
    authorization = request.headers.get("authorization")
    if authorization is None:
        if api_key is None:
            raise Unauthenticated(
                "credentials_missing", "sign in: send Authorization: Bearer ... or X-API-Key"
            )
        given = api_key
    else:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthenticated("credentials_malformed", "use Authorization: Bearer <token>")
    given = given.strip()
    if len(given) > CREDENTIAL_LEN_MAX:
        raise Unauthenticated("token_invalid", "the credential is not valid")
    return given


Credential = Annotated[str, Depends(credential)]


async def current_principal(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    api_key: Annotated[str | None, Security(_API_KEY)],
) -> Principal:
    """The signed-in caller (``Authorization: Bearer <token or API key>`` or
    ``X-API-Key``), or 401. Remembered briefly per worker (see ``api.principals``);
    resolved in a thread."""
    # The credential (as ``credential`` gives it) and the app's state are read here, not
    # through sub-dependencies: this runs on every authenticated request, and each
    # dependency costs its own resolution (10 to 20 us of CPU each, measured).
    presented = _presented(request, api_key)
    state = request.app.state
    ledger: Ledger = state.ledger
    settings: Settings = state.settings
    principals: PrincipalCache = state.principals
    key, now = principals.key(presented), ledger.clock()
    principal = principals.get(key, now)
    if principal is None:
        generation = principals.generation
        principal = await run_in_threadpool(_authenticate, ledger, presented, now, settings)
        principals.put(key, principal, generation)
    return principal


def _authenticate(ledger: Ledger, credential: str, now: datetime, settings: Settings) -> Principal:
    with read_connection(ledger.engine) as conn:
        return authenticate(conn, credential, now, settings.admins)


Caller = Annotated[Principal, Depends(current_principal)]


async def idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_KEY_HEADER,
            description="Required: the same key and body give the same response; the"
            f" same key with another body is refused (409). 1..{IDEMPOTENCY_KEY_LEN_MAX}"
            " of A-Z a-z 0-9 . _ : -",
        ),
    ] = None,
) -> str:
    """The request's ``Idempotency-Key`` header: required on every request that records
    something (400 ``idempotency_key_missing``), 1..100 of A-Z a-z 0-9 . _ : - (400
    ``idempotency_key_malformed``, a key too long included). Declared required in the
    OpenAPI document by ``api.app``."""
    if key is None:
        raise ApiProblem(
            400,
            "idempotency_key_missing",
            f"{request.method} {request.url.path} needs an Idempotency-Key header",
        )
    if not _KEY.fullmatch(key):
        raise ApiProblem(
            400,
            "idempotency_key_malformed",
            f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_LEN_MAX} of A-Z a-z 0-9 . _ : -",
        )
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]


async def _direct_principal(request: Request) -> Principal:
    # As FastAPI gives it: ``APIKeyHeader(auto_error=False)`` takes an empty key for none.
    return await current_principal(request, None, request.headers.get(API_KEY_HEADER) or None)


async def _direct_idempotency_key(request: Request) -> str:
    return await idempotency_key(request, request.headers.get(IDEMPOTENCY_KEY_HEADER))


DIRECT_DEPENDENCIES: dict[Callable[..., Any], Callable[[Request], Awaitable[Any]]] = {
    current_principal: _direct_principal,
    idempotency_key: _direct_idempotency_key,
    _ledger: _ledger,
    _settings: _settings,
}
"""How a direct route (``api.direct``) resolves each dependency it may take: from the
request alone, as FastAPI would from the dependency's parameters."""
