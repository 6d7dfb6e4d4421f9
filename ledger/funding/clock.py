"""The funding clock: a background thread in each server worker that marks failed the open
projects without an escrow whose deadline has passed (projects with an escrow fail by the
chain's own clock, in the chain mirror). Every worker may run one: the journal's write
lock orders them and the failure's fixed key makes a second attempt a replay."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ledger.core.errors import LedgerError
from ledger.core.timestamps import to_utc
from ledger.funding.contributions import fail_overdue_without_escrow
from ledger.journal.write import Ledger
from ledger.ticker import Ticker

__all__ = ["DeadlineClock", "DeadlineStatus"]

log = logging.getLogger("dpn.funding")


@dataclass(frozen=True, slots=True)
class DeadlineStatus:
    """How the funding clock stands, for ``/readyz``."""

    state: str  # "running" or "stopped"
    interval_s: float
    last_run_at: str | None
    last_error: str | None
    failed: int  # projects it marked failed


class DeadlineClock(Ticker):
    """Checks every ``interval_s`` seconds, at the ledger's clock (``Ticker``)."""

    name = "funding-clock"

    def __init__(self, ledger: Ledger, *, interval_s: float = 5.0) -> None:
        super().__init__(interval_s)
        self.ledger = ledger
        self.failed = 0

    def tick(self, stopping: threading.Event | None = None) -> list[int]:
        """One check; the ids of the projects it marked failed (none when it could not
        check: the database away, say; it tries again at the next tick)."""
        now = self.ledger.clock()
        try:
            failed = fail_overdue_without_escrow(self.ledger)
        except LedgerError as error:
            self.last_error = f"{error.code}: {error.message}"
            log.warning("funding deadline check failed: %s", self.last_error)
            return []
        self.last_run_at, self.last_error = to_utc(now), None
        if failed:
            log.info("deadline passed under goal: projects %s failed", failed)
            self.failed += len(failed)
        return failed

    def status(self) -> DeadlineStatus:
        """Whether it runs, when it last ran, its last error and how many it failed."""
        return DeadlineStatus(
            state=self.state,
            interval_s=self.interval_s,
            last_run_at=self.last_run_text,
            last_error=self.last_error,
            failed=self.failed,
        )
