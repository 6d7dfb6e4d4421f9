"""A task a server runs again and again in a thread of its own: ``Ticker``, which the
funding deadlines (``ledger.funding.clock``) and the buy-out installments
(``ledger.outputs.buyout_clock``) run on."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from ledger.core.timestamps import format_time

__all__ = ["Ticker"]

log = logging.getLogger("dpn.ticker")


class Ticker:
    """Calls ``tick`` every ``interval_s`` seconds in a daemon thread named ``name``, the
    first at once, from ``start`` until ``stop``. A tick that raises is logged with its
    traceback and named in ``last_error`` (``/readyz`` shows it), and the next one comes
    on time: a bug must not stop the clock unseen. A subclass names itself and defines
    ``tick``, setting ``last_run_at`` and ``last_error`` as its runs go."""

    name = "ticker"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.last_run_at: datetime | None = None
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def tick(self, stopping: threading.Event | None = None) -> object:
        """One run; it may end early once ``stopping`` is set."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def state(self) -> str:
        """``running`` or ``stopped``, as ``/readyz`` shows it."""
        return "running" if self.running else "stopped"

    @property
    def last_run_text(self) -> str | None:
        """When the last run ended well, as ``/readyz`` shows it (RFC 3339, UTC)."""
        return None if self.last_run_at is None else format_time(self.last_run_at)

    def start(self) -> None:
        """Start ticking; nothing if it runs already (an app's lifespan may be entered
        again after it ended)."""
        if self.running:
            return
        self._stop = threading.Event()  # a thread still finishing its last tick keeps its own
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop ticking; a tick under way ends as its ``stopping`` lets it, and this waits
        up to ``timeout_s`` for that."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout=timeout_s)
            if thread.is_alive():
                log.warning("the %s did not stop within %.0f s", self.name, timeout_s)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick(stop)
            except Exception as error:
                log.exception("a run of the %s failed", self.name)
                self.last_error = f"internal_error: {type(error).__name__}"
            stop.wait(self.interval_s)
