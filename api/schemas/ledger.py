"""Assets, holdings, transfers and the journal on the wire. Amounts are decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import Address, AmountText, AssetId, Integer, Strict, Time
from ledger.core.accounts import INSTRUMENT_PATTERN

__all__ = [
    "AssetIn",
    "AssetOut",
    "CapTableOut",
    "CurrencyOut",
    "DepositIn",
    "DigestOut",
    "DocumentIn",
    "EntryOut",
    "HoldingOut",
    "IssueIn",
    "OperatorIn",
    "PhotoOut",
    "RoleIn",
    "SightingIn",
    "SightingOut",
    "TransferIn",
    "VerifyOut",
]

Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Instrument = Annotated[str, StringConstraints(pattern=f"^{INSTRUMENT_PATTERN}$")]


class CurrencyOut(BaseModel):
    code: str
    decimals: int
    name: str


class DocumentIn(Strict):
    title: Text128
    sha256: Sha256


class AssetIn(Strict):
    id: AssetId
    make: Text64
    model: Text64
    serial: Text64
    location: Text128
    total_units: Integer = Field(default=1_000_000, ge=1, le=10**15)
    legal_framework: Text64 = "tenancy_in_common"
    jurisdiction: Text64
    documents: list[DocumentIn] = Field(default_factory=list, max_length=64)


class AssetOut(BaseModel):
    id: str
    make: str
    model: str
    serial: str
    location: str
    total_units: int
    legal_framework: str
    jurisdiction: str
    registered_seq: int


class IssueIn(Strict):
    allocations: list[tuple[Address, AmountText]] = Field(min_length=1, max_length=1000)


class OperatorIn(Strict):
    address: Address


class RoleIn(Strict):
    address: Address
    role: Text64
    asset_id: AssetId | None = None


class PhotoOut(BaseModel):
    sha256: str
    content_type: str
    size_bytes: int


class SightingIn(Strict):
    seen_at: Time
    location: Text128
    photo_sha256: Sha256


class SightingOut(BaseModel):
    id: int
    seen_at: datetime
    location: str
    reporter: str
    photo_sha256: str
    recorded_seq: int


class HoldingOut(BaseModel):
    instrument: str
    balance: str
    held: str
    available: str


class CapTableOut(BaseModel):
    asset_id: str
    total_units: int
    as_of_seq: int = Field(description="the seq the table was read at (the head, for now)")
    holders: list[dict[str, str]]


class TransferIn(Strict):
    recipient: Address
    instrument: Instrument
    amount: AmountText
    memo: Annotated[str, StringConstraints(max_length=256)] = ""


class DepositIn(Strict):
    member: Address
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,10}$")]
    amount: AmountText
    reference: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class EntryOut(BaseModel):
    seq: int
    id: str
    kind: str
    payload: dict[str, Any]
    postings: list[list[str]]
    holds: list[list[str]]
    effective_at: datetime
    recorded_at: datetime
    actor: str
    reverses: int | None
    prev_hash: str
    hash: str


class DigestOut(BaseModel):
    seq: int
    head_hash: str


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    accounts: int
    head_seq: int
    head_hash: str
    bad_seq: int | None
    problems: list[str]
