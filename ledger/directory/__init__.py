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

from ledger.directory.model import (
    FLOWS_PER_NODE_MAX,
    FUNCTIONS_PER_NODE_MAX,
    LATITUDE_E6_MAX,
    LONGITUDE_E6_MAX,
    NODE_ID_MAX,
    NODE_TEXT_LEN_MAX,
    NODES_PAGE_MAX,
    SLUG_LEN_MAX,
    Flow,
    FlowDirection,
    NodePage,
    NodeRecord,
)
from ledger.directory.reads import get_node, search_nodes
from ledger.directory.writes import register_node, update_node

__all__ = [
    "FLOWS_PER_NODE_MAX",
    "FUNCTIONS_PER_NODE_MAX",
    "LATITUDE_E6_MAX",
    "LONGITUDE_E6_MAX",
    "NODES_PAGE_MAX",
    "NODE_ID_MAX",
    "NODE_TEXT_LEN_MAX",
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
