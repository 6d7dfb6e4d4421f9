"""The network directory: members' nodes, where they are and what they can do.

A node has a name, a place (free text) and optional coordinates in integer
microdegrees, the atomic functions it performs (``cnc-milling``) and the flows it
takes in or puts out (``lumber`` in, ``furniture`` out). Registering and updating a
node are journal entries (``node.register``, ``node.update``) whose payload is the
node's full new content; the directory rows are written in the same transaction and
only when the entry is new, so a repeated idempotency key changes nothing and returns
what was recorded then.

A node's id is the ``seq`` of the entry that registered it: ids follow from the
journal alone, and a replayed registration finds its node without a lookup.

Who may update a node is a rule of the HTTP API (``api.policy.require_self`` on the
node's owner); a node's owner never changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from ledger.address import validate_address
from ledger.core import Entry, EntryDraft
from ledger.core.canonical import JsonValue
from ledger.db.schema import Node, NodeFlow, NodeFunction, table
from ledger.errors import InvalidInput, NotFound, Refused
from ledger.journal import Ledger
from ledger.members import get_member

__all__ = [
    "FLOWS_PER_NODE_MAX",
    "FUNCTIONS_PER_NODE_MAX",
    "LATITUDE_E6_MAX",
    "LONGITUDE_E6_MAX",
    "NODES_PAGE_MAX",
    "NODE_ID_MAX",
    "NODE_REGISTER_KIND",
    "NODE_TEXT_LEN_MAX",
    "NODE_UPDATE_KIND",
    "SLUG_LEN_MAX",
    "Flow",
    "FlowDirection",
    "NodePage",
    "NodeRecord",
    "get_node",
    "register_node",
    "search_nodes",
    "update_node",
]

NODE_REGISTER_KIND = "node.register"
NODE_UPDATE_KIND = "node.update"
NODE_TEXT_LEN_MAX = 128  # name and place
SLUG_LEN_MAX = 64
FUNCTIONS_PER_NODE_MAX = 32
FLOWS_PER_NODE_MAX = 32
LATITUDE_E6_MAX = 90_000_000
LONGITUDE_E6_MAX = 180_000_000
NODES_PAGE_MAX = 200
NODE_ID_MAX = 2**31 - 1  # ``nodes.id`` is a 32-bit integer column

_SLUG = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{SLUG_LEN_MAX - 1}}}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_nodes = table(Node)
_functions = table(NodeFunction)
_flows = table(NodeFlow)


class FlowDirection(StrEnum):
    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True, order=True)
class Flow:
    """A flow a node takes in (``in``) or puts out (``out``), e.g. ``lumber`` in."""

    flow: str
    direction: str


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as recorded. ``functions`` and ``flows`` are sorted; ``id`` is the seq of
    the ``node.register`` entry (so it equals ``registered_seq``)."""

    id: int
    owner: str
    name: str
    place: str
    latitude_e6: int | None
    longitude_e6: int | None
    functions: tuple[str, ...]
    flows: tuple[Flow, ...]
    registered_seq: int


@dataclass(frozen=True, slots=True)
class NodePage:
    """One page of a search, by increasing id; ``next_after_id`` is None on the last."""

    nodes: tuple[NodeRecord, ...]
    next_after_id: int | None


@dataclass(frozen=True, slots=True)
class _Content:
    """A node's checked content: everything a register or an update sets."""

    name: str
    place: str
    latitude_e6: int | None
    longitude_e6: int | None
    functions: tuple[str, ...]
    flows: tuple[Flow, ...]

    def columns(self) -> dict[str, object]:
        return {
            "name": self.name,
            "place": self.place,
            "latitude_e6": self.latitude_e6,
            "longitude_e6": self.longitude_e6,
        }

    def payload(self) -> dict[str, JsonValue]:
        return {
            "name": self.name,
            "place": self.place,
            "latitude_e6": self.latitude_e6,
            "longitude_e6": self.longitude_e6,
            "functions": list(self.functions),
            "flows": [{"flow": f.flow, "direction": f.direction} for f in self.flows],
        }


# -- checking input -----------------------------------------------------------------------


def _text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("field_type", f"{what} must be text")
    if not value.strip():
        raise InvalidInput("field_empty", f"{what} must not be empty")
    if len(value) > NODE_TEXT_LEN_MAX:
        raise InvalidInput(
            "field_too_long", f"{what} is longer than {NODE_TEXT_LEN_MAX} characters"
        )
    if _CONTROL.search(value):
        raise InvalidInput("field_control_character", f"{what} contains a control character")
    return value


def _slug(what: str, value: object) -> str:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise InvalidInput(
            "slug_malformed",
            f"{what} must be 1..{SLUG_LEN_MAX} of a-z 0-9 and '-', not starting with '-'",
            value=str(value)[:SLUG_LEN_MAX],
        )
    return value


def _direction(value: object) -> str:
    try:
        return FlowDirection(value if isinstance(value, str) else "").value
    except ValueError:
        raise InvalidInput("flow_direction", "a flow's direction is 'in' or 'out'") from None


def _coordinate(what: str, value: object, limit: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("coordinate_type", f"{what} must be an integer (microdegrees)")
    if not -limit <= value <= limit:
        raise InvalidInput("coordinate_range", f"{what} must be within ±{limit} microdegrees")
    return value


def _node_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= NODE_ID_MAX:
        raise InvalidInput("node_id_range", f"a node id is an integer within 1..{NODE_ID_MAX}")
    return value


def _checked(
    name: object,
    place: object,
    latitude_e6: object,
    longitude_e6: object,
    functions: Iterable[object],
    flows: Iterable[Flow],
) -> _Content:
    """The content, checked and put in canonical order (functions and flows are sets)."""
    lat = _coordinate("latitude_e6", latitude_e6, LATITUDE_E6_MAX)
    lon = _coordinate("longitude_e6", longitude_e6, LONGITUDE_E6_MAX)
    if (lat is None) != (lon is None):
        raise InvalidInput("coordinates_incomplete", "give both latitude_e6 and longitude_e6")
    if isinstance(functions, str):
        raise InvalidInput("field_type", "functions must be a list of names")
    function_list = list(functions)
    if len(function_list) > FUNCTIONS_PER_NODE_MAX:
        raise InvalidInput(
            "too_many_functions", f"a node performs at most {FUNCTIONS_PER_NODE_MAX} functions"
        )
    flow_list = list(flows)
    if len(flow_list) > FLOWS_PER_NODE_MAX:
        raise InvalidInput("too_many_flows", f"a node has at most {FLOWS_PER_NODE_MAX} flows")
    checked_functions = [_slug("a function", f) for f in function_list]
    if len(set(checked_functions)) != len(checked_functions):
        raise InvalidInput("duplicate_function", "a function is listed twice")
    checked_flows = [Flow(_slug("a flow", f.flow), _direction(f.direction)) for f in flow_list]
    if len(set(checked_flows)) != len(checked_flows):
        raise InvalidInput("duplicate_flow", "a flow is listed twice with the same direction")
    return _Content(
        _text("name", name),
        _text("place", place),
        lat,
        lon,
        tuple(sorted(checked_functions)),
        tuple(sorted(checked_flows)),
    )


# -- writing ------------------------------------------------------------------------------


def _store_capabilities(conn: Connection, node_id: int, content: _Content) -> None:
    if content.functions:
        conn.execute(
            insert(_functions), [{"node_id": node_id, "function": f} for f in content.functions]
        )
    if content.flows:
        conn.execute(
            insert(_flows),
            [{"node_id": node_id, "flow": f.flow, "direction": f.direction} for f in content.flows],
        )


def _record(node_id: int, owner: str, content: _Content) -> NodeRecord:
    return NodeRecord(
        node_id,
        owner,
        content.name,
        content.place,
        content.latitude_e6,
        content.longitude_e6,
        content.functions,
        content.flows,
        registered_seq=node_id,
    )


def _recorded(entry: Entry, node_id: int) -> NodeRecord:
    """The node as an earlier entry left it: the answer to a replayed request. The
    payload is the one ``_Content.payload`` built, read back from the journal."""
    p: Mapping[str, Any] = entry.payload
    content = _Content(
        p["name"],
        p["place"],
        p["latitude_e6"],
        p["longitude_e6"],
        tuple(p["functions"]),
        tuple(Flow(f["flow"], f["direction"]) for f in p["flows"]),
    )
    return _record(node_id, p["owner"], content)


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
    content = _checked(name, place, latitude_e6, longitude_e6, functions, flows)
    draft = EntryDraft(
        kind=NODE_REGISTER_KIND,
        idempotency_key=key,
        actor=actor,
        payload={"owner": owner, **content.payload()},
    )
    with ledger.write() as tx:
        prior = tx.replay_of(draft)
        if prior is not None:
            return _recorded(prior, prior.seq)
        get_member(tx.conn, owner)
        node_id = tx.next_seq
        if node_id > NODE_ID_MAX:
            raise Refused("node_ids_exhausted", f"node ids end at {NODE_ID_MAX}")
        tx.conn.execute(
            insert(_nodes).values(
                id=node_id, owner=owner, registered_seq=node_id, **content.columns()
            )
        )
        _store_capabilities(tx.conn, node_id, content)
        tx.append(draft)
        return _record(node_id, owner, content)


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
    _node_id(node_id)
    content = _checked(name, place, latitude_e6, longitude_e6, functions, flows)
    with ledger.write() as tx:
        owner = tx.conn.execute(select(_nodes.c.owner).where(_nodes.c.id == node_id)).scalar()
        if owner is None:
            raise NotFound("unknown_node", f"no node {node_id}")
        draft = EntryDraft(
            kind=NODE_UPDATE_KIND,
            idempotency_key=key,
            actor=actor,
            payload={"node_id": node_id, "owner": owner, **content.payload()},
        )
        prior = tx.replay_of(draft)
        if prior is not None:
            return _recorded(prior, node_id)
        tx.conn.execute(update(_nodes).where(_nodes.c.id == node_id).values(**content.columns()))
        tx.conn.execute(delete(_functions).where(_functions.c.node_id == node_id))
        tx.conn.execute(delete(_flows).where(_flows.c.node_id == node_id))
        _store_capabilities(tx.conn, node_id, content)
        tx.append(draft)
        return _record(node_id, owner, content)


# -- reading ------------------------------------------------------------------------------


def _load(conn: Connection, rows: Sequence[Row[Any]]) -> list[NodeRecord]:
    """Records for node rows, with their functions and flows (two queries per page)."""
    ids = [row.id for row in rows]
    if not ids:
        return []
    functions: dict[int, list[str]] = {i: [] for i in ids}
    flows: dict[int, list[Flow]] = {i: [] for i in ids}
    for node_id, function in conn.execute(
        select(_functions.c.node_id, _functions.c.function)
        .where(_functions.c.node_id.in_(ids))
        .order_by(_functions.c.node_id, _functions.c.function)
    ):
        functions[node_id].append(function)
    for node_id, flow, direction in conn.execute(
        select(_flows.c.node_id, _flows.c.flow, _flows.c.direction)
        .where(_flows.c.node_id.in_(ids))
        .order_by(_flows.c.node_id, _flows.c.flow, _flows.c.direction)
    ):
        flows[node_id].append(Flow(flow, direction))
    return [
        _record(
            r.id,
            r.owner,
            _Content(
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
    _node_id(node_id)
    row = conn.execute(select(_nodes).where(_nodes.c.id == node_id)).first()
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
    query = select(_nodes).order_by(_nodes.c.id).limit(limit + 1)
    if after_id is not None:
        if isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0:
            raise InvalidInput("cursor_malformed", "the cursor is not one this service gave")
        query = query.where(_nodes.c.id > after_id)
    if function is not None:
        performs = select(_functions.c.node_id).where(
            _functions.c.function == _slug("function", function)
        )
        query = query.where(_nodes.c.id.in_(performs))
    if direction is not None and flow is None:
        raise InvalidInput("direction_without_flow", "a direction narrows a flow: name the flow")
    if flow is not None:
        has_flow = select(_flows.c.node_id).where(_flows.c.flow == _slug("flow", flow))
        if direction is not None:
            has_flow = has_flow.where(_flows.c.direction == _direction(direction))
        query = query.where(_nodes.c.id.in_(has_flow))
    if place is not None:
        query = query.where(_nodes.c.place.icontains(_text("place", place), autoescape=True))
    rows = conn.execute(query).all()
    more = len(rows) > limit
    nodes = _load(conn, rows[:limit])
    return NodePage(tuple(nodes), nodes[-1].id if more else None)
