"""Access: Sign-In with Ethereum (EIP-4361), bearer tokens, API keys and roles.

A challenge is the whole EIP-4361 message, built by the server and stored; signing it
with the wallet (EIP-191 personal message) and handing it back yields a short-lived
bearer token. A nonce works once and expires. Tokens and API keys are stored as their
SHA-256 only. Roles: ``admin``, ``finance_node``, ``operator`` (of one asset, or of any),
and ``member`` for everyone signed in; granting a role is a journal entry.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import Connection, insert, select, text, update

from ledger.address import validate_address
from ledger.core import EntryDraft, format_time, validate_asset_id
from ledger.db.schema import AccessToken, ApiKey, AuthNonce, MemberRole, table
from ledger.errors import InvalidInput, NotFound, Unauthenticated
from ledger.journal import Ledger
from ledger.members import MemberKind, find_member, register_member_in
from ledger.registry import get_asset

__all__ = [
    "Challenge",
    "Principal",
    "Role",
    "SiweTerms",
    "TokenIssued",
    "announce_principals_changed",
    "authenticate",
    "digest_of",
    "grant_role",
    "issue_challenge",
    "redeem_signature",
    "siwe_address",
]

PRINCIPALS_CHANNEL = "dpn_principals"  # PostgreSQL NOTIFY channel; the payload: the schema
PRINCIPALS_CHANGED = "dpn_principals_changed"  # the mark in Connection.info
TOKEN_PREFIX = "dpn_at_"
API_KEY_PREFIX = "dpn_key_"
MESSAGE_LEN_MAX = 2_048
SIGNATURE_LEN_MAX = 200
_NONCE = re.compile(r"^Nonce: ([0-9a-f]{32})$", re.MULTILINE)
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_STATEMENT = "Sign in to DPN Ledger."


class Role(StrEnum):
    ADMIN = "admin"
    FINANCE_NODE = "finance_node"
    OPERATOR = "operator"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class SiweTerms:
    """What the server writes into every sign-in message."""

    domain: str
    uri: str
    chain_id: int
    challenge_ttl_s: int = 300
    token_ttl_s: int = 3600


@dataclass(frozen=True, slots=True)
class Challenge:
    message: str
    nonce: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenIssued:
    access_token: str
    expires_at: datetime
    address: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and what they may act as."""

    address: str
    roles: frozenset[Role]
    operates: frozenset[str]  # asset ids this member operates
    via: str  # "token" or "api_key"
    expires_at: datetime | None = None  # the token's expiry; API keys last until revoked

    def has(self, role: Role) -> bool:
        """True if the caller holds ``role``."""
        return role in self.roles

    def operates_asset(self, asset_id: str) -> bool:
        """True for an operator of this asset (or of any asset), or an admin."""
        return Role.ADMIN in self.roles or asset_id in self.operates or "*" in self.operates


def digest_of(credential: str) -> str:
    """What is stored of a token or an API key: its SHA-256, never the thing itself."""
    return hashlib.sha256(credential.encode()).hexdigest()


def _siwe_message(
    terms: SiweTerms, address: str, nonce: str, issued: datetime, expires: datetime
) -> str:
    return (
        f"{terms.domain} wants you to sign in with your Ethereum account:\n"
        f"{address}\n\n{_STATEMENT}\n\n"
        f"URI: {terms.uri}\nVersion: 1\nChain ID: {terms.chain_id}\nNonce: {nonce}\n"
        f"Issued At: {format_time(issued)}\nExpiration Time: {format_time(expires)}"
    )


def siwe_address(message: str) -> str:
    """The wallet an EIP-4361 message is for: the address on its second line (the
    signature check that it signed the message is ``redeem_signature``'s)."""
    lines = message[:MESSAGE_LEN_MAX].split("\n", 2)
    try:
        return validate_address(lines[1] if len(lines) > 1 else "")
    except InvalidInput:
        raise Unauthenticated("siwe_malformed", "the message names no address") from None


def issue_challenge(ledger: Ledger, terms: SiweTerms, address: str) -> Challenge:
    """Build and store an EIP-4361 message for ``address`` to sign."""
    validate_address(address)
    now = ledger.clock()
    expires = now + timedelta(seconds=terms.challenge_ttl_s)
    nonce = secrets.token_hex(16)
    message = _siwe_message(terms, address, nonce, now, expires)
    with ledger.engine.begin() as conn:
        conn.execute(
            insert(table(AuthNonce)).values(
                nonce=nonce,
                address=address,
                message=message,
                issued_at=now,
                expires_at=expires,
                used_at=None,
            )
        )
    return Challenge(message, nonce, expires)


def redeem_signature(ledger: Ledger, terms: SiweTerms, message: str, signature: str) -> TokenIssued:
    """Check a signed challenge and issue a bearer token; register the member on first
    sign-in. Refuses (401) an unknown, used or expired nonce, an altered message and a
    signature by anyone but the address in the message."""
    if len(message) > MESSAGE_LEN_MAX or not _SIGNATURE.fullmatch(signature):
        raise Unauthenticated("siwe_malformed", "message or signature is malformed")
    found = _NONCE.search(message)
    if found is None:
        raise Unauthenticated("siwe_malformed", "the message names no nonce")
    nonces = table(AuthNonce)
    now = ledger.clock()
    with ledger.write() as tx:
        row = tx.conn.execute(select(nonces).where(nonces.c.nonce == found.group(1))).first()
        if row is None:
            raise Unauthenticated("siwe_nonce_unknown", "this nonce was never issued")
        if row.message != message:
            raise Unauthenticated("siwe_message_altered", "the message is not the one issued")
        if row.used_at is not None:
            raise Unauthenticated("siwe_nonce_used", "this nonce has already been used")
        if now >= row.expires_at:
            raise Unauthenticated("siwe_expired", "the sign-in message has expired")
        try:
            signer = Account.recover_message(encode_defunct(text=message), signature=signature)
        except Exception:  # the library raises several kinds for a bad signature
            raise Unauthenticated("siwe_bad_signature", "the signature cannot be read") from None
        if signer != row.address:
            raise Unauthenticated("siwe_wrong_signer", "the message was not signed by its address")
        used = tx.conn.execute(
            update(nonces)
            .where(nonces.c.nonce == row.nonce, nonces.c.used_at.is_(None))
            .values(used_at=now)
        )
        if used.rowcount != 1:
            raise Unauthenticated("siwe_nonce_used", "this nonce has already been used")
        if find_member(tx.conn, row.address) is None:
            register_member_in(
                tx,
                row.address,
                MemberKind.INDIVIDUAL,
                row.address[:10],
                key=f"siwe:register:{row.address}",
                actor=row.address,
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=terms.token_ttl_s)
        tx.conn.execute(
            insert(table(AccessToken)).values(
                token_hash=digest_of(token), address=row.address, issued_at=now, expires_at=expires
            )
        )
    return TokenIssued(token, expires, row.address)


def _roles_of(conn: Connection, address: str, admins: frozenset[str]) -> tuple[set[Role], set[str]]:
    roles = {Role.MEMBER}
    operates: set[str] = set()
    if address in admins:
        roles.add(Role.ADMIN)
    member = find_member(conn, address)
    if member is not None and member.kind is MemberKind.FINANCE_NODE:
        roles.add(Role.FINANCE_NODE)
    grants = table(MemberRole)
    for role, asset_id in conn.execute(
        select(grants.c.role, grants.c.asset_id).where(grants.c.address == address)
    ):
        roles.add(Role(role))
        if role == Role.OPERATOR:
            operates.add(asset_id or "*")
    return roles, operates


def authenticate(
    conn: Connection, bearer: str, now: datetime, admins: frozenset[str] = frozenset()
) -> Principal:
    """The principal behind a bearer token or API key, or ``Unauthenticated``."""
    if len(bearer) > 128:
        raise Unauthenticated("token_invalid", "the credential is not valid")
    digest = digest_of(bearer)
    if bearer.startswith(TOKEN_PREFIX):
        tokens = table(AccessToken)
        row = conn.execute(
            select(tokens.c.address, tokens.c.expires_at).where(tokens.c.token_hash == digest)
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
            select(keys.c.address, keys.c.roles, keys.c.revoked_at).where(keys.c.key_hash == digest)
        ).first()
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("api_key_invalid", "the API key is unknown or revoked")
        roles, operates = _roles_of(conn, key.address, admins)
        scoped = {Role(r) for r in key.roles.split(",") if r} | {Role.MEMBER}
        roles &= scoped
        return Principal(
            key.address,
            frozenset(roles),
            frozenset(operates if Role.OPERATOR in roles else ()),
            "api_key",
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


def grant_role(
    ledger: Ledger, address: str, role: str, asset_id: str | None, *, key: str, actor: str
) -> None:
    """Grant ``role`` (operator optionally of one asset) to a member; journaled."""
    validate_address(address)
    try:
        granted = Role(role)
    except ValueError:
        raise InvalidInput("role_unknown", f"roles must be among {', '.join(Role)}") from None
    if asset_id is not None:
        validate_asset_id(asset_id)
        if granted is not Role.OPERATOR:
            raise InvalidInput("role_asset", "only the operator role is granted per asset")
    draft = EntryDraft(
        kind="role.grant",
        idempotency_key=key,
        actor=actor,
        payload={"address": address, "role": granted.value, "asset_id": asset_id},
    )
    grants = table(MemberRole)
    with ledger.write() as tx:
        if tx.replay_of(draft) is not None:
            return
        if find_member(tx.conn, address) is None:
            raise NotFound("unknown_member", f"no member {address}")
        if asset_id is not None:
            get_asset(tx.conn, asset_id)  # an operator of an asset that exists
        exists = tx.conn.execute(
            select(grants.c.id).where(
                grants.c.address == address,
                grants.c.role == granted.value,
                grants.c.asset_id.is_(None) if asset_id is None else grants.c.asset_id == asset_id,
            )
        ).first()
        if exists is None:
            tx.conn.execute(
                insert(grants).values(
                    address=address, role=granted.value, asset_id=asset_id, granted_seq=tx.next_seq
                )
            )
            announce_principals_changed(tx.conn)
        tx.append(draft)
