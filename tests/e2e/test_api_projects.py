"""Projects and pledges through the real app, without a chain, on both databases: a
finance node lists, opens and cancels; manual pledges fund a project and its units are
issued exactly; every refusal is problem+json with a stable code and changes nothing;
every POST replays its first answer; who may see and do what."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from ledger.core import with_check_character
from ledger.core.accounts import member_holder
from ledger.db.engine import read_connection
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.members import register_member

from .signin import MovableClock, sign_in, wallet

ADMIN, NORTH, RIVER, OLGA, PAT = wallet(41), wallet(42), wallet(43), wallet(44), wallet(45)
CAT = wallet(46).address  # pays by bank transfer; never signs in
ASSET = with_check_character("1M8GDM9A0KP042788")
OTHER_ASSETS = [with_check_character(f"1M8GDM9A0KP04279{n}") for n in range(3)]
PROBLEM = "application/problem+json"


def evidence(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def terms(asset_id: str = ASSET, **changes: Any) -> dict[str, Any]:
    """The network's example: the organizer puts in 20 % of a 30,000.00 EUR goal."""
    return {
        "title": "A greenhouse for the valley",
        "description": "Glass, heat and a watering line; the organizer operates it.",
        "organizer": OLGA.address,
        "asset_id": asset_id,
        "jurisdiction": "NL",
        "documents": [{"title": "Deed", "sha256": evidence("deed")}],
        "currency": "EUR",
        "goal_minor": "3000000",
        "min_pledge_minor": "7",
        "organizer_contribution_minor": "600000",
        "deadline": "2027-03-01T12:00:00Z",
        "total_units": 1_000_000,
        "retained_min_units": 100_000,
        "operator_share_bp": 1_000,
        "manual_pledges_allowed": True,
    } | changes


class World:
    """The app, its members signed in: an admin, two finance nodes, the organizer and a
    member who is neither."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.ledger: Ledger = cast(FastAPI, client.app).state.ledger
        ledger = self.ledger
        for who, name in ((NORTH, "North"), (RIVER, "River")):
            register_member(ledger, who.address, "finance_node", name, key=name, actor="test")
        self.admin = sign_in(client, ADMIN)
        self.north = sign_in(client, NORTH)
        self.river = sign_in(client, RIVER)
        self.olga = sign_in(client, OLGA)
        self.pat = sign_in(client, PAT)
        self.keys = 0

    def post(
        self, path: str, who: dict[str, str] | None, body: Any = None, key: str | None = None
    ) -> Any:
        self.keys += 1
        headers = (who or {}) | {"Idempotency-Key": key or f"k{self.keys}"}
        return self.client.post(path, json=body, headers=headers)

    def post_raw(self, path: str, who: dict[str, str], text: str) -> Any:
        """A body as exactly these bytes (a JSON number as written, say ``3e6``)."""
        self.keys += 1
        headers = who | {"Idempotency-Key": f"k{self.keys}", "Content-Type": "application/json"}
        return self.client.post(path, content=text.encode(), headers=headers)

    def get(self, path: str, who: dict[str, str] | None = None, **params: Any) -> Any:
        answer = self.client.get(path, headers=who or {}, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def digest(self) -> Any:
        return self.get("/v1/digest")

    def listed(self, body: dict[str, Any] | None = None) -> int:
        made = self.post("/v1/projects", self.north, body or terms())
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    def opened(self, body: dict[str, Any] | None = None) -> int:
        project_id = self.listed(body)
        assert self.post(f"/v1/projects/{project_id}/open", self.north).status_code == 200
        return project_id


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(
        Settings(admins=frozenset({ADMIN.address})), engine=engine, clock=MovableClock()
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def world(client: TestClient) -> World:
    return World(client)


def problem(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == code, answer.text


# -- the whole way: listed, opened, funded by manual pledges, units issued ---------------


def test_manual_pledges_fund_a_project_and_its_units_are_issued_exactly(world: World) -> None:
    made = world.post("/v1/projects", world.north, terms())
    assert made.status_code == 201, made.text
    project = made.json()
    project_id = project["id"]
    assert {k: project[k] for k in ("state", "lister", "organizer", "currency")} == {
        "state": "draft",
        "lister": NORTH.address,
        "organizer": OLGA.address,
        "currency": "EUR",
    }
    assert project["goal_minor"] == "3000000" and project["ledger_total_minor"] == "600000"
    assert project["escrow_address"] is None and project["onchain_total_minor"] is None
    assert project["deadline"] == "2027-03-01T12:00:00Z" and project["pledgers"] == 0
    assert project["documents"] == [{"title": "Deed", "sha256": evidence("deed")}]
    assert world.get(f"/v1/projects/{project_id}") == project  # public: no sign-in
    problem(world.client.get(f"/v1/projects/{project_id}/escrow"), 404, "no_escrow")

    opened = world.post(f"/v1/projects/{project_id}/open", world.north)
    assert opened.status_code == 200 and opened.json()["state"] == "open", opened.text

    def manual(contributor: str, amount: Any, paper: str) -> Any:
        body = {"contributor": contributor, "amount_minor": amount, "evidence_sha256": paper}
        answer = world.post(f"/v1/projects/{project_id}/manual-pledges", world.north, body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    # Amounts whose shares of 1,000,000 units do not divide evenly; strings and integers.
    first = manual(PAT.address, "1000001", evidence("bank-1"))
    assert first["pledge"] == {
        "seq": first["pledge"]["seq"],
        "project_id": project_id,
        "contributor": PAT.address,
        "amount_minor": "1000001",
        "evidence_sha256": evidence("bank-1"),
        "recorded_by": NORTH.address,
    }
    assert first["project"]["state"] == "open" and first["project"]["pledgers"] == 1
    manual(RIVER.address, 700_000, evidence("bank-2"))
    manual(PAT.address, "7", evidence("cash-3"))  # PAT again: one contributor, one share
    last = manual(CAT, 699_992, evidence("bank-4"))  # meets the goal: funded and issued
    assert last["project"]["state"] == "forwarded"
    assert last["project"]["ledger_total_minor"] == "3000000"
    assert last["project"]["manual_total_minor"] == "2400000"
    assert last["project"]["pledgers"] == 3

    cap = world.get(f"/v1/assets/{ASSET}/cap-table")
    units = {h["holder"]: int(h["units"]) for h in cap["holders"]}
    # Weights 600,000 : 1,000,008 : 700,000 : 699,992 of 3,000,000; the one unit left
    # by rounding down goes to the largest remainder (CAT's .67 over RIVER's .33).
    assert units == {
        member_holder(OLGA.address): 200_000,
        member_holder(PAT.address): 333_336,
        member_holder(RIVER.address): 233_333,
        member_holder(CAT): 233_331,
    }
    assert sum(units.values()) == cap["total_units"] == 1_000_000
    with read_connection(world.ledger.engine) as conn:
        assert verify(conn).ok

    mine = world.get("/v1/me/pledges", world.pat)
    assert mine == {
        "items": [
            {
                "project_id": project_id,
                "title": "A greenhouse for the valley",
                "state": "forwarded",
                "currency": "EUR",
                "chain_minor": "0",
                "manual_minor": "1000008",
                "total_minor": "1000008",
                "first_seq": first["pledge"]["seq"],
            }
        ],
        "next_cursor": None,
    }
    assert world.get("/v1/me/pledges", world.olga)["items"] == []  # her 20 % is a term


def test_who_sees_which_pledges(world: World) -> None:
    project_id = world.opened()
    for contributor, amount, paper in ((PAT.address, "100", "a"), (CAT, "200", "b")):
        body = {
            "contributor": contributor,
            "amount_minor": amount,
            "evidence_sha256": evidence(paper),
        }
        answer = world.post(f"/v1/projects/{project_id}/manual-pledges", world.north, body)
        assert answer.status_code == 201, answer.text
    path = f"/v1/projects/{project_id}/pledges"
    for who in (world.north, world.olga, world.admin):
        seen = world.get(path, who)
        assert seen["complete"] is True
        assert [(c["contributor"], c["total_minor"]) for c in seen["contributions"]] == [
            (PAT.address, "100"),
            (CAT, "200"),
        ]
        assert [m["contributor"] for m in seen["manual_pledges"]] == [PAT.address, CAT]
    own = world.get(path, world.pat)
    assert own["complete"] is False
    assert [c["contributor"] for c in own["contributions"]] == [PAT.address]
    assert [m["amount_minor"] for m in own["manual_pledges"]] == ["100"]
    stranger = world.get(path, world.river)  # a finance node, but not this project's
    assert (stranger["contributions"], stranger["manual_pledges"]) == ([], [])
    problem(world.client.get(path), 401, "credentials_missing")
    public = world.get(f"/v1/projects/{project_id}")  # the totals are public
    assert (public["pledgers"], public["manual_total_minor"]) == (2, "300")


def test_the_servers_funding_clock_fails_an_overdue_project_and_says_so(world: World) -> None:
    project_id = world.opened()
    app = cast(FastAPI, world.client.app)
    ready = world.get("/readyz")["deadlines"]
    assert (ready["state"], ready["failed"], ready["last_error"]) == ("running", 0, None)
    clock = cast(MovableClock, app.state.ledger.clock)
    clock.advance(timedelta(days=90).total_seconds())  # past the deadline, under the goal
    assert app.state.deadline_clock.tick() == [project_id]  # what its thread does each tick
    assert world.get(f"/v1/projects/{project_id}")["state"] == "failed"
    ready = world.get("/readyz")["deadlines"]
    assert (ready["state"], ready["failed"], ready["last_error"]) == ("running", 1, None)
    assert ready["last_run_at"] is not None


# -- listing, filters, pages ---------------------------------------------------------------


def test_projects_page_in_listing_order_and_filter_by_state(world: World) -> None:
    ids = [world.listed(terms(a)) for a in OTHER_ASSETS]
    assert world.post(f"/v1/projects/{ids[1]}/open", world.north).status_code == 200
    assert world.post(f"/v1/projects/{ids[2]}/cancel", world.north).status_code == 200
    first = world.get("/v1/projects", limit=2)
    assert [p["id"] for p in first["items"]] == ids[:2] and first["next_cursor"] == str(ids[1])
    rest = world.get("/v1/projects", limit=2, cursor=first["next_cursor"])
    assert [p["id"] for p in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    assert all(p["onchain_total_minor"] is None for p in first["items"] + rest["items"])
    by_state = {
        state: [p["id"] for p in world.get("/v1/projects", state=state)["items"]]
        for state in ("draft", "open", "cancelled", "forwarded")
    }
    assert by_state == {"draft": [ids[0]], "open": [ids[1]], "cancelled": [ids[2]], "forwarded": []}
    for params in ({"state": "sleeping"}, {"limit": 101}, {"limit": 0}, {"cursor": -1}):
        problem(world.client.get("/v1/projects", params=params), 422, "request_invalid")
    problem(world.client.get("/v1/projects/999999"), 404, "unknown_project")
    problem(world.client.get("/v1/projects/0"), 422, "request_invalid")
    problem(world.client.get("/v1/projects/x"), 422, "request_invalid")


def test_open_and_cancel_follow_the_states(world: World) -> None:
    project_id = world.listed()
    cancelled = world.post(f"/v1/projects/{project_id}/cancel", world.north)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    before = world.digest()
    problem(world.post(f"/v1/projects/{project_id}/open", world.north), 422, "project_state")
    problem(world.post(f"/v1/projects/{project_id}/cancel", world.north), 422, "project_state")
    assert world.digest() == before
    # The asset is free again once its project is cancelled.
    assert world.post("/v1/projects", world.north, terms()).status_code == 201


# -- refusals: a stable code each, and nothing changes ---------------------------------------

# (what is changed in the terms, status, code)
BAD_TERMS: list[tuple[dict[str, Any], int, str]] = [
    ({"organizer": "0x123"}, 422, "address_malformed"),
    ({"organizer": OLGA.address.lower()}, 422, "address_checksum"),
    ({"organizer": PAT.address.replace(PAT.address[2:], "0" * 40)}, 404, "unknown_member"),
    ({"goal_minor": 1.5}, 422, "request_invalid"),
    ({"goal_minor": 3_000_000.0}, 422, "request_invalid"),
    ({"goal_minor": "3000000.0"}, 422, "request_invalid"),
    ({"goal_minor": "3e6"}, 422, "request_invalid"),
    ({"goal_minor": 2**53}, 422, "request_invalid"),  # may have been rounded: a string, please
    ({"goal_minor": 10**40}, 422, "request_invalid"),
    ({"goal_minor": "1" + "0" * 40}, 422, "request_invalid"),  # 41 digits
    ({"goal_minor": "1" + "0" * 37}, 422, "amount_over_limit"),
    ({"goal_minor": -5}, 422, "request_invalid"),
    ({"goal_minor": "-5"}, 422, "request_invalid"),
    ({"goal_minor": "+5"}, 422, "request_invalid"),
    ({"goal_minor": " 5"}, 422, "request_invalid"),
    ({"goal_minor": "5\n"}, 422, "request_invalid"),
    ({"goal_minor": "0x10"}, 422, "request_invalid"),
    ({"goal_minor": "١٢"}, 422, "request_invalid"),  # digits, but not ASCII ones
    ({"goal_minor": True}, 422, "request_invalid"),
    ({"goal_minor": None}, 422, "request_invalid"),
    ({"goal_minor": "0"}, 422, "amount_not_positive"),
    ({"min_pledge_minor": "3000001"}, 422, "min_pledge_range"),
    ({"organizer_contribution_minor": "3000001"}, 422, "contribution_range"),
    ({"total_units": "1000000"}, 422, "request_invalid"),
    ({"total_units": 1e6}, 422, "request_invalid"),
    ({"retained_min_units": 1_000_001}, 422, "retained_units_range"),
    ({"operator_share_bp": 10_001}, 422, "request_invalid"),
    ({"manual_pledges_allowed": "yes"}, 422, "request_invalid"),
    ({"deadline": "2027-03-01"}, 422, "request_invalid"),
    ({"deadline": "2027-03-01T12:00:00"}, 422, "request_invalid"),  # no offset
    ({"deadline": "2027-02-30T12:00:00Z"}, 422, "request_invalid"),
    ({"deadline": "1803643200"}, 422, "request_invalid"),  # seconds are not a time here
    ({"deadline": 1803643200}, 422, "request_invalid"),
    ({"deadline": "2026-12-31T23:59:59Z"}, 422, "deadline_passed"),
    ({"deadline": "2031-01-01T00:00:00Z"}, 422, "deadline_too_far"),
    ({"currency": "XAU"}, 404, "unknown_currency"),
    ({"currency": "eur"}, 422, "request_invalid"),
    ({"asset_id": ASSET[:8] + "1" + ASSET[9:]}, 422, "asset_id_check_digit"),
    ({"legal_framework": "feudal"}, 422, "legal_framework"),
    ({"title": " "}, 422, "field_empty"),
    ({"documents": [{"title": "Deed", "sha256": "AB" * 32}]}, 422, "request_invalid"),
    ({"surprise": 1}, 422, "request_invalid"),
]


def _outcome(answer: Any) -> tuple[int, str | None, str | None]:
    body = answer.json() if answer.headers["content-type"] == PROBLEM else {}
    return answer.status_code, answer.headers["content-type"], body.get("code")


def test_bad_terms_are_refused_and_change_nothing(world: World) -> None:
    # One world for every case (a world per case costs a migrated database and five
    # sign-ins): each refusal must leave the journal as it found it.
    before = world.digest()
    wrong = {
        json.dumps(changes): outcome
        for changes, status, code in BAD_TERMS
        if (outcome := _outcome(world.post("/v1/projects", world.north, terms(**changes))))
        != (status, PROBLEM, code)
    }
    assert wrong == {}
    assert world.digest() == before
    assert world.get("/v1/projects")["items"] == []


def test_amounts_written_as_other_json_numbers_are_refused(world: World) -> None:
    before = world.digest()
    for number in ("3e6", "3E+6", "3000000.0", "3000000e0", "-1", "1" + "0" * 60):
        text = json.dumps(terms(goal_minor="PLACEHOLDER")).replace('"PLACEHOLDER"', number)
        answer = world.post_raw("/v1/projects", world.north, text)
        assert _outcome(answer) == (422, PROBLEM, "request_invalid"), number
    assert world.digest() == before


def test_only_a_finance_node_lists_a_project(world: World) -> None:
    before = world.digest()
    for who in (world.pat, world.olga, world.admin):
        problem(world.post("/v1/projects", who, terms()), 403, "not_finance_node")
    problem(world.post("/v1/projects", None, terms()), 401, "credentials_missing")
    assert world.digest() == before


def test_only_the_listing_node_acts_on_its_project(world: World) -> None:
    project_id = world.listed()
    pledge = {"contributor": PAT.address, "amount_minor": "100", "evidence_sha256": evidence("x")}
    before = world.digest()
    for who in (world.river, world.pat, world.olga):
        problem(world.post(f"/v1/projects/{project_id}/open", who), 403, "not_listing_node")
        problem(world.post(f"/v1/projects/{project_id}/cancel", who), 403, "not_listing_node")
        problem(
            world.post(f"/v1/projects/{project_id}/manual-pledges", who, pledge),
            403,
            "not_listing_node",
        )
    for path in ("open", "cancel", "manual-pledges"):
        answer = world.post(f"/v1/projects/{project_id}/{path}", None, pledge)
        problem(answer, 401, "credentials_missing")
    assert world.digest() == before
    assert world.get(f"/v1/projects/{project_id}")["state"] == "draft"


# (the manual pledge's body changes, status, code)
BAD_PLEDGES: list[tuple[dict[str, Any], int, str]] = [
    ({"amount_minor": "6"}, 422, "pledge_below_minimum"),
    ({"amount_minor": 6}, 422, "pledge_below_minimum"),
    ({"amount_minor": "7.0"}, 422, "request_invalid"),
    ({"amount_minor": 7.5}, 422, "request_invalid"),
    ({"amount_minor": "7e0"}, 422, "request_invalid"),
    ({"amount_minor": -7}, 422, "request_invalid"),
    ({"amount_minor": 2**60}, 422, "request_invalid"),
    ({"amount_minor": "0"}, 422, "amount_not_positive"),
    ({"contributor": "0xabc"}, 422, "address_malformed"),
    ({"contributor": ""}, 422, "request_invalid"),
    ({"evidence_sha256": "XYZ"}, 422, "sha256_malformed"),
    ({"evidence_sha256": evidence("seen")}, 409, "evidence_repeated"),
    ({"by": NORTH.address}, 422, "request_invalid"),
]


def test_bad_manual_pledges_are_refused_and_change_nothing(world: World) -> None:
    project_id = world.opened()
    path = f"/v1/projects/{project_id}/manual-pledges"
    good = {"contributor": PAT.address, "amount_minor": "7", "evidence_sha256": evidence("seen")}
    assert world.post(path, world.north, good).status_code == 201
    before = world.digest()
    wrong = {
        json.dumps(changes): outcome
        for changes, status, code in BAD_PLEDGES
        if (
            outcome := _outcome(
                world.post(path, world.north, good | {"evidence_sha256": evidence("new")} | changes)
            )
        )
        != (status, PROBLEM, code)
    }
    assert wrong == {}
    assert world.digest() == before
    assert world.get(f"/v1/projects/{project_id}")["manual_total_minor"] == "7"


def test_manual_pledges_only_where_the_project_takes_them(world: World) -> None:
    project_id = world.opened(terms(manual_pledges_allowed=False))
    pledge = {"contributor": PAT.address, "amount_minor": "100", "evidence_sha256": evidence("x")}
    before = world.digest()
    path = f"/v1/projects/{project_id}/manual-pledges"
    problem(world.post(path, world.north, pledge), 422, "manual_pledges_not_allowed")
    problem(
        world.post("/v1/projects/999999/manual-pledges", world.north, pledge),
        404,
        "unknown_project",
    )
    assert world.digest() == before


def test_a_project_without_a_chain_cannot_be_reconciled(world: World) -> None:
    world.opened()
    for path in ("/v1/reconciliation", "/v1/projects/1/reconciliation"):
        problem(world.client.get(path, headers=world.admin), 422, "chain_off")
        problem(world.client.get(path, headers=world.north), 422, "chain_off")
        problem(world.client.get(path, headers=world.pat), 403, "not_finance_node")
    ready = world.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["chain"] == {"state": "off"}


# -- idempotent replays --------------------------------------------------------------------


def test_every_post_replays_its_first_answer(world: World) -> None:
    made = world.post("/v1/projects", world.north, terms(), key="list-1")
    assert made.status_code == 201
    project_id = made.json()["id"]
    # The same amount, written the other way, is the same request.
    again = world.post("/v1/projects", world.north, terms(goal_minor=3_000_000), key="list-1")
    assert (again.status_code, again.json()) == (201, made.json())
    problem(
        world.post("/v1/projects", world.north, terms(title="Another"), key="list-1"),
        409,
        "idempotency_conflict",
    )
    opened = world.post(f"/v1/projects/{project_id}/open", world.north, key="open-1")
    assert opened.status_code == 200
    # The project moved on; its listing's replay still answers what it answered.
    replayed = world.post("/v1/projects", world.north, terms(), key="list-1")
    assert replayed.json() == made.json() and replayed.json()["state"] == "draft"
    assert world.post(f"/v1/projects/{project_id}/open", world.north, key="open-1").json() == (
        opened.json()
    )
    problem(
        world.post(f"/v1/projects/{project_id}/cancel", world.north, key="open-1"),
        409,
        "idempotency_conflict",
    )
    pledge = {"contributor": PAT.address, "amount_minor": "100", "evidence_sha256": evidence("x")}
    path = f"/v1/projects/{project_id}/manual-pledges"
    first = world.post(path, world.north, pledge, key="pledge-1")
    before = world.digest()
    second = world.post(path, world.north, pledge, key="pledge-1")
    assert (second.status_code, second.json()) == (201, first.json())
    assert world.digest() == before
    assert world.get(f"/v1/projects/{project_id}")["manual_total_minor"] == "100"
    # Keys are the caller's own: another node's same key is another request.
    problem(world.post(path, world.river, pledge, key="pledge-1"), 403, "not_listing_node")
    problem(
        world.client.post(path, json=pledge, headers=world.north), 400, "idempotency_key_missing"
    )


# -- the access matrix of the project routes (see tests/e2e/test_api_ledger.py) -----------


def test_every_project_write_is_refused_to_anonymous_and_to_others(world: World) -> None:
    project_id = world.listed()
    pledge = {"contributor": PAT.address, "amount_minor": "100", "evidence_sha256": evidence("m")}
    writes = [
        ("/v1/projects", terms(OTHER_ASSETS[0]), world.pat, "not_finance_node"),
        (f"/v1/projects/{project_id}/manual-pledges", pledge, world.river, "not_listing_node"),
        (f"/v1/projects/{project_id}/open", None, world.river, "not_listing_node"),
        (f"/v1/projects/{project_id}/cancel", None, world.river, "not_listing_node"),
    ]
    for path, body, other, code in writes:
        problem(world.post(path, None, body), 401, "credentials_missing")
        problem(world.post(path, other, body), 403, code)
        allowed = world.post(path, world.north, body)
        assert allowed.status_code in (200, 201), allowed.text
    finalize = f"/v1/projects/{project_id}/finalize"  # needs a chain: without one, 422
    problem(world.post(finalize, None), 401, "credentials_missing")
    problem(world.post(finalize, world.river), 403, "not_project_party")
    problem(world.post(finalize, world.north), 422, "chain_off")
    paths = world.client.get("/openapi.json").json()["paths"]
    project_writes = {
        (method.upper(), path)
        for path, operations in paths.items()
        if "/projects" in path
        for method in operations
        if method in ("post", "put", "patch", "delete")
    }
    assert project_writes == {
        ("POST", p.replace(str(project_id), "{project_id}")) for p, *_ in writes
    } | {("POST", "/v1/projects/{project_id}/finalize")}
