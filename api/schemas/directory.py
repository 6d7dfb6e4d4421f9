"""The network directory: nodes, their functions and flows.

The bodies bound every size (string lengths, list lengths); the grammar of names, the
coordinate ranges and the flow directions are the ledger's to check, so that each
refusal carries the ledger's stable code (``slug_malformed``, ``coordinate_range``...).
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import Integer, Strict
from ledger.directory import (
    FLOWS_PER_NODE_MAX,
    FUNCTIONS_PER_NODE_MAX,
    NODE_TEXT_LEN_MAX,
    SLUG_LEN_MAX,
    Flow,
    NodeRecord,
)

__all__ = ["FlowIn", "FlowOut", "NodeContent", "NodeIn", "NodeOut"]

# Lengths only: a longer name is refused here, a malformed one by the ledger.
Slug = Annotated[str, StringConstraints(max_length=SLUG_LEN_MAX)]
NodeText = Annotated[str, StringConstraints(max_length=NODE_TEXT_LEN_MAX)]
# Bounds wide enough for any valid coordinate; the ledger checks the real range.
Microdegrees = Annotated[Integer, Field(ge=-(10**9), le=10**9)]
_SLUG_HELP = "a lowercase name: a-z, 0-9 and '-', not starting with '-', at most 64"


class NodeContent(TypedDict):
    """The content keyword arguments of ``register_node`` and ``update_node``."""

    name: str
    place: str
    latitude_e6: int | None
    longitude_e6: int | None
    functions: list[str]
    flows: list[Flow]


class FlowIn(Strict):
    flow: Slug = Field(description=f"what flows, {_SLUG_HELP}", examples=["lumber"])
    direction: Annotated[str, StringConstraints(max_length=3)] = Field(
        description="'in' (the node takes it in) or 'out' (the node puts it out)",
        examples=["in"],
    )

    def to_flow(self) -> Flow:
        """The ledger's form of this flow."""
        return Flow(self.flow, self.direction)


class FlowOut(BaseModel):
    flow: str
    direction: str


class NodeIn(Strict):
    """A node's whole content: what a registration sets and an update replaces."""

    name: NodeText = Field(examples=["Birch Street Woodshop"])
    place: NodeText = Field(description="where it is, free text", examples=["Tartu, Estonia"])
    latitude_e6: Microdegrees | None = Field(
        default=None, description="latitude in millionths of a degree (-90e6..90e6)"
    )
    longitude_e6: Microdegrees | None = Field(
        default=None, description="longitude in millionths of a degree (-180e6..180e6)"
    )
    functions: list[Slug] = Field(
        default_factory=list,
        max_length=FUNCTIONS_PER_NODE_MAX,
        description=f"the atomic functions the node performs, each {_SLUG_HELP}",
        examples=[["cnc-milling", "joinery"]],
    )
    flows: list[FlowIn] = Field(default_factory=list, max_length=FLOWS_PER_NODE_MAX)

    def content(self) -> NodeContent:
        """The keyword arguments ``register_node`` and ``update_node`` take."""
        return NodeContent(
            name=self.name,
            place=self.place,
            latitude_e6=self.latitude_e6,
            longitude_e6=self.longitude_e6,
            functions=list(self.functions),
            flows=[f.to_flow() for f in self.flows],
        )


class NodeOut(BaseModel):
    id: int
    owner: str
    name: str
    place: str
    latitude_e6: int | None
    longitude_e6: int | None
    functions: list[str]
    flows: list[FlowOut]
    registered_seq: int = Field(description="the journal entry that registered the node")

    @classmethod
    def of(cls, node: NodeRecord) -> NodeOut:
        """The wire form of a node."""
        return cls(
            id=node.id,
            owner=node.owner,
            name=node.name,
            place=node.place,
            latitude_e6=node.latitude_e6,
            longitude_e6=node.longitude_e6,
            functions=list(node.functions),
            flows=[FlowOut(flow=f.flow, direction=f.direction) for f in node.flows],
            registered_seq=node.registered_seq,
        )
