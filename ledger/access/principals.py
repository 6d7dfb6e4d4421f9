"""Principals: who is calling (a bearer token or an API key, resolved to an address and
its roles), signing out, and the announcement that resolved principals are stale.

Roles: ``admin`` (named by the deployment), ``finance_node`` (by member kind, or
granted), ``operator`` (of one asset, or of any) and ``member`` for everyone signed in.
Tokens and API keys are stored as their SHA-256 only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, delete, select, text

from ledger.core import format_time
from ledger.core.errors import (
    Refused,
    Unauthenticated,
)
from ledger.db.engine import write_connection
from ledger.db.schema import AccessToken, ApiKey, MemberRole, table
from ledger.journal.write import Ledger
from ledger.registry.members import MemberKind, find_member

PRINCIPALS_CHANNEL = "dpn_principals"  # PostgreSQL NOTIFY channel; the payload: the schema
PRINCIPALS_CHANGED = "dpn_principals_changed"  # the mark in Connection.info
TOKEN_PREFIX = "dpn_at_"
API_KEY_PREFIX = "dpn_key_"
CREDENTIAL_LEN_MAX = 128

_tokens = table(AccessToken)
_grants = table(MemberRole)


class Role(StrEnum):
    ADMIN = "admin"
    FINANCE_NODE = "finance_node"
    OPERATOR = "operator"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and what they may act as."""

    address: str
    roles: frozenset[Role]
    operates: frozenset[str]  # asset ids this member operates
    via: str  # "token" or "api_key"
    expires_at: datetime | None = None  # the credential's expiry, if it has one

    def has(self, role: Role) -> bool:
        """True if the caller holds ``role``."""
        return role in self.roles

    def operates_asset(self, asset_id: str) -> bool:
        """True for an operator of this asset (or of any asset), or an admin."""
        return Role.ADMIN in self.roles or asset_id in self.operates or "*" in self.operates


def digest_of(credential: str) -> str:
    """What is stored of a token or an API key: its SHA-256, never the thing itself."""
    return hashlib.sha256(credential.encode()).hexdigest()


def sign_out(ledger: Ledger, principal: Principal, credential: str) -> None:
    """Revoke the bearer token ``credential`` that ``principal`` signed in with: it is
    refused at once (``announce_principals_changed``). An API key is not signed out
    (``Refused(sign_out_api_key)``): it is revoked by its id."""
    if principal.via != "token" or not credential.startswith(TOKEN_PREFIX):
        raise Refused(
            "sign_out_api_key",
            "an API key does not sign out: revoke it with DELETE /v1/api-keys/{id}",
        )
    with write_connection(ledger.engine) as conn:
        gone = conn.execute(
            delete(_tokens).where(
                _tokens.c.token_hash == digest_of(credential),
                _tokens.c.address == principal.address,
            )
        )
        if gone.rowcount != 1:  # signed out meanwhile by a twin request
            raise Unauthenticated("token_invalid", "the token is unknown or has expired")
        announce_principals_changed(conn)


def _roles_of(conn: Connection, address: str, admins: frozenset[str]) -> tuple[set[Role], set[str]]:
    roles = {Role.MEMBER}
    operates: set[str] = set()
    if address in admins:
        roles.add(Role.ADMIN)
    member = find_member(conn, address)
    if member is not None and member.kind is MemberKind.FINANCE_NODE:
        roles.add(Role.FINANCE_NODE)
    for role, asset_id in conn.execute(
        select(_grants.c.role, _grants.c.asset_id).where(_grants.c.address == address)
    ):
        roles.add(Role(role))
        if role == Role.OPERATOR:
            operates.add(asset_id or "*")
    return roles, operates


def authenticate(
    conn: Connection, bearer: str, now: datetime, admins: frozenset[str] = frozenset()
) -> Principal:
    """The principal behind a bearer token or API key, or ``Unauthenticated``
    (``token_invalid``, ``api_key_invalid``, ``api_key_expired``). The principal's
    ``expires_at`` is the credential's."""
    if len(bearer) > CREDENTIAL_LEN_MAX:
        raise Unauthenticated("token_invalid", "the credential is not valid")
    digest = digest_of(bearer)
    if bearer.startswith(TOKEN_PREFIX):
        row = conn.execute(
            select(_tokens.c.address, _tokens.c.expires_at).where(_tokens.c.token_hash == digest)
        ).first()
        if row is None or now >= row.expires_at:
            raise Unauthenticated("token_invalid", "the token is unknown or has expired")
        roles, operates = _roles_of(conn, row.address, admins)
        return Principal(
            row.address, frozenset(roles), frozenset(operates), "token", row.expires_at
        )
    if bearer.startswith(API_KEY_PREFIX):
        keys = table(ApiKey)
        key = conn.execute(
            select(keys.c.address, keys.c.roles, keys.c.revoked_at, keys.c.expires_at).where(
                keys.c.key_hash == digest
            )
        ).first()
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("api_key_invalid", "the API key is unknown or revoked")
        if key.expires_at is not None and now >= key.expires_at:
            raise Unauthenticated(
                "api_key_expired", f"the API key expired at {format_time(key.expires_at)}"
            )
        roles, operates = _roles_of(conn, key.address, admins)
        scoped = {Role(r) for r in key.roles.split(",") if r} | {Role.MEMBER}
        roles &= scoped
        return Principal(
            key.address,
            frozenset(roles),
            frozenset(operates if Role.OPERATOR in roles else ()),
            "api_key",
            key.expires_at,
        )
    raise Unauthenticated("token_invalid", "the credential is not valid")


def announce_principals_changed(conn: Connection) -> None:
    """Say, within the transaction that revokes a credential or changes a role, that
    principals resolved before it are stale. The connection is marked (``conn.info``,
    ``PRINCIPALS_CHANGED``) for whoever remembers principals in this process; on
    PostgreSQL every other process hears a NOTIFY when the transaction commits."""
    conn.info[PRINCIPALS_CHANGED] = True
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, current_schema())"), {"channel": PRINCIPALS_CHANNEL}
        )
