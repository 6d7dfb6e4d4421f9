"""The funding clock: a background thread in each server worker that marks failed the open
projects without an escrow whose deadline has passed (projects with an escrow fail by the
chain's own clock, in the chain mirror). Every worker may run one: the journal's write
lock orders them and the failure's fixed key makes a second attempt a replay."""

from __future__ import annotations

import logging
import threading

from ledger.core.errors import LedgerError
from ledger.funding.contributions import fail_overdue_without_escrow
from ledger.journal.write import Ledger

__all__ = ["DeadlineClock"]

log = logging.getLogger("dpn.funding")


class DeadlineClock:
    """Checks every ``interval_s`` seconds; ``last_error`` says what went wrong last."""

    def __init__(self, ledger: Ledger, *, interval_s: float = 5.0) -> None:
        self.ledger = ledger
        self.interval_s = interval_s
        self.last_error: str | None = None
        self.failed: list[int] = []

    def tick(self) -> list[int]:
        """One check; the ids of the projects it marked failed."""
        try:
            failed = fail_overdue_without_escrow(self.ledger)
        except LedgerError as error:  # the database is away: try again next tick
            self.last_error = f"{error.code}: {error.message}"
            return []
        self.last_error = None
        if failed:
            log.info("deadline passed under goal: projects %s failed", failed)
            self.failed += failed
        return failed

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.tick()
            stop.wait(self.interval_s)

    def start(self) -> tuple[threading.Thread, threading.Event]:
        """Run in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="funding-clock", daemon=True)
        thread.start()
        return thread, stop
