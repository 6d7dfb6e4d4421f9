"""Sign-In with Ethereum, bearer tokens, signing out and API keys.

A challenge stores nothing (its nonce is the server's HMAC of the message), so asking
for one is harmless to repeat and takes no Idempotency-Key. Signing in is anonymous, so
its Idempotency-Keys are scoped to the request's subject, the wallet the signed message
names. Wallets never share keys, so no caller can spend or see another wallet's key by
using the same one for itself; a key is only ever answered for its own wallet (the same
request: the same answer; another request of that wallet: 409). A failed sign-in is not
remembered, so a stranger cannot take a wallet's key by failing with it first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import Caller, Credential, IdempotencyKey, LedgerDep, SettingsDep, siwe_terms
from api.idempotency import once
from api.problems import PROBLEM_RESPONSES
from api.schemas.auth import ApiKeyIn, ApiKeyOut, ChallengeIn, ChallengeOut, TokenIn, TokenOut
from api.schemas.common import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, Page
from ledger.access import issue_challenge, redeem_signature, sign_out, siwe_address
from ledger.access.api_keys import KEY_ID_LEN_MAX, create_api_key, list_api_keys
from ledger.access.api_keys import revoke_api_key as revoke
from ledger.db.engine import read_connection

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["auth"], responses=PROBLEM_RESPONSES)


@router.post("/auth/challenge", response_model=ChallengeOut, status_code=201)
def challenge(body: ChallengeIn, ledger: LedgerDep, settings: SettingsDep) -> ChallengeOut:
    """An EIP-4361 message for ``address`` to sign; its nonce works once and expires.

    Nothing is stored: the nonce is the server's own HMAC of the message's address,
    times, domain, URI and chain, checked when the message comes back signed. So this
    POST needs no Idempotency-Key (one sent is ignored): a retry only yields another
    message, and either may be signed."""
    issued = issue_challenge(ledger, siwe_terms(settings), body.address)
    return ChallengeOut(message=issued.message, nonce=issued.nonce, expires_at=issued.expires_at)


@router.post("/auth/token", response_model=TokenOut, status_code=201)
def token(
    body: TokenIn, ledger: LedgerDep, settings: SettingsDep, key: IdempotencyKey
) -> JSONResponse:
    """Exchange the signed message (an EIP-191 personal signature: 130 hex digits, with
    or without ``0x``) for a bearer token. The member is registered on first sign-in.
    A refused sign-in is 401 with a code naming what failed: ``siwe_signature_malformed``,
    ``siwe_message_malformed`` and ``siwe_message_altered`` (with the ``part``),
    ``siwe_nonce_unknown``, ``siwe_issued_in_future``, ``siwe_lifetime_too_long``,
    ``siwe_expired``, ``siwe_bad_signature``, ``siwe_wrong_signer``, ``siwe_nonce_used``."""

    def run() -> tuple[int, dict[str, Any]]:
        issued = redeem_signature(ledger, siwe_terms(settings), body.message, body.signature)
        return 201, TokenOut(
            access_token=issued.access_token, expires_at=issued.expires_at
        ).model_dump(mode="json")

    status, answer = once(
        ledger,
        scope=f"token:{siwe_address(body.message)}",
        key=key,
        request=body.model_dump(),
        run=run,
        secret=body.signature.encode(),
    )
    return JSONResponse(answer, status_code=status)


@router.delete("/auth/token", status_code=204)
def sign_out_token(caller: Caller, ledger: LedgerDep, presented: Credential) -> None:
    """Sign out: revoke the bearer token this request carries; it is refused (401) from
    now on, on every worker. An API key does not sign out (422 ``sign_out_api_key``):
    revoke it with ``DELETE /v1/api-keys/{id}``."""
    sign_out(ledger, caller, presented)


@router.post("/api-keys", response_model=ApiKeyOut, status_code=201)
def new_api_key(
    body: ApiKeyIn,
    caller: Caller,
    ledger: LedgerDep,
    key: IdempotencyKey,
    presented: Credential,
) -> JSONResponse:
    """A key for automation, limited to some of your roles, lasting until revoked or
    until its ``expires_at`` (in the future, at most 366 days ahead; else 422
    ``api_key_expiry_past`` or ``api_key_expiry_too_far``). The key is shown once.
    A member holds at most 50 live keys (422 ``api_keys_too_many``)."""

    def run() -> tuple[int, dict[str, Any]]:
        made = create_api_key(ledger, caller, body.name, tuple(body.roles), body.expires_at)
        return 201, ApiKeyOut(
            id=made.id,
            name=made.name,
            roles=list(made.roles),
            created_at=made.created_at,
            expires_at=made.expires_at,
            key=made.key,
        ).model_dump(mode="json")

    status, answer = once(
        ledger,
        scope=f"api-key:{caller.address}",
        key=key,
        request=body.model_dump(mode="json"),
        run=run,
        secret=presented.encode(),
    )
    return JSONResponse(answer, status_code=status)


@router.get("/api-keys", response_model=Page[ApiKeyOut])
def api_keys(
    caller: Caller,
    ledger: LedgerDep,
    cursor: Annotated[
        str | None, Query(max_length=KEY_ID_LEN_MAX, description="the id to page after")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
) -> Page[ApiKeyOut]:
    """Your API keys, revoked and expired ones too, oldest first (never the keys
    themselves)."""
    with read_connection(ledger.engine) as conn:
        found = list_api_keys(conn, caller.address, after_id=cursor, limit=limit)
    items = [
        ApiKeyOut(
            id=k.id,
            name=k.name,
            roles=list(k.roles),
            created_at=k.created_at,
            revoked_at=k.revoked_at,
            expires_at=k.expires_at,
        )
        for k in found
    ]
    return Page.of(items, found, limit, lambda k: k.id)


@router.delete("/api-keys/{key_id}", status_code=204)
def revoke_api_key(
    key_id: Annotated[str, Path(max_length=KEY_ID_LEN_MAX)],
    caller: Caller,
    ledger: LedgerDep,
) -> None:
    """Revoke one of your API keys."""
    revoke(ledger, caller, key_id)
