"""Time in force (GTC, IOC, FOK, GTD), expiry by the clock passed in, and post-only."""

from __future__ import annotations

from market import (
    ACCEPTED,
    Book,
    Cancelled,
    CancelReason,
    Expired,
    Rejected,
    RejectReason,
    SelfTradePrevention,
    TimeInForce,
)
from tests.unit.market.book_helpers import BUY, SELL, book_with, kinds, trades

GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD


def test_ioc_trades_what_it_can_and_cancels_the_rest() -> None:
    book = book_with((1, 1, SELL, 100, 4))
    events = book.place_limit(2, 2, BUY, 100, 10, IOC)
    assert trades(events) == [(1, 2, 100, 4)]
    assert events[-1] == Cancelled(2, 2, CancelReason.IOC_REMAINDER, 6, 0)
    assert len(book) == 0


def test_ioc_that_does_not_cross_is_cancelled_whole() -> None:
    events = Book().place_limit(1, 1, BUY, 100, 10, IOC)
    assert list(events) == [ACCEPTED, Cancelled(1, 1, CancelReason.IOC_REMAINDER, 10, 0)]


def test_fok_fills_completely_across_levels() -> None:
    book = book_with((1, 1, SELL, 100, 4), (2, 2, SELL, 101, 6))
    events = book.place_limit(3, 3, BUY, 101, 10, FOK)
    assert trades(events) == [(1, 3, 100, 4), (2, 3, 101, 6)]
    assert kinds(events) == ["Accepted", "Trade", "Trade"]


def test_fok_that_cannot_fill_is_rejected_and_changes_nothing() -> None:
    book = book_with((1, 1, SELL, 100, 4), (2, 2, SELL, 102, 6))
    before = book.state_hash()
    assert list(book.place_limit(3, 3, BUY, 101, 10, FOK)) == [
        Rejected(3, RejectReason.FOK_UNFILLABLE)
    ]
    assert list(book.place_limit(4, 3, BUY, 99, 1, FOK)) == [
        Rejected(4, RejectReason.FOK_UNFILLABLE)
    ]
    assert book.state_hash() == before


def test_fok_does_not_count_own_orders_unless_they_would_be_cancelled() -> None:
    book = book_with((1, 7, SELL, 100, 5), (2, 2, SELL, 100, 5))
    assert list(book.place_limit(3, 7, BUY, 100, 5, FOK)) == [
        Rejected(3, RejectReason.FOK_UNFILLABLE)
    ]
    events = book.place_limit(4, 7, BUY, 100, 5, FOK, stp=SelfTradePrevention.CANCEL_OLDEST)
    assert kinds(events) == ["Accepted", "Cancelled", "Trade"]
    assert trades(events) == [(2, 4, 100, 5)]


def test_gtd_rests_until_its_expiry_then_expires_on_the_next_command() -> None:
    book = Book()
    assert list(book.place_limit(1, 1, BUY, 100, 5, GTD, expires_at_ms=1_000, now_ms=10)) == [
        ACCEPTED
    ]
    assert list(book.expire(999)) == []
    assert book.order(1) is not None
    # A later order that would have traded with it finds it gone first.
    events = book.place_limit(2, 2, SELL, 100, 5, now_ms=1_000)
    assert list(events) == [Expired(1, 1, 5), ACCEPTED]
    assert book.best_ask() == 100 and book.best_bid() is None


def test_expire_emits_due_orders_by_expiry_then_id() -> None:
    book = Book()
    book.place_limit(5, 1, BUY, 100, 5, GTD, expires_at_ms=30)
    book.place_limit(3, 1, BUY, 99, 5, GTD, expires_at_ms=20)
    book.place_limit(4, 1, BUY, 98, 5, GTD, expires_at_ms=20)
    book.place_limit(6, 1, BUY, 97, 5, GTD, expires_at_ms=40)
    assert list(book.expire(30)) == [Expired(3, 1, 5), Expired(4, 1, 5), Expired(5, 1, 5)]
    assert [o.order_id for o in book.resting()] == [6]


def test_a_gtd_order_already_due_is_rejected_as_expired() -> None:
    assert list(Book().place_limit(1, 1, BUY, 100, 5, GTD, expires_at_ms=50, now_ms=50)) == [
        Rejected(1, RejectReason.EXPIRED)
    ]


def test_expiry_and_time_in_force_must_agree() -> None:
    book = Book()
    assert list(book.place_limit(1, 1, BUY, 100, 5, GTD)) == [
        Rejected(1, RejectReason.BAD_TIME_IN_FORCE)
    ]
    assert list(book.place_limit(2, 1, BUY, 100, 5, GTC, expires_at_ms=99)) == [
        Rejected(2, RejectReason.BAD_TIME_IN_FORCE)
    ]
    assert list(book.place_limit(3, 1, BUY, 100, 5, IOC, post_only=True)) == [
        Rejected(3, RejectReason.BAD_TIME_IN_FORCE)
    ]


def test_a_cancelled_gtd_order_does_not_expire_later() -> None:
    book = Book()
    book.place_limit(1, 1, BUY, 100, 5, GTD, expires_at_ms=10)
    book.cancel(1)
    book.place_limit(1, 1, BUY, 100, 5, GTD, expires_at_ms=20)  # the id, reused
    assert list(book.expire(15)) == []
    assert list(book.expire(20)) == [Expired(1, 1, 5)]


def test_post_only_rests_when_it_does_not_cross_and_is_rejected_when_it_would() -> None:
    book = book_with((1, 1, SELL, 100, 5))
    assert list(book.place_limit(2, 2, BUY, 99, 5, post_only=True)) == [ACCEPTED]
    assert list(book.place_limit(3, 2, BUY, 100, 5, post_only=True)) == [
        Rejected(3, RejectReason.POST_ONLY_WOULD_CROSS)
    ]
    assert book.order(2) is not None and book.order(2).post_only  # type: ignore[union-attr]
    assert book.best_ask() == 100


def test_many_gtd_orders_that_leave_early_do_not_pile_up() -> None:
    book = Book()
    for i in range(1, 5_000):
        book.place_limit(i, 1, BUY, 100, 1, GTD, expires_at_ms=10**9)
        book.cancel(i)
    assert len(book._gtd) <= 2 * len(book) + 1_024 + 1  # stale entries are dropped
