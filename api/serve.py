"""``dpn serve``: the API under uvicorn, in one process or several workers.

Every worker listens on a socket of its own, all bound to the same port with
``SO_REUSEPORT``, so the kernel spreads new connections evenly over them. With one
shared socket (uvicorn's own way), whichever worker wakes first accepts every pending
connection at once, and a burst of keep-alive clients ends up on a single worker while
the others idle.

Each socket also has ``TCP_NODELAY``, which Linux passes on to the connections it accepts:
without it, a keep-alive response can wait ~40 ms for the client's delayed ACK.

With several workers the supervisor also starts one market engine process, which every
worker hands its orders to (``market.engine.remote``: why, and what it costs), on a Unix
socket in a directory of its own with a random key, both handed to the workers in
``DPN_MARKET_ENGINE_ADDRESS`` and ``DPN_MARKET_ENGINE_KEY``. One worker alone runs its
engine in its own process.

The supervisor starts the engine and the workers, restarts one that dies (giving up, and
stopping, when they die more than ``RESTARTS_MAX`` times in ``RESTART_WINDOW_S``: they
cannot start), and on SIGTERM or SIGINT stops the workers (which finish the requests in
flight) and then the engine.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

__all__ = ["serve"]

APP = "api.asgi:app"
RESTARTS_MAX = 5
RESTART_WINDOW_S = 30.0
STOP_TIMEOUT_S = 10.0
_PR_SET_NAME = 15  # prctl(2)

log = logging.getLogger("dpn.serve")


def serve(host: str, port: int, workers: int) -> int:
    """Serve until SIGTERM or SIGINT; 0 on a clean stop, 1 if a worker could not start."""
    if workers == 1:
        _run_worker(_listener(host, port, reuse_port=False))
        return 0
    sockets = [_listener(host, port, reuse_port=True) for _ in range(workers)]
    return _supervise(sockets)


def _listener(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _run_worker(listener: socket.socket) -> None:
    _lean_log_records()
    # No proxy headers: nothing here reads the client's address, and uvicorn's middleware
    # for them cost every request 2 % of a worker's CPU.
    config = uvicorn.Config(
        APP, log_level="warning", access_log=False, backlog=2048, proxy_headers=False
    )
    uvicorn.Server(config).run(sockets=[listener])


def _lean_log_records() -> None:
    """Make log records without what no line of ours prints: the caller's file and line
    (a walk up the stack for every record), the thread's and the process's names (the
    logging HOWTO's "Optimization"). Every request writes two access lines; this halves
    what each costs (21 -> 10 us in a loop). Only in served processes: a test's log
    capture keeps its file and line numbers."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def _named(name: str) -> None:
    """Name this process for ``ps`` and ``top`` (Linux ``/proc/PID/comm``; elsewhere
    nothing): ``dpn-worker`` and ``dpn-market`` tell the processes apart."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()), 0, 0, 0)


def _run_spawned_worker(listener: socket.socket) -> None:
    _named("dpn-worker")
    _run_worker(listener)


def _run_engine(address: str, authkey: bytes) -> None:
    """The market engine process: serve the workers at ``address`` until SIGTERM."""
    _named("dpn-market")
    from api.settings import Settings
    from ledger.db.engine import make_engine
    from ledger.journal.write import Ledger
    from market.engine import MarketEngine
    from market.engine.remote import EngineServer

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stopping = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops it, after the workers
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    if os.path.exists(address):  # left by an engine process that was killed
        os.unlink(address)
    settings = Settings.from_env()
    ledger = Ledger(make_engine(settings.database_url))
    market = MarketEngine(ledger, fee_bps=settings.market_fee_bps)
    server = EngineServer(market, address, authkey)  # listening: workers may connect
    # What is alive now (modules, settings, the engine and its pool) lives as long as the
    # process: keep it out of the collector's way, as the workers do (``api.asgi``). A
    # full collection walked it all (160,000 objects) and held up the batches for about
    # 100 ms; now it walks the books (20 ms with 7,000 resting orders).
    gc.freeze()
    market.start()  # rebuilds the books, then keeps the expiry clock
    threading.Thread(target=server.serve, name="dpn-market-accept", daemon=True).start()
    while not stopping.wait(0.5):
        pass
    market.stop(STOP_TIMEOUT_S)  # the batches waiting are stored and answered first
    server.close()


def _supervise(sockets: list[socket.socket]) -> int:
    with tempfile.TemporaryDirectory(prefix="dpn-market-") as place:  # only ours may enter
        address, authkey = os.path.join(place, "engine.sock"), secrets.token_bytes(32)
        os.environ["DPN_MARKET_ENGINE_ADDRESS"] = address  # the workers' spawn inherits it
        os.environ["DPN_MARKET_ENGINE_KEY"] = authkey.hex()
        try:
            return _supervise_processes(sockets, address, authkey)
        finally:
            del os.environ["DPN_MARKET_ENGINE_ADDRESS"], os.environ["DPN_MARKET_ENGINE_KEY"]


def _supervise_processes(sockets: list[socket.socket], address: str, authkey: bytes) -> int:
    spawn = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    def worker(listener: socket.socket) -> Callable[[], BaseProcess]:
        def start() -> BaseProcess:
            process = spawn.Process(target=_run_spawned_worker, args=(listener,), name="dpn-worker")
            process.start()
            return process

        return start

    def engine() -> BaseProcess:
        process = spawn.Process(target=_run_engine, args=(address, authkey), name="dpn-market")
        process.start()
        return process

    starts = [engine] + [worker(s) for s in sockets]  # the engine first: workers wait for it
    running = [start() for start in starts]
    restarts: deque[float] = deque()
    status = 0
    while not stopping.wait(0.2):
        for i, process in enumerate(running):
            if process.is_alive():
                continue
            now = time.monotonic()
            while restarts and restarts[0] < now - RESTART_WINDOW_S:
                restarts.popleft()
            if len(restarts) >= RESTARTS_MAX:
                log.error("%s keeps exiting (last: %s): stopping", process.name, process.exitcode)
                stopping.set()
                status = 1
                break
            log.warning(
                "%s %s exited with %s; restarting it", process.name, process.pid, process.exitcode
            )
            restarts.append(now)
            running[i] = starts[i]()
    # The workers first (SIGTERM: uvicorn finishes the requests in flight, which the
    # engine answers), then the engine.
    _stop(running[1:])
    _stop(running[:1])
    return status


def _stop(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
