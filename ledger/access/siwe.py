"""Sign-In with Ethereum (EIP-4361): challenges and their redemption for a bearer token.

A challenge is the whole EIP-4361 message, built by the server and stored nowhere: its
nonce is an HMAC, under the deployment's ``siwe`` secret, of the message's address,
times, domain, URI and chain, so the server recognises its own challenges without
keeping them. Signing one with the wallet (EIP-191 personal message) and handing it
back yields a short-lived bearer token; only then is the nonce recorded, to refuse it a
second time, until it has expired.
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

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ledger.access.principals import TOKEN_PREFIX, digest_of
from ledger.core import format_time, parse_time
from ledger.core.errors import (
    IntegrityFailure,
    InvalidInput,
    Unauthenticated,
)
from ledger.db.engine import read_connection
from ledger.db.schema import AccessToken, AuthNonce, ServiceSecret, table
from ledger.journal.write import Ledger
from ledger.registry.address import validate_address
from ledger.registry.members import MemberKind, find_member, register_member_in

MESSAGE_LEN_MAX = 2_048
SIGNATURE_LEN_MAX = 200
# Workers on several hosts read clocks that may disagree by this much: a challenge
# issued by one that runs ahead is not "from the future" to another, and a used nonce is
# kept this long past its expiry, while another worker might still take it as unexpired.
CLOCK_SKEW_S = 5
NONCES_PURGED_MAX = 100  # expired used nonces deleted at each sign-in
TOKENS_PURGED_MAX = 100  # expired bearer tokens deleted at each sign-in
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
    # Imported here: eth_account (with py_ecc) takes half a second to import, and only a
    # sign-in needs it (the command line's other commands start without it).
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=raw_signature)
    except Exception:  # the library raises several kinds for a bad signature
        raise Unauthenticated("siwe_bad_signature", "the signature cannot be read") from None
    if signer != signed.address:
        raise Unauthenticated("siwe_wrong_signer", "the message was not signed by its address")
    with ledger.write() as tx:
        _purge_expired_nonces(tx.conn, now)
        _purge_expired_tokens(tx.conn, now)
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


def _purge_expired_tokens(conn: Connection, now: datetime) -> None:
    """Forget at most ``TOKENS_PURGED_MAX`` bearer tokens past their expiry (and past the
    clock skew): an expired token is refused on its expiry alone, so each sign-in clears
    more than it adds and the table holds about the tokens still alive."""
    past = now - timedelta(seconds=CLOCK_SKEW_S)
    oldest = (
        select(_tokens.c.token_hash).where(_tokens.c.expires_at < past).limit(TOKENS_PURGED_MAX)
    )
    conn.execute(delete(_tokens).where(_tokens.c.token_hash.in_(oldest)))


def _purge_expired_nonces(conn: Connection, now: datetime) -> None:
    """Forget at most ``NONCES_PURGED_MAX`` used nonces past their expiry (and past the
    clock skew): an expired message is refused on its expiry alone."""
    past = now - timedelta(seconds=CLOCK_SKEW_S)
    oldest = select(_nonces.c.nonce).where(_nonces.c.expires_at < past).limit(NONCES_PURGED_MAX)
    conn.execute(delete(_nonces).where(_nonces.c.nonce.in_(oldest)))
