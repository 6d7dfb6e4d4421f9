"""A server's clock thread (``ledger.ticker.Ticker``): it ticks at once and then every
interval, outlives a tick that raises (naming it in ``last_error``), starts once however
often it is started, and stops."""

from __future__ import annotations

import threading

import pytest

from ledger.ticker import Ticker


class _Flaky(Ticker):
    """Raises on its second tick; counts the others."""

    name = "flaky-clock"

    def __init__(self) -> None:
        super().__init__(interval_s=0.01)
        self.ticks = 0
        self.third = threading.Event()

    def tick(self, stopping: threading.Event | None = None) -> int:
        self.ticks += 1
        if self.ticks == 2:
            raise RuntimeError("a bug")
        if self.ticks >= 3:
            self.last_error = None
            self.third.set()
        return self.ticks


def test_a_tick_that_raises_is_named_and_the_next_comes_on_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Flaky()
    errors: list[str | None] = []
    original = clock.tick

    def watched(stopping: threading.Event | None = None) -> int:
        errors.append(clock.last_error)
        return original(stopping)

    clock.tick = watched  # type: ignore[method-assign]
    assert not clock.running
    clock.start()
    clock.start()  # running already: the same thread
    try:
        assert clock.third.wait(5), "the clock stopped after the tick that raised"
        assert clock.running
    finally:
        clock.stop(timeout_s=5)
    assert not clock.running
    assert errors[:3] == [None, None, "internal_error: RuntimeError"]
    assert "a run of the flaky-clock failed" in caplog.text
    assert [t.name for t in threading.enumerate()].count("flaky-clock") == 0


def test_stop_before_start_and_twice_is_harmless() -> None:
    clock = _Flaky()
    clock.stop()
    clock.start()
    clock.stop(timeout_s=5)
    clock.stop(timeout_s=5)
    assert not clock.running
