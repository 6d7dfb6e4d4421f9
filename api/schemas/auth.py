"""Sign-in, tokens, API keys and members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import Address, Strict, Time
from ledger.access.api_keys import API_KEY_LIFETIME_MAX

__all__ = [
    "ApiKeyIn",
    "ApiKeyOut",
    "ChallengeIn",
    "ChallengeOut",
    "MemberOut",
    "MemberPatch",
    "TokenIn",
    "TokenOut",
]


class ChallengeIn(Strict):
    address: Address


class ChallengeOut(BaseModel):
    message: str
    nonce: str
    expires_at: datetime


class TokenIn(Strict):
    message: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    signature: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class ApiKeyIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    roles: list[Annotated[str, StringConstraints(max_length=16)]] = Field(
        default_factory=list, max_length=4
    )
    expires_at: Time | None = Field(
        default=None,
        description="when the key stops working (with a zone): in the future, at most"
        f" {API_KEY_LIFETIME_MAX.days} days ahead; without it, the key lasts until revoked",
    )


class ApiKeyOut(BaseModel):
    id: str
    name: str
    roles: list[str]
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    key: str | None = Field(default=None, description="the key itself: shown once, at creation")


class MemberOut(BaseModel):
    address: str
    kind: str
    name: str
    registered_seq: int
    roles: list[str] = Field(default_factory=list)


class MemberPatch(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
