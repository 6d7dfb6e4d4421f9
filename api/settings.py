"""Service settings, read once from the environment (``DPN_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ledger.chain.gateway import ChainConfig
from ledger.core.errors import InvalidInput
from ledger.db.engine import database_url
from ledger.registry.address import validate_address

__all__ = ["Settings"]


def _addresses(name: str) -> frozenset[str]:
    """Checksummed addresses, comma-separated: a mistyped admin is refused, not ignored."""
    text = os.environ.get(name, "")
    return frozenset(validate_address(a.strip()) for a in text.split(",") if a.strip())


def _integer(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput("setting_malformed", f"{name} must be an integer") from None


def _hex(name: str) -> bytes:
    try:
        return bytes.fromhex(os.environ.get(name, ""))
    except ValueError:
        raise InvalidInput("setting_malformed", f"{name} must be hexadecimal") from None


@dataclass(frozen=True, slots=True)
class Settings:
    """What the HTTP service needs to know about its place in the world."""

    database_url: str = field(default_factory=database_url)
    # Sign-In with Ethereum: the domain and URI the messages name, and the chain.
    siwe_domain: str = "127.0.0.1:8000"
    siwe_uri: str = "http://127.0.0.1:8000"
    chain_id: int = 1
    challenge_ttl_s: int = 300
    token_ttl_s: int = 3600
    admins: frozenset[str] = frozenset()
    body_bytes_max: int = 256 * 1024
    # How long a worker may go on using a principal it resolved (see api.principals).
    principals_fresh_s: float = 2.0
    photo_bytes_max: int = 5 * 1024 * 1024
    # The chain the escrows live on (None: no chain features, pledges are manual only),
    # and whether this worker runs a chain follower (each worker may; the follower's
    # database lease lets one of them write).
    funding_chain: ChainConfig | None = None
    chain_follow: bool = True
    # The network's fee on each trade, in basis points of its value, paid by the seller.
    market_fee_bps: int = 0
    # The engine process the workers hand orders to (``market.engine.remote``), set by
    # the ``dpn serve`` supervisor for its workers; None: this process runs its engine.
    market_engine_address: str | None = None
    market_engine_key: bytes = b""

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from ``DPN_DATABASE_URL``, ``DPN_SIWE_DOMAIN``, ``DPN_SIWE_URI``,
        ``DPN_CHAIN_ID``, ``DPN_TOKEN_TTL_S``, ``DPN_ADMINS`` (comma-separated
        checksummed addresses), the funding chain (``DPN_CHAIN_RPC_URL`` and the others
        ``ChainConfig.from_env`` reads) and ``DPN_CHAIN_FOLLOW`` (``0``: this worker runs
        no chain follower), ``DPN_MARKET_FEE_BPS`` (the fee on trades, 0..1000 basis
        points); ``DPN_MARKET_ENGINE_ADDRESS`` and ``DPN_MARKET_ENGINE_KEY`` (hex), which the
        ``dpn serve`` supervisor sets for its workers; ``InvalidInput`` names one that is
        malformed."""
        env = os.environ
        defaults = cls()
        return cls(
            database_url=database_url(),
            siwe_domain=env.get("DPN_SIWE_DOMAIN", defaults.siwe_domain),
            siwe_uri=env.get("DPN_SIWE_URI", defaults.siwe_uri),
            chain_id=_integer("DPN_CHAIN_ID", defaults.chain_id),
            token_ttl_s=_integer("DPN_TOKEN_TTL_S", defaults.token_ttl_s),
            admins=_addresses("DPN_ADMINS"),
            funding_chain=ChainConfig.from_env(),
            chain_follow=env.get("DPN_CHAIN_FOLLOW", "1").strip() != "0",
            market_fee_bps=_integer("DPN_MARKET_FEE_BPS", defaults.market_fee_bps),
            market_engine_address=env.get("DPN_MARKET_ENGINE_ADDRESS") or None,
            market_engine_key=_hex("DPN_MARKET_ENGINE_KEY"),
        )
