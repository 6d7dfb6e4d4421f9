"""Sign-In with Ethereum, bearer tokens and API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from fastapi.responses import JSONResponse

from api.deps import Caller, IdempotencyKey, LedgerDep, PrincipalsDep, SettingsDep, siwe_terms
from api.idempotency import once
from api.problems import PROBLEM_RESPONSES
from api.schemas.auth import ApiKeyIn, ApiKeyOut, ChallengeIn, ChallengeOut, TokenIn, TokenOut
from ledger.access import create_api_key, issue_challenge, list_api_keys, redeem_signature
from ledger.access import revoke_api_key as revoke
from ledger.db.engine import read_connection

router = APIRouter(prefix="/v1", tags=["auth"], responses=PROBLEM_RESPONSES)


@router.post("/auth/challenge", response_model=ChallengeOut, status_code=201)
def challenge(
    body: ChallengeIn, ledger: LedgerDep, settings: SettingsDep, key: IdempotencyKey
) -> JSONResponse:
    """An EIP-4361 message for ``address`` to sign; its nonce works once and expires."""

    def run() -> tuple[int, dict[str, Any]]:
        issued = issue_challenge(ledger, siwe_terms(settings), body.address)
        return 201, ChallengeOut(
            message=issued.message, nonce=issued.nonce, expires_at=issued.expires_at
        ).model_dump(mode="json")

    status, answer = once(
        ledger, scope=f"challenge:{body.address}", key=key, request=body.model_dump(), run=run
    )
    return JSONResponse(answer, status_code=status)


@router.post("/auth/token", response_model=TokenOut, status_code=201)
def token(
    body: TokenIn, ledger: LedgerDep, settings: SettingsDep, key: IdempotencyKey
) -> JSONResponse:
    """Exchange the signed message (an EIP-191 personal signature) for a bearer token.
    The member is registered on first sign-in."""

    def run() -> tuple[int, dict[str, Any]]:
        issued = redeem_signature(ledger, siwe_terms(settings), body.message, body.signature)
        return 201, TokenOut(
            access_token=issued.access_token, expires_at=issued.expires_at
        ).model_dump(mode="json")

    status, answer = once(
        ledger,
        scope="token",
        key=key,
        request=body.model_dump(),
        run=run,
        secret=body.signature.encode(),
    )
    return JSONResponse(answer, status_code=status)


@router.post("/api-keys", response_model=ApiKeyOut, status_code=201)
def new_api_key(
    body: ApiKeyIn,
    caller: Caller,
    ledger: LedgerDep,
    key: IdempotencyKey,
    authorization: Annotated[str, Header(max_length=200)],
) -> JSONResponse:
    """A key for automation, limited to some of your roles. The key is shown once."""

    def run() -> tuple[int, dict[str, Any]]:
        made = create_api_key(ledger, caller, body.name, tuple(body.roles))
        return 201, ApiKeyOut(
            id=made.id,
            name=made.name,
            roles=list(made.roles),
            created_at=made.created_at,
            key=made.key,
        ).model_dump(mode="json")

    status, answer = once(
        ledger,
        scope=f"api-key:{caller.address}",
        key=key,
        request=body.model_dump(),
        run=run,
        secret=authorization.encode(),
    )
    return JSONResponse(answer, status_code=status)


@router.get("/api-keys", response_model=list[ApiKeyOut])
def api_keys(caller: Caller, ledger: LedgerDep) -> list[ApiKeyOut]:
    """Your API keys (never the keys themselves)."""
    with read_connection(ledger.engine) as conn:
        return [ApiKeyOut.model_validate(k) for k in list_api_keys(conn, caller.address)]


@router.delete("/api-keys/{key_id}", status_code=204)
def revoke_api_key(
    key_id: Annotated[str, Path(max_length=24)],
    caller: Caller,
    ledger: LedgerDep,
    principals: PrincipalsDep,
) -> None:
    """Revoke one of your API keys."""
    revoke(ledger, caller, key_id)
    principals.forget_all()
