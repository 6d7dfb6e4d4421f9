"""Preparing the network over the API (not measured): wallets, Sign-In with Ethereum, funds.

Everything goes through the server under test, as a member would: each wallet signs a
real SIWE challenge for its bearer token, and the admin deposits to every member.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

__all__ = [
    "ASSET_ID",
    "CURRENCY",
    "FUNDING",
    "UNITS_EACH",
    "Wallet",
    "list_asset",
    "sign_in_and_fund",
    "wallet",
]

CURRENCY = "EUR"
FUNDING = 10**15  # minor units per member: no transfer of 1 is ever refused for funds
ASSET_ID = "1M8GDM9A7KP070001"  # its check character (position 9, "7") is right
UNITS_EACH = 10**9  # units per member: no sell of the order phase is refused for units
ASSET_TOTAL_UNITS = 10**15


@dataclass(frozen=True)
class Wallet:
    """A member's key pair: it signs Sign-In with Ethereum messages."""

    address: str
    private_key: bytes

    def sign(self, message: str) -> str:
        """The EIP-191 signature of ``message``, as 0x-prefixed hex."""
        signed = Account.sign_message(encode_defunct(text=message), private_key=self.private_key)
        signature: bytes = signed.signature
        return "0x" + signature.hex().removeprefix("0x")


def wallet(n: int) -> Wallet:
    """The ``n``-th benchmark wallet: the same address in every run."""
    key = (0xB0000000 + n).to_bytes(32, "big")
    return Wallet(Account.from_key(key).address, key)


def _sign_in(client: httpx.Client, who: Wallet) -> str:
    challenge = client.post(
        "/v1/auth/challenge",
        json={"address": who.address},
        headers={"Idempotency-Key": f"c-{uuid.uuid4().hex}"},
    )
    challenge.raise_for_status()
    message = challenge.json()["message"]
    token = client.post(
        "/v1/auth/token",
        json={"message": message, "signature": who.sign(message)},
        headers={"Idempotency-Key": f"t-{uuid.uuid4().hex}"},
    )
    token.raise_for_status()
    access: str = token.json()["access_token"]
    return access


def list_asset(base_url: str, admin: Wallet, members: Sequence[Wallet]) -> str:
    """Register the benchmark's asset as the admin and issue ``UNITS_EACH`` of it to
    every member, so that they can trade it in ``CURRENCY``; returns its ID."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        admin_token = _sign_in(client, admin)
        headers = {"Authorization": f"Bearer {admin_token}"}
        registered = client.post(
            "/v1/assets",
            json={
                "id": ASSET_ID,
                "make": "Deere",
                "model": "8R",
                "serial": "BENCH-HTTP",
                "location": "Ames, IA",
                "total_units": ASSET_TOTAL_UNITS,
                "jurisdiction": "US-IA",
            },
            headers=headers | {"Idempotency-Key": "bench-asset"},
        )
        registered.raise_for_status()
        issued = client.post(
            f"/v1/assets/{ASSET_ID}/issue",
            json={"allocations": [[m.address, str(UNITS_EACH)] for m in members]},
            headers=headers | {"Idempotency-Key": "bench-issue"},
        )
        issued.raise_for_status()
    return ASSET_ID


def sign_in_and_fund(base_url: str, admin: Wallet, members: Sequence[Wallet]) -> list[str]:
    """Sign every member in and fund them; returns their bearer tokens."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        admin_token = _sign_in(client, admin)
        tokens = [_sign_in(client, m) for m in members]
        for n, member in enumerate(members):
            funded = client.post(
                "/v1/deposits",
                json={
                    "member": member.address,
                    "currency": CURRENCY,
                    "amount": str(FUNDING),
                    "reference": f"bench {n}",
                },
                headers={"Authorization": f"Bearer {admin_token}", "Idempotency-Key": f"f{n}"},
            )
            funded.raise_for_status()
    return tokens
