"""Registering and updating nodes: journal entries, with the directory rows written in
the same transaction and only when the entry is new."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ledger.core import Entry, EntryDraft, EntryKind
from ledger.core.errors import NotFound, Refused
from ledger.directory.model import (
    FLOWS,
    FUNCTIONS,
    NODE_ID_MAX,
    NODES,
    Content,
    Flow,
    NodeRecord,
    check_node_id,
    checked_content,
    node_record,
)
from ledger.journal.write import Ledger
from ledger.registry.address import validate_address
from ledger.registry.members import get_member

# -- writing ------------------------------------------------------------------------------


def _store_capabilities(conn: Connection, node_id: int, content: Content) -> None:
    if content.functions:
        conn.execute(
            insert(FUNCTIONS), [{"node_id": node_id, "function": f} for f in content.functions]
        )
    if content.flows:
        conn.execute(
            insert(FLOWS),
            [{"node_id": node_id, "flow": f.flow, "direction": f.direction} for f in content.flows],
        )


def _recorded(entry: Entry, node_id: int) -> NodeRecord:
    """The node as an earlier entry left it: the answer to a replayed request. The
    payload is the one ``Content.payload`` built, read back from the journal."""
    p: Mapping[str, Any] = entry.payload
    content = Content(
        p["name"],
        p["place"],
        p["latitude_e6"],
        p["longitude_e6"],
        tuple(p["functions"]),
        tuple(Flow(f["flow"], f["direction"]) for f in p["flows"]),
    )
    return node_record(node_id, p["owner"], content)


def register_node(
    ledger: Ledger,
    owner: str,
    *,
    name: str,
    place: str,
    latitude_e6: int | None = None,
    longitude_e6: int | None = None,
    functions: Sequence[str],
    flows: Sequence[Flow],
    key: str,
    actor: str,
) -> NodeRecord:
    """Register a node owned by the member ``owner`` (``NotFound(unknown_member)`` if the
    address is not a member), as one ``node.register`` entry. A repeated ``key`` with the
    same request returns the node as registered then and writes nothing."""
    validate_address(owner)
    content = checked_content(name, place, latitude_e6, longitude_e6, functions, flows)
    draft = EntryDraft(
        kind=EntryKind.NODE_REGISTER,
        idempotency_key=key,
        actor=actor,
        payload={"owner": owner, **content.payload()},
    )
    with ledger.write() as tx:

        def insert_node(node_id: int) -> None:
            get_member(tx.conn, owner)
            if node_id > NODE_ID_MAX:
                raise Refused("node_ids_exhausted", f"node ids end at {NODE_ID_MAX}")
            tx.conn.execute(
                insert(NODES).values(
                    id=node_id, owner=owner, registered_seq=node_id, **content.columns()
                )
            )
            _store_capabilities(tx.conn, node_id, content)

        appended = tx.append_once(draft, insert_node)
        if appended.replayed:
            return _recorded(appended.entry, appended.entry.seq)
        return node_record(appended.entry.seq, owner, content)


def update_node(
    ledger: Ledger,
    node_id: int,
    *,
    name: str,
    place: str,
    latitude_e6: int | None = None,
    longitude_e6: int | None = None,
    functions: Sequence[str],
    flows: Sequence[Flow],
    key: str,
    actor: str,
) -> NodeRecord:
    """Replace a node's name, place, coordinates, functions and flows, as one
    ``node.update`` entry (``NotFound(unknown_node)`` if there is no such node). The
    caller has already checked that the actor may (the owner only). A repeated ``key``
    with the same request returns the node as that update left it and writes nothing."""
    check_node_id(node_id)
    content = checked_content(name, place, latitude_e6, longitude_e6, functions, flows)
    with ledger.write() as tx:
        owner = tx.conn.execute(select(NODES.c.owner).where(NODES.c.id == node_id)).scalar()
        if owner is None:
            raise NotFound("unknown_node", f"no node {node_id}")
        draft = EntryDraft(
            kind=EntryKind.NODE_UPDATE,
            idempotency_key=key,
            actor=actor,
            payload={"node_id": node_id, "owner": owner, **content.payload()},
        )

        def replace_node(_seq: int) -> None:
            tx.conn.execute(update(NODES).where(NODES.c.id == node_id).values(**content.columns()))
            tx.conn.execute(delete(FUNCTIONS).where(FUNCTIONS.c.node_id == node_id))
            tx.conn.execute(delete(FLOWS).where(FLOWS.c.node_id == node_id))
            _store_capabilities(tx.conn, node_id, content)

        appended = tx.append_once(draft, replace_node)
        if appended.replayed:
            return _recorded(appended.entry, node_id)
        return node_record(node_id, owner, content)
