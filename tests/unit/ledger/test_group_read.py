"""Group read: reads asked for together share one call of ``read_many``; each gets its
own answer (or the batch's error), and a read asked for once a batch has begun waits
for the next."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import pytest

from ledger.journal.group_read import GroupRead

WAIT_S = 10.0


class Recorder:
    """A ``read_many`` that answers each key with its upper case and remembers the keys
    of every call; with ``gate``, its first call waits until the gate opens."""

    def __init__(self, gate: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.entered, self.open = threading.Event(), threading.Event()
        if not gate:
            self.open.set()

    def __call__(self, keys: Sequence[str]) -> Mapping[str, str]:
        self.calls.append(list(keys))
        self.entered.set()
        if not self.open.wait(WAIT_S):
            raise TimeoutError("the gate never opened")
        return {key: key.upper() for key in keys}


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("never happened")
        await asyncio.sleep(0.001)


def test_reads_asked_in_one_turn_of_the_loop_share_one_call() -> None:
    recorder = Recorder()
    group: GroupRead[str, str] = GroupRead(recorder)

    async def main() -> list[str]:
        return await asyncio.gather(*(group.read(key) for key in "abcab"))

    assert asyncio.run(main()) == ["A", "B", "C", "A", "B"]
    assert recorder.calls == [["a", "b", "c"]]  # once each, in the order asked


def test_a_read_asked_once_a_batch_has_begun_waits_for_the_next() -> None:
    # What a batch reads was decided before it began: a read asked for later (say,
    # after the caller's own write committed) is never answered from an earlier one.
    recorder = Recorder(gate=True)
    group: GroupRead[str, str] = GroupRead(recorder)

    async def main() -> list[str]:
        first = asyncio.create_task(group.read("a"))
        await _until(recorder.entered.is_set)
        second = asyncio.create_task(group.read("b"))
        await asyncio.sleep(0.01)
        recorder.open.set()
        return [await first, await second]

    assert asyncio.run(main()) == ["A", "B"]
    assert recorder.calls == [["a"], ["b"]]


def test_no_call_reads_more_than_batch_max_keys() -> None:
    recorder = Recorder()
    group: GroupRead[str, str] = GroupRead(recorder, batch_max=3)

    async def main() -> list[str]:
        return await asyncio.gather(*(group.read(key) for key in "abcdefgh"))

    assert asyncio.run(main()) == list("ABCDEFGH")
    assert sorted(k for call in recorder.calls for k in call) == list("abcdefgh")
    assert max(len(call) for call in recorder.calls) == 3


def test_the_batch_error_reaches_every_reader_and_the_next_batch_is_read() -> None:
    failing = True

    class Away(Exception):
        pass

    def read_many(keys: Sequence[str]) -> Mapping[str, str]:
        if failing:
            raise Away("the database is away")
        return {key: key.upper() for key in keys}

    group: GroupRead[str, str] = GroupRead(read_many)

    async def main() -> list[str | BaseException]:
        return list(await asyncio.gather(group.read("a"), group.read("b"), return_exceptions=True))

    answers = asyncio.run(main())
    assert [type(a) for a in answers] == [Away, Away]
    with pytest.raises(Away, match="the database is away"):
        group.submit("c").result(WAIT_S)
    failing = False
    assert asyncio.run(main()) == ["A", "B"]
    assert group.submit("c").result(WAIT_S) == "C"


def test_a_key_read_many_leaves_unanswered_is_an_error_for_its_reader_alone() -> None:
    group: GroupRead[str, str] = GroupRead(lambda keys: {k: k for k in keys if k != "b"})

    async def main() -> list[str | BaseException]:
        return list(await asyncio.gather(group.read("a"), group.read("b"), return_exceptions=True))

    a, b = asyncio.run(main())
    assert a == "a"
    assert isinstance(b, LookupError)
    with pytest.raises(LookupError, match="no answer for 'b'"):
        group.submit("b").result(WAIT_S)


def test_a_read_cancelled_before_its_batch_is_not_asked_for() -> None:
    recorder = Recorder()
    group: GroupRead[str, str] = GroupRead(recorder)

    async def main() -> str:
        gone = asyncio.create_task(group.read("gone"))
        await asyncio.sleep(0)  # it has asked; its batch is handed over next turn
        gone.cancel()
        return await group.read("kept")

    assert asyncio.run(main()) == "KEPT"
    assert recorder.calls == [["kept"]]


def test_threads_submit_and_each_gets_its_own_answer() -> None:
    recorder = Recorder(gate=True)
    group: GroupRead[str, str] = GroupRead(recorder)
    first = group.submit("a")
    assert recorder.entered.wait(WAIT_S)
    later = [group.submit(key) for key in "bcb"]  # queued behind the first batch
    recorder.open.set()
    assert first.result(WAIT_S) == "A"
    assert [f.result(WAIT_S) for f in later] == ["B", "C", "B"]
    assert recorder.calls == [["a"], ["b", "c"]]


def test_the_reader_ends_when_idle_and_starts_again() -> None:
    group: GroupRead[str, str] = GroupRead(lambda keys: {k: k for k in keys}, idle_s=0.01)
    assert not group.running
    assert group.submit("a").result(WAIT_S) == "a"
    deadline = time.monotonic() + WAIT_S
    while group.running:
        assert time.monotonic() < deadline, "the reader never ended"
        time.sleep(0.005)
    assert asyncio.run(group.read("b")) == "b"


def test_batch_max_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="batch_max"):
        GroupRead(lambda keys: {}, batch_max=0)
