"""Access: Sign-In with Ethereum (EIP-4361), bearer tokens, API keys and roles.

A challenge is the whole EIP-4361 message, built by the server and stored nowhere: its
nonce is an HMAC, under the deployment's ``siwe`` secret, of the message's address,
times, domain, URI and chain, so the server recognises its own challenges without
keeping them. Signing one with the wallet (EIP-191 personal message) and handing it
back yields a short-lived bearer token; only then is the nonce recorded, to refuse it a
second time, until it has expired. Tokens and API keys are stored as their SHA-256 only;
signing out deletes the token, and an API key may carry an expiry. Roles: ``admin``,
``finance_node``, ``operator`` (of one asset, or of any), and ``member`` for everyone
signed in; granting and revoking a role are journal entries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import Connection, Engine, delete, insert, select, text
from sqlalchemy.exc import IntegrityError

from ledger.address import validate_address
from ledger.core import EntryDraft, format_time, parse_time, validate_asset_id
from ledger.db.engine import read_connection, write_connection
from ledger.db.schema import AccessToken, ApiKey, AuthNonce, MemberRole, ServiceSecret, table
from ledger.errors import (
    IntegrityFailure,
    InvalidInput,
    NotFound,
    Refused,
    Unauthenticated,
)
from ledger.journal import Ledger
from ledger.members import MemberKind, find_member, register_member_in
from ledger.registry import get_asset

__all__ = [
    "CLOCK_SKEW_S",
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
    "revoke_role",
    "sign_out",
    "siwe_address",
]

PRINCIPALS_CHANNEL = "dpn_principals"  # PostgreSQL NOTIFY channel; the payload: the schema
PRINCIPALS_CHANGED = "dpn_principals_changed"  # the mark in Connection.info
TOKEN_PREFIX = "dpn_at_"
API_KEY_PREFIX = "dpn_key_"
CREDENTIAL_LEN_MAX = 128
MESSAGE_LEN_MAX = 2_048
SIGNATURE_LEN_MAX = 200
# Workers on several hosts read clocks that may disagree by this much: a challenge
# issued by one that runs ahead is not "from the future" to another, and a used nonce is
# kept this long past its expiry, while another worker might still take it as unexpired.
CLOCK_SKEW_S = 5
NONCES_PURGED_MAX = 100  # expired used nonces deleted at each sign-in
SIWE_SECRET = "siwe"  # the name of the secret in ``service_secrets``
_NONCE_HEX = 32
_NONCE = re.compile(rf"[0-9a-f]{{{_NONCE_HEX}}}")
_SIGNATURE = re.compile(r"(?:0x)?([0-9a-fA-F]{130})")
_STATEMENT = "Sign in to DPN Ledger."
# The parts of a sign-in message, line by line, as ``_siwe_message`` writes them.
_PARTS = (
    "domain",
    "address",
    "blank line",
    "statement",
    "blank line",
    "uri",
    "version",
    "chain_id",
    "nonce",
    "issued_at",
    "expiration_time",
)

_nonces = table(AuthNonce)
_tokens = table(AccessToken)
_grants = table(MemberRole)


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


# -- Sign-In with Ethereum ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Signed:
    """What a sign-in message says: the fields the server chose when it issued it."""

    address: str
    nonce: str
    issued: datetime
    expires: datetime


_secrets: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()
_secrets_lock = threading.Lock()


def _challenge_secret(engine: Engine) -> bytes:
    """The deployment's key for challenge nonces (made once, by migration 0005): read
    once per engine, as it never changes."""
    with _secrets_lock:
        found = _secrets.get(engine)
    if found is not None:
        return found
    secrets_table = table(ServiceSecret)
    with read_connection(engine, snapshot=False) as conn:
        row = conn.execute(
            select(secrets_table.c.secret).where(secrets_table.c.name == SIWE_SECRET)
        ).first()
    if row is None:
        raise IntegrityFailure(
            "service_secret_missing", f"no {SIWE_SECRET!r} service secret: migrate the database"
        )
    found = bytes.fromhex(row.secret)
    with _secrets_lock:
        _secrets[engine] = found
    return found


def _nonce(
    secret: bytes, terms: SiweTerms, address: str, issued: datetime, expires: datetime
) -> str:
    fields = [address, format_time(issued), format_time(expires), terms.domain, terms.uri]
    canonical = json.dumps([*fields, terms.chain_id], separators=(",", ":"))
    return hmac.new(secret, canonical.encode(), hashlib.sha256).hexdigest()[:_NONCE_HEX]


def _siwe_message(
    terms: SiweTerms, address: str, nonce: str, issued: datetime, expires: datetime
) -> str:
    return (
        f"{terms.domain} wants you to sign in with your Ethereum account:\n"
        f"{address}\n\n{_STATEMENT}\n\n"
        f"URI: {terms.uri}\nVersion: 1\nChain ID: {terms.chain_id}\nNonce: {nonce}\n"
        f"Issued At: {format_time(issued)}\nExpiration Time: {format_time(expires)}"
    )


def _malformed(part: str, message: str) -> Unauthenticated:
    return Unauthenticated("siwe_message_malformed", message, part=part)


def siwe_address(message: str) -> str:
    """The wallet an EIP-4361 message is for: the address on its second line (the
    signature check that it signed the message is ``redeem_signature``'s). Raises
    ``Unauthenticated(siwe_message_malformed)`` with ``part="address"``."""
    lines = message[:MESSAGE_LEN_MAX].split("\n", 2)
    try:
        return validate_address(lines[1] if len(lines) > 1 else "")
    except InvalidInput as bad:
        raise _malformed(
            "address", f"the message's second line must be the address: {bad.message}"
        ) from None


def _field(lines: list[str], label: str, part: str) -> str:
    found = [line.removeprefix(f"{label}: ") for line in lines if line.startswith(f"{label}: ")]
    if len(found) != 1:
        raise _malformed(part, f"the message must have one line '{label}: ...'")
    return found[0]


def _time_field(lines: list[str], label: str, part: str) -> datetime:
    value = _field(lines, label, part)
    try:
        return parse_time(value)
    except InvalidInput as bad:
        raise _malformed(part, f"{label}: {bad.message}") from None


def _parse(terms: SiweTerms, message: str) -> _Signed:
    """The fields of a sign-in message, checked to be exactly the message this service
    writes for them; else ``siwe_message_malformed`` or ``siwe_message_altered``, each
    naming the ``part``."""
    if len(message) > MESSAGE_LEN_MAX:
        raise _malformed("message", f"the message is longer than {MESSAGE_LEN_MAX} characters")
    address = siwe_address(message)
    lines = message.split("\n")
    nonce = _field(lines, "Nonce", "nonce")
    if not _NONCE.fullmatch(nonce):
        raise _malformed("nonce", f"the nonce must be {_NONCE_HEX} lowercase hex digits")
    issued = _time_field(lines, "Issued At", "issued_at")
    expires = _time_field(lines, "Expiration Time", "expiration_time")
    expected = _siwe_message(terms, address, nonce, issued, expires).split("\n")
    for n, (want, got) in enumerate(zip(expected, lines, strict=False)):
        if want != got:
            raise Unauthenticated(
                "siwe_message_altered",
                f"line {n + 1} ({_PARTS[n]}) is not as this service writes it: {want[:120]!r}",
                part=_PARTS[n],
            )
    if len(lines) != len(expected):
        raise Unauthenticated(
            "siwe_message_altered",
            f"the message must end after its {len(expected)} lines",
            part="message",
        )
    return _Signed(address, nonce, issued, expires)


def _signature_bytes(signature: str) -> bytes:
    found = _SIGNATURE.fullmatch(signature[:SIGNATURE_LEN_MAX])
    if found is None or len(signature) > SIGNATURE_LEN_MAX:
        raise Unauthenticated(
            "siwe_signature_malformed",
            "the signature must be 65 bytes as 130 hex digits, with or without 0x",
        )
    return bytes.fromhex(found.group(1))


def issue_challenge(ledger: Ledger, terms: SiweTerms, address: str) -> Challenge:
    """An EIP-4361 message for ``address`` to sign, valid for ``terms.challenge_ttl_s``.
    Nothing is stored: the nonce is the server's own HMAC of the message's fields."""
    validate_address(address)
    now = ledger.clock()
    expires = now + timedelta(seconds=terms.challenge_ttl_s)
    nonce = _nonce(_challenge_secret(ledger.engine), terms, address, now, expires)
    return Challenge(_siwe_message(terms, address, nonce, now, expires), nonce, expires)


def redeem_signature(ledger: Ledger, terms: SiweTerms, message: str, signature: str) -> TokenIssued:
    """Check a signed challenge and issue a bearer token; register the member on first
    sign-in. Refuses (``Unauthenticated``) a malformed signature or message (naming the
    part), a message this service would not write or whose nonce it did not make, one
    issued in the future, living longer than the terms allow or expired, a signature by
    anyone but the address in the message, and a nonce already used. The nonce is
    recorded in the token's transaction; used nonces are purged once expired."""
    raw_signature = _signature_bytes(signature)
    signed = _parse(terms, message)
    expected = _nonce(
        _challenge_secret(ledger.engine), terms, signed.address, signed.issued, signed.expires
    )
    if not hmac.compare_digest(signed.nonce, expected):
        raise Unauthenticated(
            "siwe_nonce_unknown", "this service issued no challenge with this nonce and fields"
        )
    now = ledger.clock()
    if signed.issued > now + timedelta(seconds=CLOCK_SKEW_S):
        raise Unauthenticated("siwe_issued_in_future", "the message is issued in the future")
    if signed.expires - signed.issued > timedelta(seconds=terms.challenge_ttl_s):
        raise Unauthenticated(
            "siwe_lifetime_too_long",
            f"a sign-in message lives at most {terms.challenge_ttl_s} seconds",
            limit=terms.challenge_ttl_s,
        )
    if now >= signed.expires:
        raise Unauthenticated("siwe_expired", "the sign-in message has expired")
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=raw_signature)
    except Exception:  # the library raises several kinds for a bad signature
        raise Unauthenticated("siwe_bad_signature", "the signature cannot be read") from None
    if signer != signed.address:
        raise Unauthenticated("siwe_wrong_signer", "the message was not signed by its address")
    with ledger.write() as tx:
        _purge_expired_nonces(tx.conn, now)
        try:
            tx.conn.execute(
                insert(_nonces).values(
                    nonce=signed.nonce,
                    address=signed.address,
                    message=message,
                    issued_at=signed.issued,
                    expires_at=signed.expires,
                    used_at=now,
                )
            )
        except IntegrityError:  # the primary key: another sign-in used it first
            raise Unauthenticated("siwe_nonce_used", "this nonce has already been used") from None
        if find_member(tx.conn, signed.address) is None:
            register_member_in(
                tx,
                signed.address,
                MemberKind.INDIVIDUAL,
                signed.address[:10],
                key=f"siwe:register:{signed.address}",
                actor=signed.address,
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=terms.token_ttl_s)
        tx.conn.execute(
            insert(_tokens).values(
                token_hash=digest_of(token),
                address=signed.address,
                issued_at=now,
                expires_at=expires,
            )
        )
    return TokenIssued(token, expires, signed.address)


def _purge_expired_nonces(conn: Connection, now: datetime) -> None:
    """Forget at most ``NONCES_PURGED_MAX`` used nonces past their expiry (and past the
    clock skew): an expired message is refused on its expiry alone."""
    past = now - timedelta(seconds=CLOCK_SKEW_S)
    oldest = select(_nonces.c.nonce).where(_nonces.c.expires_at < past).limit(NONCES_PURGED_MAX)
    conn.execute(delete(_nonces).where(_nonces.c.nonce.in_(oldest)))


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


# -- principals ---------------------------------------------------------------------------


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


# -- roles --------------------------------------------------------------------------------


def _role_request(
    address: str, role: str, asset_id: str | None
) -> tuple[Role, dict[str, str | None]]:
    validate_address(address)
    try:
        wanted = Role(role)
    except ValueError:
        raise InvalidInput("role_unknown", f"roles must be among {', '.join(Role)}") from None
    if asset_id is not None:
        validate_asset_id(asset_id)
        if wanted is not Role.OPERATOR:
            raise InvalidInput("role_asset", "only the operator role is granted per asset")
    return wanted, {"address": address, "role": wanted.value, "asset_id": asset_id}


def _grant_of(conn: Connection, address: str, role: Role, asset_id: str | None) -> int | None:
    return conn.execute(
        select(_grants.c.id).where(
            _grants.c.address == address,
            _grants.c.role == role.value,
            _grants.c.asset_id.is_(None) if asset_id is None else _grants.c.asset_id == asset_id,
        )
    ).scalar_one_or_none()


def grant_role(
    ledger: Ledger, address: str, role: str, asset_id: str | None, *, key: str, actor: str
) -> None:
    """Grant ``role`` (operator optionally of one asset) to a member; journaled."""
    granted, payload = _role_request(address, role, asset_id)
    draft = EntryDraft(kind="role.grant", idempotency_key=key, actor=actor, payload=payload)
    with ledger.write() as tx:
        if tx.replay_of(draft) is not None:
            return
        if find_member(tx.conn, address) is None:
            raise NotFound("unknown_member", f"no member {address}")
        if asset_id is not None:
            get_asset(tx.conn, asset_id)  # an operator of an asset that exists
        if _grant_of(tx.conn, address, granted, asset_id) is None:
            tx.conn.execute(
                insert(_grants).values(
                    address=address, role=granted.value, asset_id=asset_id, granted_seq=tx.next_seq
                )
            )
            announce_principals_changed(tx.conn)
        tx.append(draft)


def revoke_role(
    ledger: Ledger,
    address: str,
    role: str,
    asset_id: str | None,
    *,
    key: str,
    actor: str,
    admins: frozenset[str] = frozenset(),
) -> None:
    """Revoke a grant of ``role`` (operator of ``asset_id``, or of any asset when None);
    journaled as ``role.revoke``, and counted at once. Only that grant is revoked: a role
    also held otherwise (by the member's kind, by ``admins``, or for an operator of one
    asset, by a grant of any asset) remains.

    Refuses, writing nothing: a role that comes from no grant but from the member's kind
    (a finance node), from ``admins`` (``DPN_ADMINS``) or from being a member at all,
    ``Refused(role_not_granted)``; a role not held, ``NotFound(role_not_held)``."""
    revoked, payload = _role_request(address, role, asset_id)
    draft = EntryDraft(kind="role.revoke", idempotency_key=key, actor=actor, payload=payload)
    with ledger.write() as tx:
        if tx.replay_of(draft) is not None:
            return
        member = find_member(tx.conn, address)
        if member is None:
            raise NotFound("unknown_member", f"no member {address}")
        grant = _grant_of(tx.conn, address, revoked, asset_id)
        if grant is None:
            if revoked is Role.FINANCE_NODE and member.kind is MemberKind.FINANCE_NODE:
                raise Refused(
                    "role_not_granted",
                    f"{address} is a finance node by its member kind, not by a grant",
                )
            if revoked is Role.MEMBER:
                raise Refused("role_not_granted", "every member holds the member role")
            if revoked is Role.ADMIN and address in admins:
                raise Refused(
                    "role_not_granted",
                    f"{address} is an admin by DPN_ADMINS, not by a grant: remove it there",
                )
            held = f"{revoked.value} of {asset_id}" if asset_id else revoked.value
            raise NotFound("role_not_held", f"{address} holds no grant of {held}")
        tx.conn.execute(delete(_grants).where(_grants.c.id == grant))
        announce_principals_changed(tx.conn)
        tx.append(draft)
