"""Leasing through the real app, on both databases: members offer and bid for a term,
the two meet in a lease that both read (as lessor and as lessee), the rent moves (less
the network's fee) and the units do not; the lease books are public (the asset's
terms and books, each book's depth and tape); cancelling, amending, who may see and do
what; and every refusal, of a bad term, of units leased out, of a lease to oneself, of
hostile bodies, is problem+json with a stable code and changes nothing (the journal's
head, every member's balances, holds, orders, lease orders and leases)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings

from .signin import MovableClock
from .test_api_orders import (
    ADMIN,
    ANN,
    ASSET,
    BOB,
    CAT,
    FEE_BPS,
    NOWHERE,
    PROBLEM,
    World,
    fee,
    problem,
)
from .test_orders_hostile import AMOUNTS, BODIES, FIELDS, INVALID

Q1 = "2027-01-01/2027-04-01"  # under way: the clock starts on 2027-01-01
Q2 = "2027-04-01/2027-07-01"
Q3 = "2027-07-01/2027-10-01"
Q4 = "2027-10-01/2028-01-01"
H1 = "2027-01-01/2027-07-01"  # overlaps Q1 and Q2
MEMBERS = ("ann", "bob", "cat")


class LeaseWorld(World):
    """The orders' world (ANN 600,000 units and 10,000.00 EUR, BOB 400,000 units and
    50,000.00 EUR, CAT nothing; tick 5, lot 10, a fee of 0.1 %), with leasing calls."""

    def lease(self, who: dict[str, str], key: str | None = None, **fields: Any) -> Any:
        """``POST /v1/lease-orders`` on ASSET's EUR book of Q2 unless ``fields`` say
        otherwise."""
        body = {"asset_id": ASSET, "currency": "EUR", "term": Q2} | fields
        return self.post("/v1/lease-orders", who, body, key)

    def leased(self, who: dict[str, str], **fields: Any) -> dict[str, Any]:
        return self.ok(self.lease(who, **fields))

    def lease_cancel(self, who: dict[str, str], order_id: int, key: str | None = None) -> Any:
        headers = who if key is None else who | {"Idempotency-Key": key}
        return self.client.delete(f"/v1/lease-orders/{order_id}", headers=headers)

    def lease_amend(self, who: dict[str, str], order_id: int, body: Any) -> Any:
        self.keys += 1
        headers = who | {"Idempotency-Key": f"k{self.keys}"}
        return self.client.patch(f"/v1/lease-orders/{order_id}", json=body, headers=headers)

    def book_path(self, term: str, currency: str = "EUR") -> str:
        return f"/v1/lease-markets/{ASSET}/{currency}/{term}"

    def everything(self) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """The journal's head, and each member's holdings, orders, lease orders and
        leases."""
        head, holdings, orders = super().everything()
        for name in MEMBERS:
            who = getattr(self, name)
            orders[name] = (
                orders[name],
                self.get("/v1/lease-orders", who),
                self.get("/v1/leases", who),
            )
        return head, holdings, orders


@pytest.fixture
def world(engine: Engine) -> Iterator[LeaseWorld]:
    clock = MovableClock()
    settings = Settings(admins=frozenset({ADMIN.address}), market_fee_bps=FEE_BPS)
    with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
        yield LeaseWorld(client, clock)


# -- the whole way: offered, bid, leased, read on both sides, cancelled --------------------


def test_an_offer_and_a_bid_meet_in_a_lease_that_moves_rent_not_units(world: LeaseWorld) -> None:
    offer = world.ok(
        world.lease(world.ann, "ann-1", side="offer", price_minor="20", qty_units=1000)
    )
    assert {k: offer[k] for k in ("term", "side", "type", "status", "leases")} == {
        "term": Q2,
        "side": "offer",
        "type": "limit",
        "status": "open",
        "leases": [],
    }
    # A lease order rests until its term ends at the latest: GTC comes back as GTD.
    assert (offer["time_in_force"], offer["expires_at"]) == ("GTD", "2027-07-01T00:00:00Z")
    assert (offer["price_minor"], offer["qty_units"], offer["remaining_units"]) == (
        "20",
        "1000",
        "1000",
    )
    assert world.units(world.ann) == (600_000, 1000, 599_000)

    # BOB bids 25 for 400: he pays the offer's rent, 20 a unit; his hold gives back the rest.
    bid_body = {"asset_id": ASSET, "currency": "EUR", "term": Q2, "side": "bid"}
    bid = world.ok(
        world.post(
            "/v1/lease-orders",
            world.bob,
            bid_body | {"price_minor": 25, "qty_units": "400"},
            "bob-1",
        )
    )
    rent = 20 * 400
    lease = {
        "id": bid["leases"][0]["id"],
        "asset_id": ASSET,
        "currency": "EUR",
        "term": Q2,
        "starts_at": "2027-04-01T00:00:00Z",
        "ends_at": "2027-07-01T00:00:00Z",
        "price_minor": "20",
        "qty_units": "400",
        "rent_minor": str(rent),
        "fee_minor": str(fee(rent)),
        "lessor": ANN.address,
        "lessee": BOB.address,
        "maker_order_id": offer["id"],
        "taker_order_id": bid["id"],
        "taker_side": "bid",
        "executed_at": bid["placed_at"],
    }
    assert bid["leases"] == [lease]
    assert (bid["status"], bid["filled_units"], bid["filled_minor"]) == ("filled", "400", str(rent))
    # The rent moved, less the fee; the units did not: ANN still holds them all, the
    # offer's rest held, and BOB's are his own as before.
    assert world.eur(world.bob) == (5_000_000 - rent, 0, 5_000_000 - rent)
    paid = 1_000_000 + rent - fee(rent)
    assert world.eur(world.ann) == (paid, 0, paid)
    assert world.units(world.ann) == (600_000, 600, 599_400)
    assert world.units(world.bob) == (400_000, 0, 400_000)

    # Each side reads the lease, in its role; a role filter leaves the other out.
    assert world.get("/v1/leases", world.ann)["items"] == [
        lease | {"role": "lessor", "order_id": offer["id"]}
    ]
    assert world.get("/v1/leases", world.bob)["items"] == [
        lease | {"role": "lessee", "order_id": bid["id"]}
    ]
    assert world.get("/v1/leases", world.ann, role="lessor")["items"] != []
    assert world.get("/v1/leases", world.ann, role="lessee")["items"] == []
    assert world.get("/v1/leases", world.bob, role="lessor")["items"] == []
    assert world.get("/v1/leases", world.cat)["items"] == []
    mine = world.get(f"/v1/lease-orders/{offer['id']}", world.ann)
    assert mine["leases"] == [lease]
    assert (mine["status"], mine["filled_units"], mine["remaining_units"]) == ("open", "400", "600")

    # Lease orders are not trading orders, and the other way round.
    assert world.get("/v1/orders", world.ann)["items"] == []
    assert [o["id"] for o in world.get("/v1/lease-orders", world.ann)["items"]] == [offer["id"]]
    problem(world.client.get(f"/v1/orders/{offer['id']}", headers=world.ann), 404, "unknown_order")
    sell = world.placed(world.ann, side="sell", price_minor=250, qty_units=10)
    problem(
        world.client.get(f"/v1/lease-orders/{sell['id']}", headers=world.ann), 404, "unknown_order"
    )
    assert [o["id"] for o in world.get("/v1/orders", world.ann)["items"]] == [sell["id"]]
    assert world.get("/v1/lease-orders", world.ann)["items"][0]["id"] == offer["id"]

    # The same key and body again: the same order with its lease; another body is refused.
    head = world.head()
    again = world.post(
        "/v1/lease-orders", world.bob, bid_body | {"price_minor": "25", "qty_units": 400}, "bob-1"
    )
    assert again.status_code == 201 and again.json() == bid
    other = world.post(
        "/v1/lease-orders", world.bob, bid_body | {"price_minor": 30, "qty_units": 400}, "bob-1"
    )
    problem(other, 409, "idempotency_conflict")
    assert world.head() == head

    # The public lease book: its depth, its tape, the asset's books; the trading book
    # holds only the trading sell.
    depth = world.get(f"{world.book_path(Q2)}/book")
    assert (depth["term"], depth["bids"]) == (Q2, [])
    assert depth["asks"] == [{"price_minor": "20", "qty_units": "600", "orders": 1}]
    assert world.get(f"/v1/markets/{ASSET}/EUR/book")["asks"] == [
        {"price_minor": "250", "qty_units": "10", "orders": 1}
    ]
    tape = world.get(f"{world.book_path(Q2)}/leases")
    assert tape["items"] == [
        {k: lease[k] for k in ("id", "price_minor", "qty_units", "rent_minor", "maker_order_id",
                                "taker_order_id", "taker_side", "executed_at")}
    ]  # fmt: skip
    assert tape["next_cursor"] == str(lease["id"])
    assert world.get(f"{world.book_path(Q3)}/leases")["items"] == []
    assert world.get(f"{world.book_path(Q3)}/book")["asks"] == []
    market = world.get(f"/v1/lease-markets/{ASSET}")
    assert (market["lease_period"], market["next_terms"]) == ("quarter", [Q1, Q2, Q3, Q4])
    assert market["books"] == [
        {
            "currency": "EUR",
            "term": Q2,
            "starts_at": "2027-04-01T00:00:00Z",
            "ends_at": "2027-07-01T00:00:00Z",
            "best_bid_minor": None,
            "best_ask_minor": "20",
        }
    ]

    # Cancelled: the rest of the units come back; a repeat answers the same.
    problem(world.lease_cancel(world.bob, offer["id"]), 403, "not_your_order")
    cancelled = world.ok(world.lease_cancel(world.ann, offer["id"]))
    assert (cancelled["status"], cancelled["reason"], cancelled["filled_units"]) == (
        "cancelled",
        "user",
        "400",
    )
    assert world.units(world.ann) == (600_000, 10, 599_990)  # the trading sell's 10
    repeat = world.ok(world.lease_cancel(world.ann, offer["id"]))
    assert repeat["status"] == "cancelled" and repeat["leases"] == [lease]
    assert world.get(f"/v1/lease-markets/{ASSET}")["books"][0]["best_ask_minor"] is None
    assert world.get("/v1/verify", world.admin)["ok"] is True


def test_leased_out_units_are_neither_sold_nor_leased_again(world: LeaseWorld) -> None:
    offer = world.leased(world.ann, side="offer", price_minor=5, qty_units=590_000)
    world.leased(world.bob, side="bid", price_minor=5, qty_units=590_000)
    assert world.get(f"/v1/lease-orders/{offer['id']}", world.ann)["status"] == "filled"
    assert world.units(world.ann) == (600_000, 0, 600_000)  # all hers, 590,000 promised
    before = world.everything()
    sold = problem(
        world.order(world.ann, side="sell", price_minor=100, qty_units=10_010),
        422,
        "units_leased_out",
    )
    assert sold["promised_units"] == "590000"
    problem(
        world.lease(world.ann, term=H1, side="offer", price_minor=5, qty_units=10_010),
        422,
        "units_leased_out",
    )
    problem(
        world.lease(world.ann, side="offer", price_minor=5, qty_units=10_010),
        422,
        "units_leased_out",
    )
    # Nor given away: a transfer of units goes through the engine too.
    units = {"recipient": CAT.address, "instrument": f"units:{ASSET}"}
    problem(
        world.post("/v1/transfers", world.ann, units | {"amount": "10010"}), 422, "units_leased_out"
    )
    assert world.everything() == before
    # An amended offer wants its new units free over the term too.
    small = world.leased(world.ann, term=H1, side="offer", price_minor=5, qty_units=10)
    before = world.everything()
    problem(
        world.lease_amend(world.ann, small["id"], {"qty_units": 10_010}), 422, "units_leased_out"
    )
    assert world.everything() == before
    amended = world.ok(world.lease_amend(world.ann, small["id"], {"price_minor": 10}))
    assert (amended["price_minor"], amended["term"], amended["side"]) == ("10", H1, "offer")
    world.ok(world.lease_cancel(world.ann, small["id"]))
    # The free rest sells; after Q2, the units are free to lease again.
    world.placed(world.ann, side="sell", price_minor=100, qty_units=10_000)
    world.leased(world.ann, term=Q3, side="offer", price_minor=5, qty_units=590_000)
    assert world.units(world.ann) == (600_000, 600_000, 0)
    assert world.get("/v1/verify", world.admin)["ok"] is True


def test_every_refusal_is_a_problem_and_changes_nothing(world: LeaseWorld) -> None:
    resting = world.leased(world.ann, side="offer", price_minor=20, qty_units=100)
    sell = world.placed(world.ann, side="sell", price_minor=250, qty_units=10)
    rid, sid = resting["id"], sell["id"]
    bid = {"side": "bid", "price_minor": 10, "qty_units": 10}
    offer = {"side": "offer", "price_minor": 10, "qty_units": 10}
    orders: list[tuple[dict[str, str], dict[str, Any], int, str]] = [
        (world.bob, bid | {"term": "2027-02-01/2027-05-01"}, 422, "term_off_boundary"),
        (world.bob, bid | {"term": "2027-04-15/2027-07-01"}, 422, "term_off_boundary"),
        (world.bob, bid | {"term": "2026-07-01/2026-10-01"}, 422, "term_in_past"),
        (world.bob, bid | {"term": "2027-07-01/2027-04-01"}, 422, "term_ends_before_start"),
        (world.bob, bid | {"term": "2027-04-01/2027-04-01"}, 422, "term_ends_before_start"),
        (world.bob, bid | {"term": "2027-13-01/2028-01-01"}, 422, "term_malformed"),
        (world.bob, bid | {"term": "2027-02-30/2027-07-01"}, 422, "term_malformed"),
        (world.bob, bid | {"term": "Q2"}, 422, "term_malformed"),
        (world.bob, bid | {"term": "2027-04-01 2027-07-01"}, 422, "term_malformed"),
        (world.bob, bid | {"term": "2027-01-01/2029-01-01"}, 422, "term_too_long"),
        (world.bob, bid | {"term": "2029-01-01/2029-04-01"}, 422, "term_too_far"),
        (world.bob, bid | {"asset_id": NOWHERE}, 404, "unknown_asset"),
        (world.bob, bid | {"currency": "XAU"}, 404, "unknown_currency"),
        (world.bob, bid | {"currency": "eur"}, 422, "currency_malformed"),
        (world.ann, bid, 422, "lease_to_self"),
        (world.cat, offer, 422, "insufficient_units"),
        (world.cat, bid, 422, "insufficient_funds"),
        (world.ann, offer | {"qty_units": 599_900}, 422, "insufficient_units"),
        (world.bob, bid | {"price_minor": 11}, 422, "price_off_tick"),
        (world.bob, bid | {"qty_units": 15}, 422, "qty_off_lot"),
        (world.bob, bid | {"qty_units": 0}, 422, "qty_out_of_range"),
        (world.bob, bid | {"price_minor": str(2**63)}, 422, "price_out_of_range"),
        (world.bob, bid | {"price_minor": 20, "post_only": True}, 422, "post_only_would_cross"),
        (world.bob, bid | {"spend_minor": 100}, 422, "spend_with_limit"),
        (world.bob, bid | {"side": "buy"}, 422, "request_invalid"),
        (world.bob, bid | {"side": "sell"}, 422, "request_invalid"),
        (world.bob, bid | {"term": "2027-04-01/2027-07-01" * 2}, 422, "request_invalid"),
        (world.bob, bid | {"term": ""}, 422, "request_invalid"),
        (world.bob, bid | {"term": None}, 422, "request_invalid"),
        (world.bob, bid | {"owner": ANN.address}, 422, "request_invalid"),
    ]  # fmt: skip
    before = world.everything()
    for who, body, status, code in orders:
        found = problem(world.lease(who, **body), status, code)
        if code == "term_off_boundary":
            assert found["lease_period"] == "quarter"
    assert world.everything() == before

    writes: list[tuple[Any, int, str]] = [
        (world.lease_cancel(world.bob, rid), 403, "not_your_order"),
        (world.lease_amend(world.bob, rid, {"qty_units": 50}), 403, "not_your_order"),
        (world.lease_cancel(world.ann, sid), 404, "unknown_order"),  # a trading order
        (world.lease_amend(world.ann, sid, {"qty_units": 50}), 404, "unknown_order"),
        (world.lease_cancel(world.bob, sid), 404, "unknown_order"),
        (world.lease_cancel(world.ann, 10**9), 404, "unknown_order"),
        (world.lease_amend(world.ann, 10**9, {"qty_units": 10}), 404, "unknown_order"),
        (world.lease_amend(world.ann, rid, {"price_minor": 21}), 422, "price_off_tick"),
        (world.lease_amend(world.ann, rid, {}), 422, "not_amendable"),
        (world.lease_cancel(world.ann, rid, key="not a key!"), 400, "idempotency_key_malformed"),
        (world.client.get(f"/v1/lease-orders/{rid}", headers=world.bob), 403, "not_your_order"),
        (world.client.get(f"/v1/lease-orders/{10**9}", headers=world.bob), 404, "unknown_order"),
        (world.client.get("/v1/lease-orders/0", headers=world.bob), 422, "request_invalid"),
        (world.client.post("/v1/lease-orders", json=bid, headers=world.bob), 400,
         "idempotency_key_missing"),
    ]  # fmt: skip
    for answer, status, code in writes:
        problem(answer, status, code)
    anonymous = [
        world.client.post("/v1/lease-orders", json={}, headers={"Idempotency-Key": "a"}),
        world.client.delete(f"/v1/lease-orders/{rid}"),
        world.client.patch(f"/v1/lease-orders/{rid}", json={}, headers={"Idempotency-Key": "a"}),
        world.client.get(f"/v1/lease-orders/{rid}"),
        world.client.get("/v1/lease-orders"),
        world.client.get("/v1/leases"),
    ]
    for answer in anonymous:
        problem(answer, 401, "credentials_missing")
    assert world.everything() == before
    assert world.units(world.ann)[1] == 110  # the two resting orders' holds, untouched

    # The public reads refuse what names no book, and bad pages.
    path = world.book_path(Q2)
    reads: list[tuple[str, dict[str, Any], int, str]] = [
        (f"/v1/lease-markets/{NOWHERE}", {}, 404, "unknown_asset"),
        (f"/v1/lease-markets/{ASSET[:-1]}X", {}, 422, "asset_id_check_digit"),
        (f"/v1/lease-markets/{NOWHERE}/EUR/{Q2}/book", {}, 404, "unknown_asset"),
        (f"/v1/lease-markets/{ASSET}/XAU/{Q2}/leases", {}, 404, "unknown_currency"),
        (f"/v1/lease-markets/{ASSET}/EUR/2027-4-01/2027-07-01/book", {}, 422, "term_malformed"),
        (f"/v1/lease-markets/{ASSET}/EUR/20270401/2027-07-01/book", {}, 422, "term_malformed"),
        (f"/v1/lease-markets/{ASSET}/EUR/2027-04-01/2027-07-32/leases", {}, 422,
         "term_malformed"),
        (f"{path}/book", {"levels": 0}, 422, "request_invalid"),
        (f"{path}/book", {"levels": 1001}, 422, "request_invalid"),
        (f"{path}/leases", {"limit": 1001}, 422, "request_invalid"),
        (f"{path}/leases", {"cursor": -1}, 422, "request_invalid"),
    ]  # fmt: skip
    for url, params, status, code in reads:
        problem(world.client.get(url, params=params), status, code)
    pages: list[tuple[str, dict[str, Any]]] = [
        ("/v1/leases", {"role": "owner"}),
        ("/v1/lease-orders", {"status": "resting"}),
    ]
    for bad in ({"limit": 0}, {"limit": 201}, {"cursor": 0}):
        pages += [("/v1/leases", bad), ("/v1/lease-orders", bad)]
    for url, params in pages:
        problem(world.client.get(url, headers=world.ann, params=params), 422, "request_invalid")
    assert world.everything() == before


def _body(**fields: str) -> str:
    """A lease bid as JSON text, with ``fields`` written in as they stand."""
    values = {
        "asset_id": json.dumps(ASSET),
        "currency": '"EUR"',
        "term": json.dumps(Q2),
        "side": '"bid"',
        "price_minor": "20",
        "qty_units": "10",
    } | fields
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in values.items()) + "}"


def test_hostile_lease_orders_are_problems_and_write_nothing(world: LeaseWorld) -> None:
    resting = world.leased(world.ann, side="offer", price_minor=20, qty_units=100)
    terms = [
        ("term", json.dumps("2" * 10_000), INVALID),
        ("term", "20270401", INVALID),
        ("term", '["2027-04-01", "2027-07-01"]', INVALID),
        ("term", '{"start": "2027-04-01", "end": "2027-07-01"}', INVALID),
        ("side", '"offer "', INVALID),
        ("side", '"OFFER"', INVALID),
    ]
    cases: list[tuple[str, str, bytes | str, tuple[int, str]]] = []
    for value, expected in AMOUNTS:
        for name in ("price_minor", "qty_units", "spend_minor"):
            cases.append(("POST", "/v1/lease-orders", _body(**{name: value}), expected))
        path = f"/v1/lease-orders/{resting['id']}"
        cases.append(("PATCH", path, '{"qty_units": ' + value + "}", expected))
    for name, value, expected in [*FIELDS, *terms]:  # a trading side is no lease side
        cases.append(("POST", "/v1/lease-orders", _body(**{name: value}), expected))
    for _, raw, expected in BODIES:
        cases.append(("POST", "/v1/lease-orders", raw, expected))
    before = world.everything()
    for n, (method, path, body, (status, code)) in enumerate(cases):
        who = world.bob if method == "POST" else world.ann
        answer = world.client.request(
            method,
            path,
            content=body.encode() if isinstance(body, str) else body,
            headers=who | {"Content-Type": "application/json", "Idempotency-Key": f"h{n}"},
        )
        label = f"{method} {body[:80]!r}"
        assert answer.status_code == status, (label, answer.text[:300])
        assert answer.headers["content-type"] == PROBLEM, label
        assert answer.json()["code"] == code, (label, answer.text[:300])
    assert world.everything() == before


def test_leases_lease_orders_and_the_tape_page(world: LeaseWorld) -> None:
    offers = [
        world.leased(world.ann, side="offer", price_minor=20 + 5 * i, qty_units=10)["id"]
        for i in range(5)
    ]
    q3 = world.leased(world.bob, term=Q3, side="bid", price_minor=15, qty_units=10)
    taken = world.leased(world.bob, side="bid", price_minor=40, qty_units=50)
    assert [x["maker_order_id"] for x in taken["leases"]] == offers
    assert [x["price_minor"] for x in taken["leases"]] == ["20", "25", "30", "35", "40"]
    ids = [x["id"] for x in taken["leases"]]
    assert ids == sorted(ids)
    assert taken["filled_minor"] == str(10 * (20 + 25 + 30 + 35 + 40))

    # A member's leases, newest first, page by page.
    seen: list[int] = []
    page = world.get("/v1/leases", world.bob, limit=2)
    while True:
        seen += [x["id"] for x in page["items"]]
        assert all(x["role"] == "lessee" and x["order_id"] == taken["id"] for x in page["items"])
        if page["next_cursor"] is None:
            break
        page = world.get("/v1/leases", world.bob, limit=2, cursor=page["next_cursor"])
    assert seen == ids[::-1]
    ann = world.get("/v1/leases", world.ann, role="lessor", limit=5)
    assert [x["order_id"] for x in ann["items"]] == offers[::-1]

    # The book's tape, oldest first, page by page; past the newest, an empty page.
    tape = world.get(f"{world.book_path(Q2)}/leases", limit=2)
    on_tape = [x["id"] for x in tape["items"]]
    while len(tape["items"]) == 2:
        tape = world.get(f"{world.book_path(Q2)}/leases", limit=2, cursor=tape["next_cursor"])
        on_tape += [x["id"] for x in tape["items"]]
    assert on_tape == ids
    end = world.get(f"{world.book_path(Q2)}/leases", cursor=ids[-1])
    assert (end["items"], end["next_cursor"]) == ([], str(ids[-1]))

    # Lease orders by status, newest first.
    by_status = {
        s: [o["id"] for o in world.get("/v1/lease-orders", world.ann, status=s)["items"]]
        for s in ("open", "filled")
    }
    assert by_status == {"open": [], "filled": offers[::-1]}
    first = world.get("/v1/lease-orders", world.ann, limit=3)
    rest = world.get("/v1/lease-orders", world.ann, limit=3, cursor=first["next_cursor"])
    assert [o["id"] for o in first["items"] + rest["items"]] == offers[::-1]
    assert rest["next_cursor"] is None and "leases" not in first["items"][0]
    mine = world.get("/v1/lease-orders", world.bob)["items"]
    assert [(o["id"], o["term"], o["side"]) for o in mine] == [
        (taken["id"], Q2, "bid"),
        (q3["id"], Q3, "bid"),
    ]

    # The asset's books: Q2's emptied, Q3's with a bid.
    books = world.get(f"/v1/lease-markets/{ASSET}")["books"]
    assert [(b["term"], b["best_bid_minor"], b["best_ask_minor"]) for b in books] == [
        (Q2, None, None),
        (Q3, "15", None),
    ]
    assert world.get(f"{world.book_path(Q3)}/book", levels=1)["bids"] == [
        {"price_minor": "15", "qty_units": "10", "orders": 1}
    ]
    # Once Q2 has ended its book is no longer listed, and Q3 is the term under way.
    world.clock.advance((181 * 24 + 1) * 3600)  # 2027-07-01T01:00Z
    market = world.get(f"/v1/lease-markets/{ASSET}")
    assert [b["term"] for b in market["books"]] == [Q3]
    assert market["next_terms"][0] == Q3
