"""Members: known by their EIP-55 checksummed Ethereum address; every change journaled."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, insert, select, update

from ledger.core import Entry, EntryDraft, EntryKind, check_display_text
from ledger.core.accounts import member_holder
from ledger.core.errors import Conflict, InvalidInput, NotFound
from ledger.db.schema import Member, table
from ledger.journal.write import Ledger, WriteTx
from ledger.registry.address import validate_address

__all__ = [
    "MemberKind",
    "MemberRecord",
    "find_member",
    "get_member",
    "member_holder",
    "register_member",
    "register_member_in",
    "update_member_name",
]

_members = table(Member)


class MemberKind(StrEnum):
    INDIVIDUAL = "individual"
    BUSINESS = "business"
    FINANCE_NODE = "finance_node"


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member as registered."""

    address: str
    kind: MemberKind
    name: str
    registered_seq: int


def register_member(
    ledger: Ledger, address: str, kind: str, name: str, *, key: str, actor: str
) -> MemberRecord:
    """Register a member by checksummed address; refuses an address already registered."""
    with ledger.write() as tx:
        return register_member_in(tx, address, kind, name, key=key, actor=actor)


def register_member_in(
    tx: WriteTx, address: str, kind: str, name: str, *, key: str, actor: str
) -> MemberRecord:
    """``register_member`` inside a write transaction the caller already holds."""
    validate_address(address)
    try:
        member_kind = MemberKind(kind)
    except ValueError:
        raise InvalidInput(
            "member_kind", f"member kind must be one of {', '.join(MemberKind)}"
        ) from None
    check_display_text("name", name, 128)
    draft = EntryDraft(
        kind=EntryKind.MEMBER_REGISTER,
        idempotency_key=key,
        actor=actor,
        payload={"address": address, "kind": member_kind.value, "name": name},
    )

    def insert_member(seq: int) -> None:
        if find_member(tx.conn, address) is not None:
            raise Conflict("member_exists", f"member {address} is already registered")
        tx.conn.execute(
            insert(_members).values(
                address=address, kind=member_kind.value, name=name, registered_seq=seq
            )
        )

    appended = tx.append_once(draft, insert_member)
    if not appended.replayed:  # as insert_member stored it
        return MemberRecord(address, member_kind, name, appended.entry.seq)
    found = find_member(tx.conn, address)
    if found is None:  # pragma: no cover - the replayed registration stored it
        raise NotFound("unknown_member", f"no member {address}")
    return found


def find_member(conn: Connection, address: str) -> MemberRecord | None:
    """The member with ``address``, or None."""
    row = conn.execute(select(_members).where(_members.c.address == address)).first()
    if row is None:
        return None
    return MemberRecord(row.address, MemberKind(row.kind), row.name, row.registered_seq)


def get_member(conn: Connection, address: str) -> MemberRecord:
    """The member with ``address``, or ``NotFound(unknown_member)``."""
    validate_address(address)
    found = find_member(conn, address)
    if found is None:
        raise NotFound("unknown_member", f"no member {address}")
    return found


def update_member_name(ledger: Ledger, address: str, name: str, *, key: str, actor: str) -> Entry:
    """Change a member's display name (journaled as ``member.update``)."""
    validate_address(address)
    check_display_text("name", name, 128)
    draft = EntryDraft(
        kind=EntryKind.MEMBER_UPDATE,
        idempotency_key=key,
        actor=actor,
        payload={"address": address, "name": name},
    )
    with ledger.write() as tx:

        def rename(_seq: int) -> None:
            get_member(tx.conn, address)
            tx.conn.execute(update(_members).where(_members.c.address == address).values(name=name))

        return tx.append_once(draft, rename).entry
