"""``GET /v1/assets/{asset_id}/rights`` and ``.../rights/{address}`` over HTTP: a lease
shifts rights from lessor to lessee over its term exactly, the table sums to the asset's
units at every instant and pages through every holder, and bad input is a problem."""

from __future__ import annotations

from typing import Any

from .test_api_leases import Q1, LeaseWorld, world
from .test_api_orders import ANN, ASSET, BOB

__all__ = ["world"]  # the fixture, shared with the leasing tests

Q1_END = "2027-04-01T00:00:00Z"
JUST_BEFORE_Q1_END = "2027-03-31T23:59:59.999Z"


def _rows(world: LeaseWorld, **params: Any) -> dict[str, dict[str, int]]:
    """The whole table at ``params``, page by page (two rows a page)."""
    rows: dict[str, dict[str, int]] = {}
    cursor = None
    while True:
        page = world.get(
            f"/v1/assets/{ASSET}/rights",
            **params, limit=2, **({"cursor": cursor} if cursor else {}),
        )  # fmt: skip
        for row in page["rows"]:
            assert row["holder"] not in rows
            rows[row["holder"]] = {k: int(v) for k, v in row.items() if k != "holder"}
        assert sum(r["rights"] for r in rows.values()) <= int(page["total_units"])
        cursor = page["next_cursor"]
        if cursor is None:
            total = int(page["total_units"])
            assert sum(r["rights"] for r in rows.values()) == total
            return rows


def test_a_lease_shifts_rights_over_its_term_exactly(world: LeaseWorld) -> None:
    before = _rows(world)
    mark = world.clock().isoformat()  # after everything so far, before the lease
    world.leased(world.ann, side="offer", term=Q1, price_minor="20", qty_units="1000")
    world.leased(world.bob, side="bid", term=Q1, price_minor="20", qty_units="1000")
    ann, bob = f"member:{ANN.address}", f"member:{BOB.address}"
    for at in (None, JUST_BEFORE_Q1_END):
        rows = _rows(world, **({"at": at} if at else {}))
        assert rows[ann] == before[ann] | {
            "leased_out": 1000, "rights": before[ann]["owned"] - 1000
        }  # fmt: skip
        assert rows[bob] == before[bob] | {
            "leased_in": 1000, "rights": before[bob]["owned"] + 1000
        }  # fmt: skip
        at_params = {"at": at} if at else {}
        one = world.get(f"/v1/assets/{ASSET}/rights/{BOB.address}", None, **at_params)
        assert {k: int(v) for k, v in one.items() if k != "holder"} == rows[bob]
    assert _rows(world, at=Q1_END) == before  # the term has ended: nothing ran, all back
    # Before the lease was matched, history says no lease.
    assert _rows(world, at=mark) == before


def test_bad_rights_requests_are_problems(world: LeaseWorld) -> None:
    for path, params, status, code in [
        (f"/v1/assets/{ASSET}/rights", {"at": "2027-02-01T00:00:00"}, 422, "time_naive"),
        (f"/v1/assets/{ASSET}/rights", {"at": "1801699200"}, 422, "request_invalid"),  # seconds
        (f"/v1/assets/{ASSET}/rights", {"at": "2027-02-01 00:00:00Z"}, 422, "request_invalid"),
        ("/v1/assets/1M8GDM9AXKP042789/rights", {}, 422, None),
        ("/v1/assets/1FTFW1E01DFC10312/rights", {}, 404, "unknown_asset"),
        (f"/v1/assets/{ASSET}/rights/0xnot", {}, 422, None),
        (f"/v1/assets/{ASSET}/rights", {"limit": 1001}, 422, None),
        (f"/v1/assets/{ASSET}/rights", {"at": "2026-01-01T00:00:00Z"}, 404, "unknown_asset"),
    ]:
        answer = world.client.get(path, params=params)
        assert answer.status_code == status, (path, params, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        if code is not None:
            assert answer.json()["code"] == code, answer.text
