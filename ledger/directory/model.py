"""The directory's records and the checks every node's content passes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ledger.core import check_display_text
from ledger.core.canonical import JsonValue
from ledger.core.errors import InvalidInput
from ledger.db.schema import Node, NodeFlow, NodeFunction, table

NODE_TEXT_LEN_MAX = 128  # name and place
SLUG_LEN_MAX = 64
FUNCTIONS_PER_NODE_MAX = 32
FLOWS_PER_NODE_MAX = 32
LATITUDE_E6_MAX = 90_000_000
LONGITUDE_E6_MAX = 180_000_000
NODES_PAGE_MAX = 200
NODE_ID_MAX = 2**31 - 1  # ``nodes.id`` is a 32-bit integer column

_SLUG = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{SLUG_LEN_MAX - 1}}}")

NODES = table(Node)
FUNCTIONS = table(NodeFunction)
FLOWS = table(NodeFlow)


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
class Content:
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


def check_node_text(what: str, value: object) -> str:
    """A node's name or place: text for people (``ledger.core.check_display_text``), not
    blank, without control characters."""
    if not isinstance(value, str):
        raise InvalidInput("field_type", f"{what} must be text")
    return check_display_text(what, value, NODE_TEXT_LEN_MAX)


def check_slug(what: str, value: object) -> str:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise InvalidInput(
            "slug_malformed",
            f"{what} must be 1..{SLUG_LEN_MAX} of a-z 0-9 and '-', not starting with '-'",
            value=str(value)[:SLUG_LEN_MAX],
        )
    return value


def check_direction(value: object) -> str:
    try:
        return FlowDirection(value if isinstance(value, str) else "").value
    except ValueError:
        raise InvalidInput("flow_direction", "a flow's direction is 'in' or 'out'") from None


def check_coordinate(what: str, value: object, limit: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("coordinate_type", f"{what} must be an integer (microdegrees)")
    if not -limit <= value <= limit:
        raise InvalidInput("coordinate_range", f"{what} must be within ±{limit} microdegrees")
    return value


def check_node_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= NODE_ID_MAX:
        raise InvalidInput("node_id_range", f"a node id is an integer within 1..{NODE_ID_MAX}")
    return value


def checked_content(
    name: object,
    place: object,
    latitude_e6: object,
    longitude_e6: object,
    functions: Iterable[object],
    flows: Iterable[Flow],
) -> Content:
    """The content, checked and put in canonical order (functions and flows are sets)."""
    lat = check_coordinate("latitude_e6", latitude_e6, LATITUDE_E6_MAX)
    lon = check_coordinate("longitude_e6", longitude_e6, LONGITUDE_E6_MAX)
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
    checked_functions = [check_slug("a function", f) for f in function_list]
    if len(set(checked_functions)) != len(checked_functions):
        raise InvalidInput("duplicate_function", "a function is listed twice")
    checked_flows = [
        Flow(check_slug("a flow", f.flow), check_direction(f.direction)) for f in flow_list
    ]
    if len(set(checked_flows)) != len(checked_flows):
        raise InvalidInput("duplicate_flow", "a flow is listed twice with the same direction")
    return Content(
        check_node_text("name", name),
        check_node_text("place", place),
        lat,
        lon,
        tuple(sorted(checked_functions)),
        tuple(sorted(checked_flows)),
    )


def node_record(node_id: int, owner: str, content: Content) -> NodeRecord:
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
