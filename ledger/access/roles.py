"""Roles granted and revoked by an admin: each a journal entry, and the change announced
to every worker that remembers principals.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from ledger.access.principals import Role, announce_principals_changed
from ledger.core import EntryDraft, EntryKind, validate_asset_id
from ledger.core.errors import (
    InvalidInput,
    NotFound,
    Refused,
)
from ledger.db.schema import MemberRole, table
from ledger.journal.write import Ledger
from ledger.registry.address import validate_address
from ledger.registry.assets import get_asset
from ledger.registry.members import MemberKind, find_member

_grants = table(MemberRole)


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
    draft = EntryDraft(kind=EntryKind.ROLE_GRANT, idempotency_key=key, actor=actor, payload=payload)
    with ledger.write() as tx:

        def grant(seq: int) -> None:
            if find_member(tx.conn, address) is None:
                raise NotFound("unknown_member", f"no member {address}")
            if asset_id is not None:
                get_asset(tx.conn, asset_id)  # an operator of an asset that exists
            if _grant_of(tx.conn, address, granted, asset_id) is None:
                tx.conn.execute(
                    insert(_grants).values(
                        address=address, role=granted.value, asset_id=asset_id, granted_seq=seq
                    )
                )
                announce_principals_changed(tx.conn)

        tx.append_once(draft, grant)


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
    draft = EntryDraft(
        kind=EntryKind.ROLE_REVOKE, idempotency_key=key, actor=actor, payload=payload
    )
    with ledger.write() as tx:

        def revoke(_seq: int) -> None:
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

        tx.append_once(draft, revoke)
