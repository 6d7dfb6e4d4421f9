"""The per-worker memory of resolved principals: fresh for a while, never past the
credential's expiry, forgotten once a change of principals commits, bounded in size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from api.principals import PrincipalCache
from ledger.access import Principal, Role, announce_principals_changed

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _principal(address: str = "0xA", expires_at: datetime | None = None) -> Principal:
    return Principal(address, frozenset({Role.MEMBER}), frozenset(), "token", expires_at)


def test_a_principal_is_remembered_until_it_goes_stale() -> None:
    ticks = Ticks()
    cache = PrincipalCache(fresh_s=2.0, monotonic=ticks)
    key = cache.key("dpn_at_secret")
    assert key != "dpn_at_secret" and len(key) == 64
    assert cache.get(key, NOW) is None
    cache.put(key, _principal(), cache.generation)
    ticks.now += 1.9
    assert cache.get(key, NOW) == _principal()
    ticks.now += 0.1
    assert cache.get(key, NOW) is None


def test_never_past_the_credentials_expiry() -> None:
    cache = PrincipalCache(fresh_s=60.0, monotonic=Ticks())
    key = cache.key("dpn_at_short")
    cache.put(key, _principal(expires_at=NOW + timedelta(seconds=1)), cache.generation)
    assert cache.get(key, NOW) is not None
    assert cache.get(key, NOW + timedelta(seconds=1)) is None


def test_forgetting_drops_everything_and_what_was_resolved_before_it() -> None:
    cache = PrincipalCache(monotonic=Ticks())
    kept, late = cache.key("a"), cache.key("b")
    cache.put(kept, _principal("0xA"), cache.generation)
    before = cache.generation  # a resolution starts...
    cache.forget_all()  # ...a key is revoked meanwhile...
    cache.put(late, _principal("0xB"), before)  # ...and its stale answer is not kept
    assert cache.get(kept, NOW) is None
    assert cache.get(late, NOW) is None
    cache.put(late, _principal("0xB"), cache.generation)
    assert cache.get(late, NOW) == _principal("0xB")


def test_the_oldest_entry_goes_when_full() -> None:
    cache = PrincipalCache(entries_max=2, monotonic=Ticks())
    keys = [cache.key(str(n)) for n in range(3)]
    for n, key in enumerate(keys):
        cache.put(key, _principal(f"0x{n}"), cache.generation)
    assert cache.get(keys[0], NOW) is None
    assert [cache.get(k, NOW) for k in keys[1:]] == [_principal("0x1"), _principal("0x2")]


def test_an_announcement_forgets_once_its_transaction_has_ended(sqlite_engine: Engine) -> None:
    cache = PrincipalCache()
    cache.follow(sqlite_engine)
    principal = _principal()
    key = cache.key("dpn_at_x")
    cache.put(key, principal, cache.generation)
    with sqlite_engine.begin() as conn:
        conn.execute(text("SELECT 1"))  # a transaction that changes no principal
    assert cache.get(key, NOW) == principal
    with sqlite_engine.begin() as conn:
        announce_principals_changed(conn)
        assert cache.get(key, NOW) == principal  # not before the commit
    assert cache.get(key, NOW) is None


def test_a_vouched_cache_remembers_longer_and_falls_back_when_the_vouch_lapses() -> None:
    ticks = Ticks()
    cache = PrincipalCache(fresh_s=2.0, heard_fresh_s=60.0, monotonic=ticks)
    key = cache.key("dpn_at_heard")
    cache.put(key, _principal(), cache.generation)
    for _ in range(118):  # a listener vouching every half second for 59 s
        cache.vouch(2.0)
        ticks.now += 0.5
        assert cache.vouched and cache.get(key, NOW) == _principal()
    ticks.now += 1.0
    assert cache.vouched and cache.get(key, NOW) is None  # 60 s: stale, vouched or not
    cache.put(key, _principal(), cache.generation)
    ticks.now += 2.5  # the listener went silent: its last vouch lapsed
    assert not cache.vouched and cache.get(key, NOW) is None
    cache.put(key, _principal(), cache.generation)
    cache.vouch(2.0)
    ticks.now += 1.0
    cache.unvouch()  # it lost its connection: back to two seconds at once
    assert cache.get(key, NOW) == _principal()
    ticks.now += 1.0
    assert cache.get(key, NOW) is None
