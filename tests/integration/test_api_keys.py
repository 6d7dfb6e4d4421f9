"""API keys in the ledger: at most ``API_KEYS_LIVE_MAX`` live a member, even when
creations race; listed in pages; revoked by their owner only; refused past their expiry."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ledger.access import Principal, Role, api_keys, authenticate
from ledger.access.api_keys import (
    API_KEY_LIFETIME_MAX,
    API_KEYS_LIVE_MAX,
    ApiKeyCreated,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from ledger.core.errors import InvalidInput, NotFound, Refused, Unauthenticated
from ledger.journal.write import Ledger
from ledger.registry.members import register_member

from .network import ANN, BOB

RACERS = 4


def _member(ledger: Ledger, address: str) -> Principal:
    register_member(ledger, address, "individual", "m", key=f"m:{address}", actor="test")
    return Principal(address, frozenset({Role.MEMBER}), frozenset(), "token")


def test_racing_creations_never_pass_the_cap(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = _member(ledger, ANN)
    for n in range(API_KEYS_LIVE_MAX - 1):
        create_api_key(ledger, ann, f"robot {n}", ())
    count = api_keys._live_keys

    def slow_count(*args: Any) -> int:
        counted = count(*args)
        time.sleep(0.05)  # between the count and the insert: the others count meanwhile
        return counted

    monkeypatch.setattr(api_keys, "_live_keys", slow_count)
    start = threading.Barrier(RACERS)

    def race(n: int) -> ApiKeyCreated | str:
        start.wait()
        try:
            return create_api_key(ledger, ann, f"racer {n}", ())
        except Refused as refused:
            return refused.code

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(race, range(RACERS)))
    made = [o for o in outcomes if isinstance(o, ApiKeyCreated)]
    assert len(made) == 1
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["api_keys_too_many"] * 3
    with ledger.engine.connect() as conn:
        listed = list_api_keys(conn, ANN, after_id=None, limit=200)
    assert len(listed) == API_KEYS_LIVE_MAX


def test_keys_list_in_pages_and_revoked_ones_make_room(ledger: Ledger) -> None:
    ann, bob = _member(ledger, ANN), _member(ledger, BOB)
    made = [create_api_key(ledger, ann, f"robot {n}", ()).id for n in range(5)]
    with ledger.engine.connect() as conn:
        first = list_api_keys(conn, ANN, after_id=None, limit=2)
        rest = list_api_keys(conn, ANN, after_id=first[-1].id, limit=10)
        assert [k.id for k in first + rest] == made
        with pytest.raises(InvalidInput) as unknown:
            list_api_keys(conn, BOB, after_id=made[0], limit=10)  # not one of BOB's
        assert unknown.value.code == "cursor_unknown"
    with pytest.raises(NotFound):
        revoke_api_key(ledger, bob, made[0])
    revoke_api_key(ledger, ann, made[0])
    revoke_api_key(ledger, ann, made[0])  # again: nothing more happens
    with ledger.engine.connect() as conn:
        listed = list_api_keys(conn, ANN, after_id=None, limit=10)
    assert [k.revoked_at is not None for k in listed] == [True] + [False] * 4


@pytest.mark.parametrize(
    ("name", "code"), [("", "field_empty"), ("x" * 65, "field_too_long"), ("a\x00b", "text_nul")]
)
def test_a_key_name_is_checked_like_any_text(ledger: Ledger, name: str, code: str) -> None:
    ann = _member(ledger, ANN)
    with pytest.raises(InvalidInput) as caught:
        create_api_key(ledger, ann, name, ())
    assert caught.value.code == code
    with ledger.engine.connect() as conn:
        assert list_api_keys(conn, ANN, after_id=None, limit=10) == []


@pytest.mark.parametrize(
    ("expires_in", "code"),
    [
        (timedelta(0), "api_key_expiry_past"),
        (-timedelta(days=1), "api_key_expiry_past"),
        (API_KEY_LIFETIME_MAX + timedelta(seconds=1), "api_key_expiry_too_far"),
    ],
)
def test_an_expiry_must_be_ahead_and_not_too_far(
    ledger: Ledger, expires_in: timedelta, code: str
) -> None:
    ann = _member(ledger, ANN)
    now = ledger.clock()  # the test clock steps a second per reading: the next is later
    with pytest.raises(InvalidInput) as caught:
        create_api_key(ledger, ann, "robot", (), now + timedelta(seconds=1) + expires_in)
    assert caught.value.code == code
    with pytest.raises(InvalidInput) as naive:
        create_api_key(ledger, ann, "robot", (), datetime(2030, 1, 1))
    assert naive.value.code == "time_naive"
    with ledger.engine.connect() as conn:
        assert list_api_keys(conn, ANN, after_id=None, limit=10) == []


def test_a_key_works_until_its_expiry_and_is_listed_with_it(ledger: Ledger) -> None:
    ann = _member(ledger, ANN)
    expiry = ledger.clock() + timedelta(days=30)
    made = create_api_key(ledger, ann, "robot", (), expiry.astimezone(timezone(timedelta(hours=2))))
    assert made.expires_at == expiry and made.expires_at.tzinfo == UTC
    with ledger.engine.connect() as conn:
        principal = authenticate(conn, made.key, expiry - timedelta(seconds=1))
        assert (principal.address, principal.expires_at) == (ANN, expiry)
        with pytest.raises(Unauthenticated) as expired:
            authenticate(conn, made.key, expiry)
        assert expired.value.code == "api_key_expired"
        listed = list_api_keys(conn, ANN, after_id=None, limit=10)
    assert [(k.id, k.expires_at) for k in listed] == [(made.id, expiry)]


def test_expired_keys_make_room_under_the_cap(ledger: Ledger) -> None:
    ann = _member(ledger, ANN)
    now = [ledger.clock()]
    at = Ledger(ledger.engine, clock=lambda: now[0])  # a clock set by hand
    for n in range(API_KEYS_LIVE_MAX):
        expiry = now[0] + timedelta(seconds=30) if n == 0 else None
        create_api_key(at, ann, f"robot {n}", (), expiry)
    with pytest.raises(Refused):
        create_api_key(at, ann, "one too many", ())
    now[0] += timedelta(seconds=30)
    assert create_api_key(at, ann, "in the expired one's place", ()).expires_at is None
