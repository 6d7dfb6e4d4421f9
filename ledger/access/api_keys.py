"""API keys for automation: made by a signed-in member, shown once, stored as their
SHA-256, limited to some of the member's roles, revocable, optionally expiring (at most
``API_KEY_LIFETIME_MAX`` ahead), and at most ``API_KEYS_LIVE_MAX`` live (neither revoked
nor expired) a member. ``ledger.access.authenticate`` resolves them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from ledger.access.principals import (
    API_KEY_PREFIX,
    Principal,
    Role,
    announce_principals_changed,
    digest_of,
)
from ledger.core import check_display_text, format_time
from ledger.core.errors import Forbidden, InvalidInput, NotFound, Refused
from ledger.db.engine import write_connection
from ledger.db.schema import ApiKey, Member, table
from ledger.journal.write import Ledger

__all__ = [
    "API_KEYS_LIVE_MAX",
    "API_KEY_LIFETIME_MAX",
    "KEY_ID_LEN_MAX",
    "ApiKeyCreated",
    "ApiKeyRecord",
    "create_api_key",
    "list_api_keys",
    "revoke_api_key",
]

API_KEYS_LIVE_MAX = 50  # live keys a member: neither revoked nor expired
API_KEY_LIFETIME_MAX = timedelta(days=366)  # how far ahead a key's expiry may be
KEY_ID_LEN_MAX = 24
NAME_LEN_MAX = 64

_keys = table(ApiKey)
_members = table(Member)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A key as its owner sees it later: never the key itself."""

    id: str
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKeyCreated:
    id: str
    key: str  # shown once; only its hash is kept
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None


def create_api_key(
    ledger: Ledger,
    principal: Principal,
    name: str,
    roles: tuple[str, ...],
    expires_at: datetime | None = None,
) -> ApiKeyCreated:
    """A new API key for the caller, limited to ``roles`` (each one the caller holds),
    lasting until revoked or, given ``expires_at``, until then: a time in the future and
    at most ``API_KEY_LIFETIME_MAX`` ahead (else ``InvalidInput``)."""
    check_display_text("name", name, NAME_LEN_MAX)
    try:
        wanted = tuple(sorted({Role(r) for r in roles} | {Role.MEMBER}))
    except ValueError:
        raise InvalidInput("role_unknown", f"roles must be among {', '.join(Role)}") from None
    missing = [r for r in wanted if r not in principal.roles]
    if missing:
        raise Forbidden("role_not_held", f"you do not hold {', '.join(missing)}")
    now = ledger.clock()
    if expires_at is not None:
        expires_at = _check_expiry(expires_at, now)
    key_id = secrets.token_hex(8)
    key = f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    with write_connection(ledger.engine) as conn:
        # The member's row, locked on PostgreSQL (SQLite writers take turns already), so
        # that concurrent creations count one after another and never pass the cap.
        conn.execute(
            select(_members.c.address)
            .where(_members.c.address == principal.address)
            .with_for_update()
        )
        live = _live_keys(conn, principal.address, now)
        if live >= API_KEYS_LIVE_MAX:
            raise Refused(
                "api_keys_too_many",
                f"you hold {live} live API keys, the most allowed; revoke one first",
                limit=API_KEYS_LIVE_MAX,
            )
        conn.execute(
            insert(_keys).values(
                id=key_id,
                key_hash=digest_of(key),
                address=principal.address,
                name=name,
                roles=",".join(wanted),
                created_at=now,
                revoked_at=None,
                expires_at=expires_at,
            )
        )
    return ApiKeyCreated(key_id, key, name, tuple(str(r) for r in wanted), now, expires_at)


def _check_expiry(expires_at: datetime, now: datetime) -> datetime:
    """``expires_at`` in UTC, if it carries a zone and falls in the allowed window."""
    if expires_at.tzinfo is None:
        raise InvalidInput("time_naive", "a key's expiry must carry a time zone")
    if expires_at <= now:
        raise InvalidInput(
            "api_key_expiry_past", f"a key's expiry must be in the future, after {format_time(now)}"
        )
    if expires_at - now > API_KEY_LIFETIME_MAX:
        days = API_KEY_LIFETIME_MAX.days
        raise InvalidInput(
            "api_key_expiry_too_far", f"a key expires at most {days} days ahead", limit=days
        )
    return expires_at.astimezone(UTC)  # in range now: near enough to convert safely


def _live_keys(conn: Connection, address: str, now: datetime) -> int:
    count = conn.execute(
        select(func.count())
        .select_from(_keys)
        .where(
            _keys.c.address == address,
            _keys.c.revoked_at.is_(None),
            or_(_keys.c.expires_at.is_(None), _keys.c.expires_at > now),
        )
    ).scalar_one()
    return int(count)


def list_api_keys(
    conn: Connection, address: str, *, after_id: str | None, limit: int
) -> list[ApiKeyRecord]:
    """The member's API keys, revoked and expired ones too, oldest first, after the key ``after_id``
    (one of theirs, else ``InvalidInput(cursor_unknown)``)."""
    query = select(_keys).where(_keys.c.address == address)
    if after_id is not None:
        after = conn.execute(
            select(_keys.c.created_at).where(_keys.c.id == after_id, _keys.c.address == address)
        ).first()
        if after is None:
            raise InvalidInput("cursor_unknown", "the cursor names none of your API keys")
        query = query.where(
            or_(
                _keys.c.created_at > after.created_at,
                and_(_keys.c.created_at == after.created_at, _keys.c.id > after_id),
            )
        )
    rows = conn.execute(query.order_by(_keys.c.created_at, _keys.c.id).limit(limit))
    return [
        ApiKeyRecord(
            r.id, r.name, tuple(r.roles.split(",")), r.created_at, r.revoked_at, r.expires_at
        )
        for r in rows
    ]


def revoke_api_key(ledger: Ledger, principal: Principal, key_id: str) -> None:
    """Revoke one of the caller's API keys (a no-op if already revoked)."""
    with write_connection(ledger.engine) as conn:
        row = conn.execute(
            select(_keys.c.address, _keys.c.revoked_at).where(_keys.c.id == key_id[:KEY_ID_LEN_MAX])
        ).first()
        if row is None or row.address != principal.address:
            raise NotFound("unknown_api_key", f"you have no API key {key_id[:KEY_ID_LEN_MAX]!r}")
        if row.revoked_at is None:
            conn.execute(
                update(_keys).where(_keys.c.id == key_id).values(revoked_at=ledger.clock())
            )
            announce_principals_changed(conn)
