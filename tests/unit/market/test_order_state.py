"""The engine's order state: its copy is whole; the finished orders it remembers are
bounded."""

from __future__ import annotations

from copy import copy
from dataclasses import fields, replace

import pytest

from ledger.core import AccountKey
from market.book import SelfTradePrevention, Side, TimeInForce
from market.engine import state as engine_state
from market.engine.requests import OrderType
from market.engine.state import EngineState, OrderState, OrderStatus


def _order() -> OrderState:
    return OrderState(
        id=7, asset_id="A", currency="USD", owner="0xabc", side=Side.SELL,
        type=OrderType.LIMIT, time_in_force=TimeInForce.GTD, price_minor=11, qty_units=12,
        spend_minor=13, remaining_units=14, filled_units=15, filled_minor=16,
        status=OrderStatus.OPEN, reason="r", post_only=True,
        self_trade=SelfTradePrevention.CANCEL_OLDEST, expires_at_ms=17, hold_id="order:7",
        hold_left=18, placed_ms=19, updated_seq=20, held_on=AccountKey("member:0xabc", "x"),
    )  # fmt: skip


def test_a_copy_has_every_field_and_shares_nothing_changing() -> None:
    order = _order()
    copied = copy(order)
    assert copied is not order
    for f in fields(OrderState):
        assert getattr(copied, f.name) == getattr(order, f.name), f.name
    copied.remaining_units = 0
    assert order.remaining_units == 14


def test_finished_orders_are_remembered_newest_first_up_to_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_state, "FINISHED_KEPT_MAX", 2)
    state = EngineState()
    orders = [replace(_order(), id=n, owner=f"0x{n}") for n in (1, 2, 3)]
    for order in orders:
        state.add_open(order)
    for order in orders:
        order.status = OrderStatus.FILLED
        state.finish(order)
    assert state.orders == {}
    assert state.open_by_owner == {}
    assert state.finished == {2: ("0x2", "filled", ""), 3: ("0x3", "filled", "")}
