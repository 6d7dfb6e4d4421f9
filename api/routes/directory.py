"""The network directory: register your nodes, find others by function, flow or place."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import ledger_key
from api.policy import require_self
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, Page
from api.schemas.directory import NodeIn, NodeOut
from ledger.db.engine import read_connection
from ledger.directory import (
    NODE_ID_MAX,
    NODE_TEXT_LEN_MAX,
    SLUG_LEN_MAX,
    get_node,
    register_node,
    search_nodes,
    update_node,
)

router = APIRouter(prefix="/v1", tags=["directory"], responses=PROBLEM_RESPONSES)
NodeId = Annotated[int, Path(ge=1, le=NODE_ID_MAX)]


@router.post("/nodes", response_model=NodeOut, status_code=201)
def register(
    body: NodeIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey, response: Response
) -> NodeOut:
    """Register a node you own: where it is, the functions it performs and the flows it
    takes in or puts out."""
    node = register_node(
        ledger,
        caller.address,
        **body.content(),
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    response.headers["Location"] = f"/v1/nodes/{node.id}"
    return NodeOut.of(node)


@router.get("/nodes", response_model=Page[NodeOut])
def search(
    ledger: LedgerDep,
    function: Annotated[
        str | None, Query(max_length=SLUG_LEN_MAX, description="performs this function")
    ] = None,
    flow: Annotated[
        str | None, Query(max_length=SLUG_LEN_MAX, description="takes in or puts out this")
    ] = None,
    direction: Annotated[
        str | None, Query(max_length=3, description="with flow: 'in' or 'out' only")
    ] = None,
    place: Annotated[
        str | None, Query(max_length=NODE_TEXT_LEN_MAX, description="place contains this")
    ] = None,
    cursor: Annotated[
        int | None, Query(ge=1, le=NODE_ID_MAX, description="next_cursor of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
) -> Page[NodeOut]:
    """Find nodes by function, flow (and its direction) and place; every filter given
    must match. Oldest first. Anyone may search."""
    with read_connection(ledger.engine) as conn:
        found = search_nodes(
            conn,
            function=function,
            flow=flow,
            direction=direction,
            place=place,
            after_id=cursor,
            limit=limit,
        )
    next_cursor = None if found.next_after_id is None else str(found.next_after_id)
    return Page(items=[NodeOut.of(n) for n in found.nodes], next_cursor=next_cursor)


@router.get("/nodes/{node_id}", response_model=NodeOut)
def node(node_id: NodeId, ledger: LedgerDep) -> NodeOut:
    """A node's public record."""
    with read_connection(ledger.engine) as conn:
        return NodeOut.of(get_node(conn, node_id))


@router.put("/nodes/{node_id}", response_model=NodeOut)
def replace(
    node_id: NodeId, body: NodeIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> NodeOut:
    """Replace your node's name, place, coordinates, functions and flows."""
    with read_connection(ledger.engine) as conn:
        owner = get_node(conn, node_id).owner
    require_self(caller, owner)  # a node's owner never changes, so this stays true
    return NodeOut.of(
        update_node(
            ledger,
            node_id,
            **body.content(),
            key=ledger_key(caller.address, key),
            actor=caller.address,
        )
    )
