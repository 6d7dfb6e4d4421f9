"""Reading the directory: one node, or a page of a search by capability, flow or place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from ledger.core.errors import InvalidInput, NotFound
from ledger.directory.model import (
    FLOWS,
    FUNCTIONS,
    NODES,
    NODES_PAGE_MAX,
    Content,
    Flow,
    NodePage,
    NodeRecord,
    check_direction,
    check_node_id,
    check_node_text,
    check_slug,
    node_record,
)

# -- reading ------------------------------------------------------------------------------


def _load(conn: Connection, rows: Sequence[Row[Any]]) -> list[NodeRecord]:
    """Records for node rows, with their functions and flows (two queries per page)."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    functions: dict[int, list[str]] = {i: [] for i in ids}
    flows: dict[int, list[Flow]] = {i: [] for i in ids}
    for node_id, function in conn.execute(
        select(FUNCTIONS.c.node_id, FUNCTIONS.c.function)
        .where(FUNCTIONS.c.node_id.in_(ids))
        .order_by(FUNCTIONS.c.node_id, FUNCTIONS.c.function)
    ):
        functions[node_id].append(function)
    for node_id, flow, direction in conn.execute(
        select(FLOWS.c.node_id, FLOWS.c.flow, FLOWS.c.direction)
        .where(FLOWS.c.node_id.in_(ids))
        .order_by(FLOWS.c.node_id, FLOWS.c.flow, FLOWS.c.direction)
    ):
        flows[node_id].append(Flow(flow, direction))
    return [
        node_record(
            r.id,
            r.owner,
            Content(
                r.name,
                r.place,
                r.latitude_e6,
                r.longitude_e6,
                tuple(functions[r.id]),
                tuple(flows[r.id]),
            ),
        )
        for r in rows
    ]


def get_node(conn: Connection, node_id: int) -> NodeRecord:
    """The node ``node_id``, or ``NotFound(unknown_node)``."""
    check_node_id(node_id)
    row = conn.execute(select(NODES).where(NODES.c.id == node_id)).first()
    if row is None:
        raise NotFound("unknown_node", f"no node {node_id}")
    return _load(conn, [row])[0]


def search_nodes(
    conn: Connection,
    *,
    function: str | None = None,
    flow: str | None = None,
    direction: str | None = None,
    place: str | None = None,
    after_id: int | None = None,
    limit: int,
) -> NodePage:
    """Nodes that perform ``function``, have ``flow`` (in ``direction``, if given) and
    whose place contains ``place`` (case-insensitive; letters outside ASCII fold as the
    database folds them), by increasing id after ``after_id``, at most ``limit``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= NODES_PAGE_MAX:
        raise InvalidInput("limit_range", f"limit must be within 1..{NODES_PAGE_MAX}")
    query = select(NODES).order_by(NODES.c.id).limit(limit + 1)
    if after_id is not None:
        if isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0:
            raise InvalidInput("cursor_malformed", "the cursor is not one this service gave")
        query = query.where(NODES.c.id > after_id)
    if function is not None:
        performs = select(FUNCTIONS.c.node_id).where(
            FUNCTIONS.c.function == check_slug("function", function)
        )
        query = query.where(NODES.c.id.in_(performs))
    if direction is not None and flow is None:
        raise InvalidInput("direction_without_flow", "a direction narrows a flow: name the flow")
    if flow is not None:
        has_flow = select(FLOWS.c.node_id).where(FLOWS.c.flow == check_slug("flow", flow))
        if direction is not None:
            has_flow = has_flow.where(FLOWS.c.direction == check_direction(direction))
        query = query.where(NODES.c.id.in_(has_flow))
    if place is not None:
        query = query.where(
            NODES.c.place.icontains(check_node_text("place", place), autoescape=True)
        )
    rows = conn.execute(query).all()
    more = len(rows) > limit
    nodes = _load(conn, rows[:limit])
    return NodePage(tuple(nodes), nodes[-1].id if more else None)
