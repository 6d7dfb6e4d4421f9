"""Calling the real API as its users do: signing in with real wallet signatures
(eth_account), posting with an Idempotency-Key, the greenhouse the suites register."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

_keys = itertools.count(1)


@dataclass(frozen=True)
class Wallet:
    address: str
    private_key: bytes

    def sign(self, message: str) -> str:
        signed = Account.sign_message(encode_defunct(text=message), private_key=self.private_key)
        signature: bytes = signed.signature
        return "0x" + signature.hex().removeprefix("0x")


def wallet(n: int) -> Wallet:
    """A deterministic wallet: the n-th test key."""
    key = n.to_bytes(32, "big")
    return Wallet(Account.from_key(key).address, key)


def sign_in(client: httpx.Client, who: Wallet) -> dict[str, str]:
    """Headers carrying a fresh bearer token for ``who`` (over any httpx client: the
    in-process TestClient or a real server's)."""
    challenge = client.post(
        "/v1/auth/challenge",
        json={"address": who.address},
        headers={"Idempotency-Key": f"c{next(_keys)}"},
    )
    assert challenge.status_code == 201, challenge.text
    message = challenge.json()["message"]
    token = client.post(
        "/v1/auth/token",
        json={"message": message, "signature": who.sign(message)},
        headers={"Idempotency-Key": f"t{next(_keys)}"},
    )
    assert token.status_code == 201, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


class MovableClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2027, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def post(client: httpx.Client, path: str, who: dict[str, str], body: Any, key: str) -> Any:
    """``POST path`` with a JSON body, as ``who`` (sign-in headers), under ``key``."""
    return client.post(path, json=body, headers=who | {"Idempotency-Key": key})


def greenhouse(asset_id: str) -> dict[str, Any]:
    """The body that registers the suites' asset: a greenhouse in Wageningen."""
    return {
        "id": asset_id,
        "make": "Richel",
        "model": "Greenhouse",
        "serial": "R-1",
        "location": "Wageningen",
        "jurisdiction": "NL",
    }
