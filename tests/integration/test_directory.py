"""The network directory on SQLite and PostgreSQL: nodes registered and updated as
journal entries, found by function, flow, direction and place, a page at a time."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.core.errors import Conflict, InvalidInput, LedgerError, NotFound
from ledger.directory import (
    FLOWS_PER_NODE_MAX,
    FUNCTIONS_PER_NODE_MAX,
    Flow,
    NodeRecord,
    get_node,
    register_node,
    search_nodes,
    update_node,
)
from ledger.journal.reads import journal_page
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.members import register_member

from .network import ANN, BOB, CAT

WOODSHOP: dict[str, Any] = {
    "name": "Birch Street Woodshop",
    "place": "Tartu, Estonia",
    "latitude_e6": 58_378_025,
    "longitude_e6": 26_728_493,
    "functions": ["joinery", "cnc-milling"],
    "flows": [Flow("lumber", "in"), Flow("furniture", "out")],
}


@pytest.fixture
def members(ledger: Ledger) -> Ledger:
    for address in (ANN, BOB):
        register_member(ledger, address, "business", address[:8], key=f"m:{address}", actor="t")
    return ledger


def _register(ledger: Ledger, key: str, owner: str = ANN, **changes: Any) -> NodeRecord:
    return register_node(ledger, owner, **(WOODSHOP | changes), key=key, actor=owner)


def _kinds(ledger: Ledger) -> list[str]:
    with ledger.engine.connect() as conn:
        return [e.kind for e in reversed(journal_page(conn, limit=200))]


def test_registration_is_one_entry_with_the_whole_node(members: Ledger) -> None:
    node = _register(members, "n1")
    assert node.owner == ANN and node.name == "Birch Street Woodshop"
    assert (node.latitude_e6, node.longitude_e6) == (58_378_025, 26_728_493)
    assert node.functions == ("cnc-milling", "joinery")  # a set, kept sorted
    assert node.flows == (Flow("furniture", "out"), Flow("lumber", "in"))
    with members.engine.connect() as conn:
        assert get_node(conn, node.id) == node
        entry = journal_page(conn, limit=1)[0]
        assert verify(conn).ok
    assert entry.kind == "node.register" and entry.seq == node.id == node.registered_seq
    assert entry.actor == ANN
    assert entry.payload == {
        "owner": ANN,
        "name": "Birch Street Woodshop",
        "place": "Tartu, Estonia",
        "latitude_e6": 58_378_025,
        "longitude_e6": 26_728_493,
        "functions": ["cnc-milling", "joinery"],
        "flows": [
            {"flow": "furniture", "direction": "out"},
            {"flow": "lumber", "direction": "in"},
        ],
    }


def test_a_repeated_key_returns_the_registration_and_writes_nothing(members: Ledger) -> None:
    node = _register(members, "n1")
    update_node(members, node.id, **(WOODSHOP | {"name": "Renamed"}), key="u1", actor=ANN)
    before = _kinds(members)
    # The same request, even listed in another order, is the same registration.
    again = _register(members, "n1", functions=["cnc-milling", "joinery"])
    assert again == node  # as registered, not as since updated
    assert _kinds(members) == before
    with pytest.raises(Conflict) as caught:
        _register(members, "n1", place="Elsewhere")
    assert caught.value.code == "idempotency_conflict"
    assert _kinds(members) == before


def test_only_members_own_nodes(members: Ledger) -> None:
    with pytest.raises(NotFound) as caught:
        _register(members, "n1", owner=CAT)
    assert caught.value.code == "unknown_member"
    with pytest.raises(InvalidInput) as malformed:
        _register(members, "n2", owner=ANN.lower())
    assert malformed.value.code == "address_checksum"
    assert "node.register" not in _kinds(members)


# One database per backend for all of these: the checks come before any write, and a
# fresh database per case would cost more than the rest of the file.
BAD_CONTENT: list[tuple[dict[str, Any], str]] = [
    ({"functions": ["CNC-Milling"]}, "slug_malformed"),
    ({"functions": ["-milling"]}, "slug_malformed"),
    ({"functions": ["cnc milling"]}, "slug_malformed"),
    ({"functions": [""]}, "slug_malformed"),
    ({"functions": ["a" * 65]}, "slug_malformed"),
    ({"functions": ["joinery", "joinery"]}, "duplicate_function"),
    ({"functions": "joinery"}, "field_type"),
    ({"functions": [f"f{i}" for i in range(FUNCTIONS_PER_NODE_MAX + 1)]}, "too_many_functions"),
    ({"flows": [Flow("lumber", "sideways")]}, "flow_direction"),
    ({"flows": [Flow("Lumber", "in")]}, "slug_malformed"),
    ({"flows": [Flow("lumber", "in"), Flow("lumber", "in")]}, "duplicate_flow"),
    ({"flows": [Flow(f"f{i}", "in") for i in range(FLOWS_PER_NODE_MAX + 1)]}, "too_many_flows"),
    ({"latitude_e6": 90_000_001}, "coordinate_range"),
    ({"latitude_e6": -90_000_001}, "coordinate_range"),
    ({"longitude_e6": 180_000_001}, "coordinate_range"),
    ({"longitude_e6": -180_000_001}, "coordinate_range"),
    ({"latitude_e6": None}, "coordinates_incomplete"),
    ({"latitude_e6": True}, "coordinate_type"),
    ({"name": ""}, "field_empty"),
    ({"name": "   "}, "field_empty"),
    ({"name": "n" * 129}, "field_too_long"),
    ({"place": "Tartu\nEstonia"}, "field_control_character"),
]


def test_bad_content_is_refused_with_its_code(members: Ledger) -> None:
    node = _register(members, "n1")
    before = _kinds(members)
    for changes, code in BAD_CONTENT:
        with pytest.raises(InvalidInput) as registering:
            _register(members, "n2", **changes)
        with pytest.raises(InvalidInput) as updating:
            update_node(members, node.id, **(WOODSHOP | changes), key="u1", actor=ANN)
        assert registering.value.code == updating.value.code == code, changes
    assert _kinds(members) == before


def test_every_limit_is_inclusive(members: Ledger) -> None:
    node = _register(
        members,
        "n1",
        name="n" * 128,
        place="p" * 128,
        latitude_e6=-90_000_000,
        longitude_e6=180_000_000,
        functions=["a" * 64, *(f"f{i}" for i in range(FUNCTIONS_PER_NODE_MAX - 1))],
        flows=[Flow("lumber", "in"), *(Flow(f"f{i}", "out") for i in range(31))],
    )
    assert len(node.functions) == FUNCTIONS_PER_NODE_MAX
    assert len(node.flows) == FLOWS_PER_NODE_MAX
    bare = _register(members, "n2", latitude_e6=None, longitude_e6=None, functions=[], flows=[])
    assert (bare.latitude_e6, bare.functions, bare.flows) == (None, (), ())
    with members.engine.connect() as conn:
        assert get_node(conn, node.id) == node and get_node(conn, bare.id) == bare


def test_an_update_replaces_the_content_as_one_entry(members: Ledger) -> None:
    node = _register(members, "n1")
    new: dict[str, Any] = {
        "name": "Birch Street Works",
        "place": "Riga, Latvia",
        "latitude_e6": None,
        "longitude_e6": None,
        "functions": ["laser-cutting"],
        "flows": [Flow("lumber", "out"), Flow("plywood", "in")],
    }
    updated = update_node(members, node.id, **new, key="u1", actor=ANN)
    assert (updated.id, updated.owner, updated.registered_seq) == (node.id, ANN, node.id)
    assert updated.place == "Riga, Latvia" and updated.latitude_e6 is None
    assert updated.functions == ("laser-cutting",)
    assert updated.flows == (Flow("lumber", "out"), Flow("plywood", "in"))
    with members.engine.connect() as conn:
        assert get_node(conn, node.id) == updated
        entry = journal_page(conn, limit=1)[0]
        assert search_nodes(conn, function="joinery", limit=10).nodes == ()
        assert search_nodes(conn, flow="lumber", direction="in", limit=10).nodes == ()
        assert search_nodes(conn, flow="lumber", direction="out", limit=10).nodes == (updated,)
    assert (entry.kind, entry.actor) == ("node.update", ANN)
    assert entry.payload["node_id"] == node.id and entry.payload["owner"] == ANN
    assert entry.payload["functions"] == ["laser-cutting"]
    # Replayed: the update's own answer, nothing written, even after a later update.
    update_node(members, node.id, **WOODSHOP, key="u2", actor=ANN)
    before = _kinds(members)
    assert update_node(members, node.id, **new, key="u1", actor=ANN) == updated
    assert _kinds(members) == before
    with pytest.raises(Conflict) as caught:
        update_node(members, node.id, **WOODSHOP, key="u1", actor=ANN)
    assert caught.value.code == "idempotency_conflict"
    with pytest.raises(NotFound) as missing:
        update_node(members, node.id + 100, **new, key="u3", actor=ANN)
    assert missing.value.code == "unknown_node"
    with members.engine.connect() as conn:
        assert verify(conn).ok


def _ids(ledger: Ledger, **query: Any) -> list[int]:
    with ledger.engine.connect() as conn:
        return [n.id for n in search_nodes(conn, limit=50, **query).nodes]


def test_search_by_function_flow_direction_and_place(members: Ledger) -> None:
    shop = _register(members, "n1").id
    farm = _register(
        members,
        "n2",
        owner=BOB,
        name="Hill Farm",
        place="Valga County, ESTONIA",
        functions=["tomato-growing"],
        flows=[Flow("compost", "in"), Flow("tomato", "out"), Flow("lumber", "out")],
    ).id
    mill = _register(
        members,
        "n3",
        name="Mill",
        place="100% Lumber_Yard, Riga",
        functions=["sawing", "cnc-milling"],
        flows=[Flow("logs", "in"), Flow("lumber", "out")],
    ).id
    assert _ids(members) == [shop, farm, mill]
    assert _ids(members, function="cnc-milling") == [shop, mill]
    assert _ids(members, function="cnc") == []  # a function is named whole
    assert _ids(members, flow="lumber") == [shop, farm, mill]
    assert _ids(members, flow="lumber", direction="in") == [shop]
    assert _ids(members, flow="lumber", direction="out") == [farm, mill]
    assert _ids(members, place="estonia") == [shop, farm]
    assert _ids(members, place="TARTU") == [shop]
    # LIKE wildcards in the query are plain characters.
    assert _ids(members, place="100%") == [mill]
    assert _ids(members, place="%") == [mill]
    assert _ids(members, place="0_ lumber") == []  # "_" would match the "%"
    assert _ids(members, place="LUMBER_yard") == [mill]
    assert _ids(members, function="cnc-milling", flow="lumber", direction="out") == [mill]
    assert _ids(members, function="cnc-milling", place="estonia") == [shop]


def test_search_pages_by_id(members: Ledger) -> None:
    ids = [_register(members, f"n{i}", name=f"shop {i}").id for i in range(5)]
    _register(members, "other", functions=["welding"])
    seen: list[int] = []
    after: int | None = None
    pages = 0
    with members.engine.connect() as conn:
        while True:
            page = search_nodes(conn, function="joinery", after_id=after, limit=2)
            pages += 1
            seen += [n.id for n in page.nodes]
            assert [n.functions for n in page.nodes] == [("cnc-milling", "joinery")] * len(
                page.nodes
            )
            if page.next_after_id is None:
                break
            after = page.next_after_id
        # A page that ends exactly at the last match says so.
        exact = search_nodes(conn, function="joinery", after_id=ids[2], limit=2)
    assert seen == ids and pages == 3
    assert [n.id for n in exact.nodes] == ids[3:] and exact.next_after_id is None


BAD_SEARCHES: list[tuple[dict[str, Any], str]] = [
    ({"function": "CNC"}, "slug_malformed"),
    ({"flow": "a b"}, "slug_malformed"),
    ({"flow": "lumber", "direction": "up"}, "flow_direction"),
    ({"direction": "in"}, "direction_without_flow"),
    ({"place": ""}, "field_empty"),
    ({"limit": 0}, "limit_range"),
    ({"limit": 201}, "limit_range"),
    ({"after_id": -1}, "cursor_malformed"),
]


def test_bad_searches_are_refused(members: Ledger) -> None:
    with members.engine.connect() as conn:
        for query, code in BAD_SEARCHES:
            with pytest.raises(LedgerError) as caught:
                search_nodes(conn, **({"limit": 10} | query))
            assert caught.value.code == code, query


def test_an_unknown_node_is_not_found(members: Ledger) -> None:
    with members.engine.connect() as conn:
        with pytest.raises(NotFound) as caught:
            get_node(conn, 12345)
        assert caught.value.code == "unknown_node"
        with pytest.raises(InvalidInput):
            get_node(conn, 0)
